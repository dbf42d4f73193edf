import { createStreamClient, type TransferRecord } from "@stream/core";
import { parseCommandArgs } from "../args";
import { createBrokerTransport } from "../broker-transport";
import { UsageError } from "../cli-errors";
import { ExitCode, type ExitCodeValue } from "../exit-codes";
import { formatBytes } from "../format";
import { LS_HELP, RESUME_HELP } from "../help";
import { brokerOption, type CommandContext, closeWithin } from "./command-context";
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

/** `stream resume <id> [--broker <url>]`: continues an unfinished send from where its receiver's partial file ends. */
export async function resumeCommand(args: string[], context: CommandContext): Promise<ExitCodeValue> {
  const { values, positionals } = parseCommandArgs(
    "resume",
    args,
    { broker: { type: "string" }, json: { type: "boolean" }, help: { type: "boolean", short: "h" } },
    true,
  );
  if (values.help) {
    context.stdout.write(RESUME_HELP);
    return ExitCode.Ok;
  }
  if (positionals.length !== 1) throw new UsageError("resume takes the id of one unfinished transfer", "`stream ls` lists them");
  const id = positionals[0] as string;
  const journal = cliJournal(context);
  const record = await journal.get(id, "send");
  if (!record) throw new UsageError(`no unfinished send ${id} in ${journal.dir}`, "`stream ls` lists the unfinished transfers");
  // The broker the journal recorded (credentials from STREAM_BROKER_USER / STREAM_BROKER_PASSWORD), unless --broker.
  const target = brokerOption(values.broker ?? record.broker, context);
  context.failure.destination = record.destination;
  const client = createStreamClient({ transport: await createBrokerTransport(target, context.importer), journal, brokerLabel: journalLabel(target) });
  try {
    context.output.emit({ event: "resume", command: "resume", streamId: id, acknowledgedBytes: record.bytesDone });
    context.output.note(`resuming ${record.name}: the receiver continues its partial file (about ${formatBytes(record.bytesDone)} were acknowledged)`);
    const description = { streamId: id, name: record.name, sizeBytes: record.sizeBytes, target, destination: record.destination };
    return await sendAndReport(context, description, (watch) => client.resumeSend(id, { signal: context.signal, ...watch }));
  } finally {
    await closeWithin(() => client.close());
  }
}
