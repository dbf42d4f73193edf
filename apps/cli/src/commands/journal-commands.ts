import { performance } from "node:perf_hooks";
import { createStreamClient, type E2eKeyring, type TransferJournal, type TransferRecord } from "@stream/core";
import { parseCommandArgs } from "../args";
import { createBrokerTransport } from "../broker-transport";
import { UsageError } from "../cli-errors";
import { e2eKeys } from "../e2e-keys";
import { describeFailure } from "../describe-failure";
import { ExitCode, type ExitCodeValue } from "../exit-codes";
import { formatBytes } from "../format";
import { STATUS_INTERVAL_MS } from "../output";
import { LS_HELP, RESUME_HELP } from "../help";
import { BROKER_OPTIONS, type BrokerOptionValues, brokerOption, type CommandContext, closeWithin } from "./command-context";
import { reportFrameError } from "./receive-command";
import { cliJournal, journalLabel, sendAndReport } from "./send-command";

/** `3m`, `2h`, `4d`: how long ago `iso` was, for a person. */
function age(iso: string, now = Date.now()): string {
  const seconds = Math.max(0, Math.round((now - Date.parse(iso)) / 1000));
  if (seconds < 120) return `${seconds}s`;
  if (seconds < 7200) return `${Math.round(seconds / 60)}m`;
  if (seconds < 172_800) return `${Math.round(seconds / 3600)}h`;
  return `${Math.round(seconds / 86_400)}d`;
}

/** `stream ls [--json]`: the unfinished transfers the journal holds. */
export async function lsCommand(args: string[], context: CommandContext): Promise<ExitCodeValue> {
  const { values } = parseCommandArgs("ls", args, { json: { type: "boolean" }, help: { type: "boolean", short: "h" } }, false);
  if (values.help) {
    context.stdout.write(LS_HELP);
    return ExitCode.Ok;
  }
  const journal = cliJournal(context);
  const records = await journal.list();
  for (const record of records) context.output.emit({ event: "transfer", ...record });
  if (context.output.json) return ExitCode.Ok;
  if (records.length === 0) {
    context.stdout.write(`no unfinished transfers (journal: ${journal.dir})\n`);
    return ExitCode.Ok;
  }
  const rows = records.map((record: TransferRecord) => [
    record.id,
    record.direction,
    record.name,
    `${formatBytes(record.bytesDone)}/${record.sizeBytes === undefined ? "?" : formatBytes(record.sizeBytes)}`,
    record.broker ?? "-",
    record.destination,
    age(record.updatedAt),
  ]);
  const header = ["id", "direction", "name", "done", "broker", "destination", "age"];
  const widths = header.map((title, column) => Math.max(title.length, ...rows.map((row) => (row[column] as string).length)));
  const line = (cells: string[]): string => `${cells.map((cell, column) => cell.padEnd(widths[column] as number)).join("  ").trimEnd()}\n`;
  context.stdout.write(line(header) + rows.map(line).join(""));
  return ExitCode.Ok;
}

/**
 * `stream resume <id> [--broker <url>]`: continues an unfinished send from where its receiver's
 * partial file ends, or an unfinished receive from its partial file.
 */
export async function resumeCommand(args: string[], context: CommandContext): Promise<ExitCodeValue> {
  const { values, positionals } = parseCommandArgs(
    "resume",
    args,
    { ...BROKER_OPTIONS, receive: { type: "boolean" }, "e2e-key": { type: "string" }, json: { type: "boolean" }, help: { type: "boolean", short: "h" } },
    true,
  );
  if (values.help) {
    context.stdout.write(RESUME_HELP);
    return ExitCode.Ok;
  }
  if (positionals.length !== 1) throw new UsageError("resume takes the id of one unfinished transfer", "`stream ls` lists them");
  const id = positionals[0] as string;
  // An encrypted transfer resumes only with its key: the journal never records one.
  const keys = e2eKeys(values["e2e-key"], context.env);
  const journal = cliJournal(context);
  // Sender and receiver on one machine journal the same id twice: the send, unless --receive.
  const record = values.receive ? undefined : await journal.get(id, "send");
  if (!record) {
    const receive = await journal.get(id, "receive");
    if (receive) return resumeReceive(receive, journal, values, context, keys);
    throw new UsageError(`no unfinished ${values.receive ? "receive" : "transfer"} ${id} in ${journal.dir}`, "`stream ls` lists the unfinished transfers");
  }
  // The broker the journal recorded (credentials from STREAM_BROKER_USER / STREAM_BROKER_PASSWORD), unless --broker.
  const target = brokerOption(values.broker ?? record.broker, context, values);
  context.failure.destination = record.destination;
  const client = createStreamClient({ transport: await createBrokerTransport(target, context.importer), journal, brokerLabel: journalLabel(target) });
  try {
    context.output.emit({ event: "resume", command: "resume", streamId: id, acknowledgedBytes: record.bytesDone });
    context.output.note(`resuming ${record.name}: the receiver continues its partial file (about ${formatBytes(record.bytesDone)} were acknowledged)`);
    const description = { streamId: id, name: record.name, sizeBytes: record.sizeBytes, target, destination: record.destination };
    return await sendAndReport(context, description, (watch) => client.resumeSend(id, { signal: context.signal, ...(keys ? { encryption: keys } : {}), ...watch }));
  } finally {
    await closeWithin(() => client.close());
  }
}

/** `stream resume <id>` of a receive: waits for its sender to offer the stream again and continues the partial file. */
async function resumeReceive(
  record: TransferRecord,
  journal: TransferJournal,
  values: BrokerOptionValues,
  context: CommandContext,
  keys: E2eKeyring | undefined,
): Promise<ExitCodeValue> {
  const { output } = context;
  const target = brokerOption(values.broker ?? record.broker, context, values);
  context.failure.destination = record.destination;
  const client = createStreamClient({ transport: await createBrokerTransport(target, context.importer), journal, brokerLabel: journalLabel(target) });
  const { id, name } = record;
  try {
    output.emit({ event: "resume", command: "resume", direction: "receive", streamId: id, savedBytes: record.bytesDone });
    output.note(`resuming the receive of ${name} into ${record.folder ?? "?"}: waiting for its sender to offer it again (about ${formatBytes(record.bytesDone)} were saved)`);
    const view = output.transfer({ id, label: name, ...(record.sizeBytes === undefined ? {} : { totalBytes: record.sizeBytes }) });
    const startedAt = performance.now();
    try {
      const saved = await client.resumeSaveTo(id, {
        signal: context.signal,
        onStatus: (status) => view.update(status),
        statusIntervalMs: STATUS_INTERVAL_MS,
        onFrameError: reportFrameError(output, "resume"),
        ...(keys ? { keys } : {}),
      });
      const seconds = (performance.now() - startedAt) / 1000;
      view.finish(`received ${name} -> ${saved.path}: ${formatBytes(saved.byteCount)} (continued from ${formatBytes(saved.startOffset)}), SHA-256 verified\n  sha256 ${saved.sha256}`);
      output.emit({ event: "done", command: "resume", streamId: id, name, path: saved.path, bytes: saved.byteCount, startOffset: saved.startOffset, sha256: saved.sha256, seconds: Math.round(seconds * 1000) / 1000 });
      return ExitCode.Ok;
    } catch (error) {
      view.finish();
      const failure = describeFailure(error, context.failure);
      output.failure(failure, { streamId: id, name });
      return failure.exitCode;
    }
  } finally {
    await closeWithin(() => client.close());
  }
}
