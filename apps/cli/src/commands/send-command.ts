import { randomUUID } from "node:crypto";
import { stat } from "node:fs/promises";
import { basename } from "node:path";
import { performance } from "node:perf_hooks";
import { COMPRESSIONS, type Compression, createStreamClient, defaultStateDir, type SendOptions, type SendResult, type StreamSource, TransferJournal } from "@stream/core";
import type { BrokerTarget } from "../broker-url";
import { e2eKeys } from "../e2e-keys";
import { checkDestination, parseCommandArgs, parseCount, parseDuration, parseSeconds, parseSize } from "../args";
import { createBrokerTransport } from "../broker-transport";
import { CliError, UsageError } from "../cli-errors";
import { ExitCode, type ExitCodeValue } from "../exit-codes";
import { formatBytes, formatRate, megabytesPerSecond } from "../format";
import { SEND_HELP } from "../help";
import { STATUS_INTERVAL_MS } from "../output";
import { BROKER_OPTIONS, brokerOption, type CommandContext, closeWithin } from "./command-context";

/** `stream send <file|-> --broker <url> --dest <name>`: one stream, verified end to end. */
export async function sendCommand(args: string[], context: CommandContext): Promise<ExitCodeValue> {
  const { values, positionals } = parseCommandArgs(
    "send",
    withBareCompress(args),
    {
      ...BROKER_OPTIONS,
      dest: { type: "string" },
      name: { type: "string" },
      "chunk-bytes": { type: "string" },
      window: { type: "string" },
      transactional: { type: "boolean" },
      push: { type: "boolean" },
      pull: { type: "boolean" },
      timeout: { type: "string" },
      expire: { type: "string" },
      "e2e-key": { type: "string" },
      compress: { type: "string" },
      json: { type: "boolean" },
      help: { type: "boolean", short: "h" },
    },
    true,
  );
  if (values.help) {
    context.stdout.write(SEND_HELP);
    return ExitCode.Ok;
  }
  const { output, failure } = context;
  if (positionals.length !== 1) {
    throw new UsageError(positionals.length === 0 ? "send needs the file to send (or - for standard input)" : `send takes one file; got ${positionals.length}`, "run `stream send --help`");
  }
  const file = positionals[0] as string;
  const target = brokerOption(values.broker, context, values);
  const destination = checkDestination(values.dest);
  failure.destination = destination;
  const chunkBytes = values["chunk-bytes"] === undefined ? undefined : parseSize(values["chunk-bytes"], "--chunk-bytes");
  const windowChunks = values.window === undefined ? undefined : parseCount(values.window, "--window");
  const idleTimeoutMs = values.timeout === undefined ? undefined : parseSeconds(values.timeout, "--timeout");
  const expireAfterMs = values.expire === undefined ? undefined : parseDuration(values.expire, "--expire");
  const encryption = e2eKeys(values["e2e-key"], context.env);
  const compression = values.compress === undefined ? undefined : parseCompression(values.compress);
  if (values.name !== undefined && values.name.trim() === "") throw new UsageError("--name must not be empty");
  if (values.push && values.pull) throw new UsageError("--push and --pull are opposites: pick one", "--push (the default) sends the chunks at once; --pull only once a receiver takes the file");

  let source: StreamSource;
  let name: string;
  let sizeBytes: number | undefined;
  if (file === "-") {
    source = context.stdin;
    name = values.name ?? "stdin";
  } else {
    const stats = await stat(file).catch((error: unknown) => {
      const code = (error as { code?: unknown }).code;
      throw new UsageError(
        code === "ENOENT" ? `no such file: ${file}` : `cannot read ${file}: ${(error as Error).message}`,
        "check the path; use - to send standard input",
      );
    });
    if (!stats.isFile()) throw new UsageError(`${file} is not a regular file`, "send one file at a time (archive a folder first, e.g. tar cf - dir | stream send - --name dir.tar ...)");
    source = file;
    name = values.name ?? basename(file);
    sizeBytes = stats.size;
  }

  const client = createStreamClient({
    transport: await createBrokerTransport(target, context.importer),
    // A file's send is journaled: `stream ls` lists it and `stream resume <id>` continues it if it fails.
    ...(file === "-" ? {} : { journal: cliJournal(context), brokerLabel: journalLabel(target) }),
  });
  const streamId = randomUUID();
  try {
    return await sendAndReport(context, { streamId, name, sizeBytes, target, destination }, (watch) =>
      client.send(source, {
        destination,
        name,
        streamId,
        signal: context.signal,
        ...(chunkBytes === undefined ? {} : { chunkBytes }),
        ...(windowChunks === undefined ? {} : { windowChunks }),
        ...(values.transactional ? { delivery: "transactional" as const } : {}),
        ...(values.pull ? { model: "pull" as const } : {}),
        ...(idleTimeoutMs === undefined ? {} : { idleTimeoutMs }),
        ...(expireAfterMs === undefined ? {} : { expireAfterMs }),
        ...(encryption ? { encryption } : {}),
        ...(compression ? { compression } : {}),
        ...watch,
      }),
    );
  } finally {
    await closeWithin(() => client.close());
  }
}

/**
 * `--compress` alone means `--compress zstd` (`parseArgs` has no optional values): when last, or
 * followed by an option, `-` or a path (a word with a `.` or `/`); a bare word is its algorithm.
 */
function withBareCompress(args: string[]): string[] {
  const bare = (next: string | undefined) => next === undefined || next.startsWith("-") || /[./]/.test(next);
  return args.flatMap((arg, i) => (arg === "--compress" && bare(args[i + 1]) ? [arg, "zstd"] : [arg]));
}

function parseCompression(text: string): Compression {
  if (!COMPRESSIONS.includes(text as Compression)) {
    throw new UsageError(`--compress "${text}" is not an algorithm`, `give ${COMPRESSIONS.join(", ")}, or --compress alone (last, or before another option) for zstd`);
  }
  return text as Compression;
}

/** What {@link sendAndReport} says a send is. */
export interface SendDescription {
  readonly streamId: string;
  readonly name: string;
  readonly sizeBytes: number | undefined;
  readonly target: BrokerTarget;
  readonly destination: string;
}

/** The send options through which {@link sendAndReport} watches a send. */
export type SendWatch = Required<Pick<SendOptions, "onProgress" | "onStatus" | "statusIntervalMs">>;

/**
 * Runs one send (`run`, given the options to pass on that watch it), showing its progress (core's
 * status: rate and ETA) and its outcome as `stream send` does; resolves with the exit code,
 * throws what the send threw.
 */
export async function sendAndReport(
  context: CommandContext,
  { streamId, name, sizeBytes, target, destination }: SendDescription,
  run: (watch: SendWatch) => Promise<SendResult>,
): Promise<ExitCodeValue> {
  const { output, failure } = context;
  output.emit({ event: "start", command: "send", streamId, name, ...(sizeBytes === undefined ? {} : { sizeBytes }), broker: target.display, destination });
  output.note(`sending ${name}${sizeBytes === undefined ? "" : ` (${formatBytes(sizeBytes)})`} to ${destination} on ${target.display}`);
  const view = output.transfer({ id: streamId, label: name, ...(sizeBytes === undefined ? {} : { totalBytes: sizeBytes }) });
  let heardFromReceiver = false;
  let queued = false;
  const startedAt = performance.now();
  try {
    const result = await run({
      onProgress(progress) {
        if (progress.bytesAcknowledged > 0) heardFromReceiver = true;
        if (progress.queued !== queued) {
          queued = progress.queued;
          heardFromReceiver = true;
          output.emit({ event: queued ? "queued" : "taken", command: "send", streamId, name });
          output.note(queued ? `a receiver has queued ${name} behind the streams it is taking; waiting` : `the receiver took ${name}`);
        }
      },
      onStatus: (status) => view.update(status),
      statusIntervalMs: STATUS_INTERVAL_MS,
    });
    const seconds = (performance.now() - startedAt) / 1000;
    const rate = megabytesPerSecond(result.byteCount, seconds);
    const resumed = result.startOffset > 0 ? ` (continued from ${formatBytes(result.startOffset)} the receiver had; ${formatBytes(result.bytesPublished)} published)` : "";
    view.finish(`sent ${name}: ${formatBytes(result.byteCount)}${resumed} in ${seconds.toFixed(2)} s (${formatRate(rate * 1e6)}), verified by the receiver\n  sha256 ${result.sha256}`);
    output.emit({
      event: "done",
      command: "send",
      streamId,
      name,
      bytes: result.byteCount,
      chunks: result.chunkCount,
      chunkBytes: result.manifest.chunkBytes,
      sha256: result.sha256,
      // Where the receiver started (a resume: its partial file) and what this process published,
      // resends included: for a resume, at most one window more than `bytes - startOffset`.
      startOffset: result.startOffset,
      bytesPublished: result.bytesPublished,
      seconds: Math.round(seconds * 1000) / 1000,
      megabytesPerSecond: Math.round(rate * 10) / 10,
    });
    return ExitCode.Ok;
  } catch (error) {
    view.finish();
    failure.heardFromReceiver = heardFromReceiver;
    if (context.signal.aborted) {
      throw new CliError("stopped: the send was cancelled and the receiver told", ExitCode.Interrupted, `run \`stream resume ${streamId}\` to continue it`, { cause: error });
    }
    throw error;
  }
}

/** The journal of the CLI's sends: `$STREAM_STATE_DIR`, else the per-user state folder. */
export function cliJournal(context: CommandContext): TransferJournal {
  return new TransferJournal({ dir: defaultStateDir(context.env) });
}

/** The broker as a journal entry names it: its URL without credentials (they come from the environment on resume). */
export function journalLabel(target: BrokerTarget): string {
  return target.display.replace("***@", "");
}
