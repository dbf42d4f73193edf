import { resolve } from "node:path";
import { performance } from "node:perf_hooks";
import { pipeline } from "node:stream/promises";
import {
  createStreamClient,
  E2eKeyError,
  type IncomingStream,
  PartialFileMismatchError,
  type Rejection,
  type StreamError,
  StreamWithdrawnError,
  sweepPartialFiles,
  type TransferJournal,
} from "@stream/core";
import { e2eKeys } from "../e2e-keys";
import { checkDestination, parseCommandArgs, parseCount } from "../args";
import { createBrokerTransport } from "../broker-transport";
import { UsageError } from "../cli-errors";
import { describeFailure } from "../describe-failure";
import { ExitCode, type ExitCodeValue } from "../exit-codes";
import { formatBytes, formatRate, megabytesPerSecond, printable } from "../format";
import { RECEIVE_HELP } from "../help";
import { checkOutFolder, createOutFolder } from "../out-folder";
import { type Output, STATUS_INTERVAL_MS } from "../output";
import { BROKER_OPTIONS, brokerOption, type CommandContext, closeWithin } from "./command-context";
import { cliJournal, journalLabel } from "./send-command";

/** Where received streams go: a folder, or standard output. */
export type ReceiveTarget = { readonly dir: string } | { readonly stdout: NodeJS.WritableStream & NodeJS.WriteStream };

/**
 * Writes one incoming stream to `out` (standard output) as it arrives. Bytes are passed on before
 * the final SHA-256 check, as a pipe cannot take them back: a consumer must treat the data as
 * good only if the command exits 0.
 */
async function writeTo(stream: IncomingStream, out: NodeJS.WritableStream): Promise<void> {
  await pipeline(stream, out, { end: false });
}

/**
 * Receives one stream into `target`, reporting start, progress and the outcome. Resolves with
 * the exit code the stream earns (0 when verified and written), or `undefined` for a stream that
 * does not count: its sender had withdrawn it before any receiver answered (a send that gave up
 * before this receiver started). Never rejects.
 */
export async function receiveOne(
  stream: IncomingStream,
  target: ReceiveTarget,
  output: Output,
  context: { readonly stopped: () => boolean; readonly failure: CommandContext["failure"]; readonly command: string },
): Promise<ExitCodeValue | undefined> {
  const { manifest, streamId } = stream;
  const startedAt = performance.now();
  output.emit({ event: "start", command: context.command, streamId, name: manifest.name, ...(manifest.sizeBytes === undefined ? {} : { sizeBytes: manifest.sizeBytes }) });
  const view = output.transfer({ id: streamId, label: manifest.name, ...(manifest.sizeBytes === undefined ? {} : { totalBytes: manifest.sizeBytes }) });
  // Core's status of the stream (rate, ETA), every STATUS_INTERVAL_MS (the receiver's statusIntervalMs).
  stream.on("status", (status) => view.update(status));
  try {
    let path = "-";
    let startOffset = 0;
    if ("dir" in target) {
      // Core names the file (safeFileName), writes it to a temporary file, gives it its final
      // name once verified, never over an existing one, and only then tells the sender. A stream
      // taken over from a receiver that died goes on from that receiver's partial file.
      const saved = await stream.saveTo(target.dir);
      path = saved.path;
      startOffset = saved.startOffset;
    } else {
      await writeTo(stream, target.stdout);
    }
    const result = await stream.result;
    const seconds = (performance.now() - startedAt) / 1000;
    // The rate of what crossed the broker this time, not of bytes a dead receiver already saved.
    const rate = megabytesPerSecond(result.byteCount - startOffset, seconds);
    const continued = startOffset > 0 ? ` (continued from ${formatBytes(startOffset)} a previous receiver saved)` : "";
    view.finish(
      `received ${manifest.name} -> ${path}: ${formatBytes(result.byteCount)}${continued} in ${seconds.toFixed(2)} s (${formatRate(rate * 1e6)}), SHA-256 verified\n  sha256 ${result.sha256}`,
    );
    output.emit({
      event: "done",
      command: context.command,
      streamId,
      name: manifest.name,
      path,
      bytes: result.byteCount,
      startOffset,
      chunks: result.chunkCount,
      sha256: result.sha256,
      seconds: Math.round(seconds * 1000) / 1000,
      megabytesPerSecond: Math.round(rate * 10) / 10,
    });
    return ExitCode.Ok;
  } catch (error) {
    view.finish();
    if (StreamWithdrawnError.isInstance(error)) {
      output.note(`discarded ${manifest.name}: its sender had withdrawn it, as no receiver answered in time; nothing was kept`);
      output.emit({ event: "withdrawn", command: context.command, streamId, name: manifest.name });
      return undefined;
    }
    if (context.stopped()) {
      output.note(`stopped while receiving ${manifest.name}; nothing was kept of it`);
      output.emit({ event: "error", code: "INTERRUPTED", exitCode: ExitCode.Interrupted, streamId, name: manifest.name, message: "stopped before the stream completed; nothing was kept", hint: "" });
      return ExitCode.Interrupted;
    }
    const failure = describeFailure(error, context.failure);
    output.failure(failure, { streamId, name: manifest.name });
    return failure.exitCode;
  }
}

/**
 * What the receiver reports of frames and partial files it could not use: a partial file that no
 * longer matches its journal (it is not continued past what matches) is said, the rest is left to
 * the streams' own errors.
 */
export function reportFrameError(output: Output, command: string): (error: StreamError) => void {
  return (error) => {
    if (E2eKeyError.isInstance(error)) {
      // A stream sealed under a key this receiver lacks: refused, its sender told; say so here too.
      output.emit({ event: "refused", command, code: error.code, keyId: error.keyId, message: error.message });
      output.note(`${error.message.replace(/^\[stream\] \[e2e\] /, "")}; give this receiver the sender's key with --e2e-key <file>`);
      return;
    }
    if (!PartialFileMismatchError.isInstance(error)) return;
    output.emit({ event: "partial-mismatch", command, path: error.path, claimedBytes: error.claimedBytes, keptBytes: error.keptBytes, message: error.message });
    output.note(error.message.replace(/^\[stream\] /, ""));
  };
}

/**
 * Says what the receiver refused (core's `'rejected'`): one line, or a `rejected` event, per
 * report. Core holds reports back past `maxReportsPerSecond` per cause and sums them up, so a
 * flood of bad frames gives a few lines a second, not one per frame.
 */
export function reportRejection(output: Output, command: string): (rejection: Rejection) => void {
  return ({ code, reason, streamId, name, suppressed }) => {
    output.emit({ event: "rejected", command, code, reason, ...(streamId === undefined ? {} : { streamId }), ...(name === undefined ? {} : { name }), ...(suppressed === undefined ? {} : { suppressed }) });
    const shown = name !== undefined && name.length > 80 ? `${name.slice(0, 79)}…` : name; // a hostile name can be long
    const what = streamId === undefined ? "" : ` of stream ${streamId}${shown === undefined ? "" : ` (${printable(shown)})`}`;
    output.note(`rejected input${what} [${code}]: ${printable(reason)}`);
  };
}

/**
 * On start: removes the partial files receivers that died left in `dir` long ago, keeps recent
 * ones (a sender may hand their stream to this receiver, which continues them), and says so.
 */
async function reportPartialFiles(dir: string, output: Output, journal: TransferJournal | undefined): Promise<void> {
  // Those the journal may resume (`stream resume <id>`) stay until their entry expires.
  const { removed, kept } = await sweepPartialFiles(dir, { keep: (await journal?.partialFiles()) ?? [] });
  if (removed.length + kept.length === 0) return;
  output.emit({ event: "partial-files", command: "receive", removed, kept });
  if (removed.length > 0) output.note(`removed ${removed.length} partial file(s) left in ${dir} by receivers that died over 10 min ago`);
  if (kept.length > 0) output.note(`kept ${kept.length} recent partial file(s) in ${dir}: continued if their sender hands the stream on, removed after 10 min`);
}

/** `stream receive --broker <url> --dest <name> [--out <dir>|-] [--once]`. */
export async function receiveCommand(args: string[], context: CommandContext): Promise<ExitCodeValue> {
  const { values } = parseCommandArgs(
    "receive",
    args,
    {
      ...BROKER_OPTIONS,
      dest: { type: "string" },
      out: { type: "string" },
      once: { type: "boolean" },
      concurrency: { type: "string" },
      "keep-partial": { type: "boolean" },
      "e2e-key": { type: "string" },
      json: { type: "boolean" },
      help: { type: "boolean", short: "h" },
    },
    false,
  );
  if (values.help) {
    context.stdout.write(RECEIVE_HELP);
    return ExitCode.Ok;
  }
  const { output, failure } = context;
  const broker = brokerOption(values.broker, context, values);
  const destination = checkDestination(values.dest);
  failure.destination = destination;
  const toStdout = values.out === "-";
  if (toStdout && values.json) {
    throw new UsageError("--out - and --json both want standard output", "use --out <dir> with --json, or drop --json");
  }
  // One stream at most to standard output: a second would be glued onto the first.
  const once = values.once === true || toStdout;
  const concurrency = values.concurrency === undefined ? 1 : parseCount(values.concurrency, "--concurrency");
  const keys = e2eKeys(values["e2e-key"], context.env);
  let target: ReceiveTarget;
  if (toStdout) {
    target = { stdout: context.stdout };
  } else {
    // Checked now (exit 2 before any broker is asked), created only once the broker answered.
    const dir = resolve(values.out ?? ".");
    await checkOutFolder(dir);
    target = { dir };
  }

  // Closing the client lets the receiver's last replies (a final ack) reach the broker first.
  // Saves into a folder are journaled: `stream ls` lists one whose process died, `stream resume <id>` continues it.
  const journal = "dir" in target ? cliJournal(context) : undefined;
  const client = createStreamClient({
    transport: await createBrokerTransport(broker, context.importer),
    ...(journal ? { journal, brokerLabel: journalLabel(broker) } : {}),
  });
  try {
    // --once takes one stream; others queued meanwhile go to other receivers once this one exits.
    const receiver = client.receive(destination, {
      signal: context.signal,
      keepPartial: values["keep-partial"] === true,
      concurrency,
      onFrameError: reportFrameError(output, "receive"),
      statusIntervalMs: STATUS_INTERVAL_MS,
      ...(once ? { maxStreams: 1 } : {}),
      ...(keys ? { keys } : {}),
    });
    receiver.on("rejected", reportRejection(output, "receive"));
    receiver.on("queued", (manifest) => {
      output.emit({ event: "queued", command: "receive", streamId: manifest.streamId, name: manifest.name });
      output.note(`queued ${manifest.name}: taking ${concurrency} stream${concurrency === 1 ? "" : "s"} at a time (--concurrency)`);
    });
    // Nothing is created on disk until the broker has answered (the subscription is live).
    const folderReady = receiver.ready.then(() => ("dir" in target ? createOutFolder(target.dir) : undefined));
    folderReady.catch(() => {});
    const streamContext = { stopped: () => context.signal.aborted, failure, command: "receive" };
    const running = new Set<Promise<ExitCodeValue | undefined>>();
    // The outcome of the first stream that counts (not one its sender had withdrawn): --once's exit code.
    let settleFirst: (code: ExitCodeValue) => void = () => {};
    const firstOutcome = new Promise<ExitCodeValue>((resolve) => {
      settleFirst = resolve;
    });
    // Streams are taken with a 'stream' listener rather than the iterator: each is claimed the
    // moment it opens, so one that fails early (its sender gave up) is never left unclaimed.
    receiver.on("stream", (stream) => {
      // Errors of a claimed stream are reported by receiveOne; this only keeps an early one
      // from being an unhandled 'error' event.
      stream.on("error", () => {});
      const task = folderReady.then(
        () => receiveOne(stream, target, output, streamContext),
        () => ExitCode.Usage,
      );
      void task.then((code) => code !== undefined && settleFirst(code));
      running.add(task);
      void task.finally(() => running.delete(task));
    });
    await folderReady;
    if ("dir" in target && values["keep-partial"] !== true) await reportPartialFiles(target.dir, output, journal);
    // The line for a person comes with the same report's 'rejected' (code "orphaned").
    receiver.on("orphaned", (report) => output.emit({ event: "orphaned", command: "receive", ...report }));
    output.emit({ event: "listening", command: "receive", broker: broker.display, destination, out: "dir" in target ? target.dir : "-" });
    output.note(`waiting for ${once ? "a stream" : "streams"} on ${destination} at ${broker.display}${"dir" in target ? `, writing into ${target.dir}` : ""} (Ctrl-C to stop)`);

    const stopped = new Promise<void>((resolve) => {
      if (context.signal.aborted) resolve();
      else context.signal.addEventListener("abort", () => resolve(), { once: true });
    });
    if (once) {
      const outcome = await Promise.race([stopped.then(() => undefined), firstOutcome]);
      if (outcome !== undefined) return outcome;
    } else {
      await stopped;
    }
    // Stopped by a signal: the receiver closes, streams still arriving are destroyed (their
    // senders told) and their temporary files removed.
    await receiver.close();
    const [stoppedOutcome] = (await Promise.all(running)).filter((code) => code !== undefined);
    if (once) {
      if (stoppedOutcome !== undefined) return stoppedOutcome;
      output.note("stopped before any stream arrived");
      return ExitCode.Interrupted;
    }
    output.note("stopped");
    return ExitCode.Ok;
  } finally {
    await closeWithin(() => client.close());
  }
}
