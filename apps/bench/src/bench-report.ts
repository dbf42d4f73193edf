import type { BrokerName } from "./brokers";
import type { RunFailure, RunMode, RunResult } from "./bench-run";
import type { FailoverResult, FanInResult, ResumeResult } from "./scenario-runner";
import { formatSize } from "./sizes";

/** The goals the bench holds @stream to (issue 4). */
export const GOALS = {
  /** @stream / raw throughput at the same chunk size. */
  ratio: 0.95,
  /** The floor accepted while working. */
  ratioFloor: 0.85,
  /** Peak RSS of sender and of receiver, in MB (10^6 bytes). */
  peakRssMB: 150,
} as const;

/** One mode (raw or @stream) of one cell: the best of its rounds. */
export interface ModeSummary {
  readonly runs: number;
  /** Best of the rounds. */
  readonly mbPerSecond: number;
  readonly seconds: number;
  /** Highest of the rounds, MB. */
  readonly senderPeakRssMB: number;
  readonly receiverPeakRssMB: number;
  /** Of the best run. */
  readonly senderCpuSeconds: number;
  readonly receiverCpuSeconds: number;
  readonly timeToFirstByteMs: number;
  /** Highest of the rounds (raw only). */
  readonly lost: number;
  readonly duplicated: number;
  readonly oneProcess: boolean;
}

/** Goal verdict of a ratio. */
export type RatioVerdict = "goal" | "floor" | "below";

/** One broker × chunk size. */
export interface CellSummary {
  readonly broker: BrokerName;
  readonly chunkBytes: number;
  readonly raw?: ModeSummary;
  readonly stream?: ModeSummary;
  /** @stream MB/s over raw MB/s, when both ran. */
  readonly ratio?: number;
  readonly ratioVerdict?: RatioVerdict;
  /** Whether @stream's sender and receiver both stayed within {@link GOALS.peakRssMB}. */
  readonly rssWithinGoal?: boolean;
  readonly errors: readonly string[];
}

/** The memory-flatness row: @stream's peak RSS at two file sizes. */
export interface FlatnessRow {
  readonly broker: BrokerName;
  readonly chunkBytes: number;
  readonly points: ReadonlyArray<{ sizeBytes: number; mbPerSecond: number; senderPeakRssMB: number; receiverPeakRssMB: number }>;
  readonly errors: readonly string[];
}

/** The fan-in rows: per broker, P producers streaming at once into one consumer. */
export interface FanInRows {
  readonly producers: number;
  /** Bytes of each producer's stream. */
  readonly sizeBytes: number;
  readonly chunkBytes: number;
  readonly results: readonly FanInResult[];
  readonly errors: ReadonlyArray<{ readonly broker: BrokerName; readonly error: string }>;
}

/** The failover rows: per broker, a receiver killed half-way and a second one taking over. */
export interface FailoverRows {
  readonly sizeBytes: number;
  readonly chunkBytes: number;
  readonly results: readonly FailoverResult[];
  readonly errors: ReadonlyArray<{ readonly broker: BrokerName; readonly error: string }>;
}

/** The resume rows: per broker, a sender killed half-way and a second one resuming, against an uninterrupted send. */
export interface ResumeRows {
  readonly sizeBytes: number;
  readonly chunkBytes: number;
  readonly results: readonly ResumeResult[];
  readonly errors: ReadonlyArray<{ readonly broker: BrokerName; readonly error: string }>;
}

/** Everything one bench invocation produced. */
export interface BenchReport {
  readonly date: string;
  readonly machine: string;
  readonly node: string;
  readonly quick: boolean;
  readonly sizeBytes: number;
  readonly rounds: number;
  /** Raw senders' bound on unconfirmed publishes. */
  readonly windowChunks: number;
  /** @stream's windowChunks; undefined: core's default. */
  readonly streamWindowChunks: number | undefined;
  /** @stream's transfers were encrypted end to end (`--e2e`); absent in reports that predate it. */
  readonly e2e?: boolean;
  readonly command: string;
  /** 1-minute load average when the runs began and ended. */
  readonly loadAverage: { readonly start: number; readonly end: number };
  readonly skipped: ReadonlyArray<{ broker: BrokerName; reason: string }>;
  readonly cells: readonly CellSummary[];
  readonly flatness?: FlatnessRow;
  readonly fanIn?: FanInRows;
  readonly failover?: FailoverRows;
  readonly resume?: ResumeRows;
  readonly runs: readonly RunResult[];
  readonly failures: readonly RunFailure[];
}

const MB = 1e6;

/** The goal verdict of a @stream / raw ratio. */
export function ratioVerdict(ratio: number): RatioVerdict {
  if (ratio >= GOALS.ratio) return "goal";
  if (ratio >= GOALS.ratioFloor) return "floor";
  return "below";
}

/** Summarises one mode's runs: best throughput, worst memory. Undefined when none completed. */
export function summariseMode(runs: readonly RunResult[]): ModeSummary | undefined {
  if (runs.length === 0) return undefined;
  const best = runs.reduce((a, b) => (b.mbPerSecond > a.mbPerSecond ? b : a));
  return {
    runs: runs.length,
    mbPerSecond: best.mbPerSecond,
    seconds: best.seconds,
    senderPeakRssMB: Math.max(...runs.map((run) => run.sender.peakRssBytes)) / MB,
    receiverPeakRssMB: Math.max(...runs.map((run) => run.receiver.peakRssBytes)) / MB,
    senderCpuSeconds: best.sender.cpuSeconds,
    receiverCpuSeconds: best.receiver.cpuSeconds,
    timeToFirstByteMs: best.timeToFirstByteMs,
    lost: Math.max(...runs.map((run) => run.lost)),
    duplicated: Math.max(...runs.map((run) => run.duplicated)),
    oneProcess: best.oneProcess,
  };
}

/**
 * Groups runs into cells, in the order the cells were first seen: per cell the best run of each
 * mode, the ratio, and the goal verdicts. Failed runs are listed in their cell's `errors`.
 */
export function summarise(runs: readonly RunResult[], failures: readonly RunFailure[] = []): CellSummary[] {
  const keys: string[] = [];
  const key = (item: { broker: BrokerName; chunkBytes: number }): string => `${item.broker}/${item.chunkBytes}`;
  for (const item of [...runs, ...failures]) if (!keys.includes(key(item))) keys.push(key(item));
  return keys.map((cellKey) => {
    const [broker, chunk] = cellKey.split("/") as [BrokerName, string];
    const chunkBytes = Number(chunk);
    const mine = runs.filter((run) => key(run) === cellKey);
    const of = (mode: RunMode) => summariseMode(mine.filter((run) => run.mode === mode));
    const raw = of("raw");
    const stream = of("stream");
    const ratio = raw && stream && raw.mbPerSecond > 0 ? stream.mbPerSecond / raw.mbPerSecond : undefined;
    return {
      broker,
      chunkBytes,
      ...(raw ? { raw } : {}),
      ...(stream ? { stream } : {}),
      ...(ratio === undefined ? {} : { ratio, ratioVerdict: ratioVerdict(ratio) }),
      ...(stream ? { rssWithinGoal: Math.max(stream.senderPeakRssMB, stream.receiverPeakRssMB) <= GOALS.peakRssMB } : {}),
      errors: failures.filter((failure) => key(failure) === cellKey).map((failure) => `${failure.mode} round ${failure.round}: ${failure.error}`),
    };
  });
}

/** The cell with the lowest ratio, if any has one. */
export function worstCell(cells: readonly CellSummary[]): CellSummary | undefined {
  return cells
    .filter((cell) => cell.ratio !== undefined && cell.broker !== "memory")
    .reduce<CellSummary | undefined>((worst, cell) => (!worst || (cell.ratio ?? 0) < (worst.ratio ?? 0) ? cell : worst), undefined);
}

const fixed = (value: number, digits = 0): string => (Number.isFinite(value) ? value.toFixed(digits) : "–");
const pair = (a: number, b: number, digits = 0, one = false): string => (one ? `${fixed(a, digits)} (1 process)` : `${fixed(a, digits)} / ${fixed(b, digits)}`);
const VERDICT: Readonly<Record<RatioVerdict, string>> = { goal: "✅", floor: "🟡", below: "❌" };

/** Formats a ratio with its verdict mark, `0.97x ✅`; without one (`0.97x`) when ratios are not judged. */
export function formatRatio(ratio: number | undefined, judged = true): string {
  if (ratio === undefined) return "–";
  return judged ? `${ratio.toFixed(2)}x ${VERDICT[ratioVerdict(ratio)]}` : `${ratio.toFixed(2)}x`;
}

/**
 * What a `--quick` run checked, in plain words: it is a correctness smoke test (each @stream
 * transfer's SHA-256 matched end to end, or the run failed), not a measurement, so its ratios
 * are shown but not judged.
 */
export function quickRunSummary(report: Pick<BenchReport, "runs" | "failures" | "sizeBytes">): string[] {
  const measured = report.failures.filter((failure) => failure.round > 0);
  const count = (mode: RunMode) => ({
    passed: report.runs.filter((run) => run.mode === mode && run.round > 0).length,
    failed: measured.filter((failure) => failure.mode === mode).length,
  });
  const stream = count("stream");
  const raw = count("raw");
  const size = formatSize(report.sizeBytes);
  const other = report.failures.length - measured.length;
  return [
    `**Correctness smoke test (--quick), not a measurement.** @stream: ${stream.passed} of ${stream.passed + stream.failed} transfers of ${size} ` +
      `arrived whole with their SHA-256 matched end to end${stream.failed > 0 ? `; ${stream.failed} failed (see Errors)` : ""}. ` +
      `Raw clients: ${raw.passed} of ${raw.passed + raw.failed} transfers delivered (their losses are counted, not judged).` +
      (other > 0 ? ` ${other} broker(s) could not be run at all (see the log).` : ""),
    `Ratios and MB/s of a ${size} run are mostly start-up and connection set-up: they mean nothing here and are not judged (\`pnpm bench\` measures).`,
  ];
}

/** The lost / duplicated column of the raw client. */
function lossText(raw: ModeSummary | undefined): string {
  if (!raw) return "–";
  if (raw.oneProcess) return "n/a";
  return raw.lost === 0 && raw.duplicated === 0 ? "0 / 0" : `**${raw.lost} / ${raw.duplicated}**`;
}

/** The Markdown table of the cells (one row per broker × chunk size); `judged: false` leaves the ratios unmarked. */
export function renderCellsTable(cells: readonly CellSummary[], { judged = true }: { readonly judged?: boolean } = {}): string {
  const lines = [
    "| broker | chunk | raw MB/s | @stream MB/s | @stream / raw | RSS MB raw snd / rcv | RSS MB @stream snd / rcv | CPU s raw snd / rcv | CPU s @stream snd / rcv | TTFB ms raw / @stream | raw lost / dup |",
    "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
  ];
  for (const cell of cells) {
    const { raw, stream } = cell;
    const one = (raw ?? stream)?.oneProcess ?? false;
    const rssMark = cell.rssWithinGoal === false ? " ⚠️" : "";
    lines.push(
      [
        "",
        cell.broker,
        formatSize(cell.chunkBytes),
        raw ? fixed(raw.mbPerSecond) : "error",
        stream ? fixed(stream.mbPerSecond) : "error",
        formatRatio(cell.ratio, judged),
        raw ? pair(raw.senderPeakRssMB, raw.receiverPeakRssMB, 0, one) : "–",
        stream ? `${pair(stream.senderPeakRssMB, stream.receiverPeakRssMB, 0, one)}${rssMark}` : "–",
        raw ? pair(raw.senderCpuSeconds, raw.receiverCpuSeconds, 1, one) : "–",
        stream ? pair(stream.senderCpuSeconds, stream.receiverCpuSeconds, 1, one) : "–",
        `${raw ? fixed(raw.timeToFirstByteMs) : "–"} / ${stream ? fixed(stream.timeToFirstByteMs) : "–"}`,
        lossText(raw),
        "",
      ].join(" | ").trim(),
    );
  }
  return lines.join("\n");
}

/** The Markdown of the whole report: header, table, flatness, skips and errors. */
export function renderMarkdown(report: BenchReport): string {
  const parts = [
    `## @stream vs raw clients — ${report.date}`,
    "",
    `${report.machine}, Node ${report.node}. File ${formatSize(report.sizeBytes)}, ${report.rounds} round(s), best of the rounds shown (RSS: highest). ` +
      `@stream window ${report.streamWindowChunks === undefined ? "core's default (16 MiB, at least 4 chunks, in flight)" : `${report.streamWindowChunks} chunks`}${report.e2e ? ", encrypted end to end (AES-256-GCM, --e2e)" : ""}; raw senders keep at most ${report.windowChunks} publishes unconfirmed. ` +
      `Load average (1 min) ${report.loadAverage.start.toFixed(1)} at start, ${report.loadAverage.end.toFixed(1)} at end.`,
    ...(report.quick ? quickRunSummary(report).flatMap((line) => ["", line]) : []),
    "",
    `\`${report.command}\``,
    "",
    renderCellsTable(report.cells, { judged: !report.quick }),
    "",
    (report.quick
      ? `Ratios not judged (quick run); peak RSS ≤ ${GOALS.peakRssMB} MB per process (⚠️ over). `
      : `Goals: @stream / raw ≥ ${GOALS.ratio}x ✅ (floor ${GOALS.ratioFloor}x 🟡, below ❌); peak RSS ≤ ${GOALS.peakRssMB} MB per process (⚠️ over). `) +
      "MB = 10⁶ bytes. memory: the in-memory transport, one process, raw = a plain file copy (the disk's limit).",
  ];
  if (report.flatness) {
    const { flatness } = report;
    parts.push(
      "",
      `### Memory flatness: @stream on ${flatness.broker}, ${formatSize(flatness.chunkBytes)} chunks`,
      "",
      "| file | MB/s | sender peak RSS MB | receiver peak RSS MB |",
      "|---:|---:|---:|---:|",
      ...flatness.points.map((point) => `| ${formatSize(point.sizeBytes)} | ${fixed(point.mbPerSecond)} | ${fixed(point.senderPeakRssMB)} | ${fixed(point.receiverPeakRssMB)} |`),
      ...flatness.errors.map((error) => `\nerror: ${error}`),
    );
  }
  if (report.fanIn) parts.push("", renderFanIn(report.fanIn));
  if (report.failover) parts.push("", renderFailover(report.failover));
  if (report.resume) parts.push("", renderResume(report.resume));
  if (report.skipped.length > 0) {
    parts.push("", "Skipped: " + report.skipped.map((skip) => `${skip.broker} (${skip.reason})`).join("; "));
  }
  const errors = report.cells.flatMap((cell) => cell.errors.map((error) => `- ${cell.broker} ${formatSize(cell.chunkBytes)} ${error.split("\n")[0]}`));
  if (errors.length > 0) parts.push("", "Errors:", ...errors);
  return `${parts.join("\n")}\n`;
}

/** A section of rows per broker: heading, table, the brokers that failed, then what the figures mean. */
function renderSection(title: string, header: readonly string[], rows: readonly string[][], errors: ReadonlyArray<{ broker: BrokerName; error: string }>, note: string): string {
  const lines = [`### ${title}`, "", `| ${header.join(" | ")} |`, `|---|${header.slice(1).map(() => "---:").join("|")}|`, ...rows.map((row) => `| ${row.join(" | ")} |`)];
  if (errors.length > 0) lines.push("", ...errors.map((error) => `- ${error.broker}: error: ${error.error.split("\n")[0]}`));
  lines.push("", note);
  return lines.join("\n");
}

/** The fan-in section: one row per broker. */
export function renderFanIn(fanIn: FanInRows): string {
  return renderSection(
    `Fan-in: ${fanIn.producers} producers × ${formatSize(fanIn.sizeBytes)} into one consumer, @stream, ${formatSize(fanIn.chunkBytes)} chunks`,
    ["broker", "streams verified", "total s", "aggregate MB/s", "consumer peak RSS MB", "consumer CPU s", "most streams open at once", "producers' process RSS MB / CPU s"],
    fanIn.results.map((row) => [
      row.broker,
      `${row.verified} / ${row.producers}`,
      fixed(row.seconds, 1),
      fixed(row.mbPerSecond),
      fixed(row.receiverPeakRssMB),
      fixed(row.receiverCpuSeconds, 1),
      String(row.maxOpenStreams),
      `${fixed(row.senderPeakRssMB)} / ${fixed(row.senderCpuSeconds, 1)}`,
    ]),
    fanIn.errors,
    "One consumer process saves every stream with `saveTo` and checks its SHA-256; the producers are one process with a client (a connection) per stream. " +
      "Total: the producers' first read to the last stream verified. Streams open: handed to the consumer and not yet saved; it takes one at a time by default (`concurrency: 1`), the others wait queued.",
  );
}

/** The failover section: one row per broker. */
export function renderFailover(failover: FailoverRows): string {
  return renderSection(
    `Failover: a receiver SIGKILLed half-way through ${formatSize(failover.sizeBytes)}, a second one taking over, @stream, ${formatSize(failover.chunkBytes)} chunks`,
    ["broker", "killed at", "kill → 2nd receiver's first byte saved, s", "total s", "continued from", "SHA-256", "2nd receiver peak RSS MB"],
    failover.results.map((row) => [
      row.broker,
      formatSize(row.killedAtBytes),
      fixed(row.killToFirstByteMs / 1000, 1),
      fixed(row.totalSeconds, 1),
      row.takeover ? formatSize(row.startOffset) : "not a takeover",
      "matched",
      fixed(row.receiverPeakRssMB),
    ]),
    failover.errors,
    'The second receiver process starts the moment the first is killed, on the same destination and folder (`takeover: "continue"`); ' +
      "the sender publishes the Open again after `takeoverAfterMs` (core's default, 3 s) of silence. Total: the sender's first read to the file saved and verified.",
  );
}

/** The resume section: one row per broker. */
export function renderResume(resume: ResumeRows): string {
  return renderSection(
    `Resume: a sender SIGKILLed half-way through ${formatSize(resume.sizeBytes)}, a second one resuming, @stream, ${formatSize(resume.chunkBytes)} chunks`,
    ["broker", "uninterrupted s", "killed at", "resumed from", "re-sent by the resumed sender", "killed sender's publishes past it", "window", "kill → saved, s", "total s", "total / uninterrupted", "SHA-256"],
    resume.results.map((row) => [
      row.broker,
      fixed(row.uninterruptedSeconds, 1),
      formatSize(row.killedAtBytes),
      formatSize(row.resumedFromBytes),
      formatSize(row.resentBytes),
      formatSize(Math.max(0, row.killedSenderPublishedBytes - row.resumedFromBytes)),
      formatSize(row.windowBytes),
      fixed(row.killToDoneSeconds, 1),
      fixed(row.totalSeconds, 1),
      `${fixed(row.ratio, 2)}x`,
      "matched",
    ]),
    resume.errors,
    "The sender process is SIGKILLed once the receiver has saved half of the file; a second sender process starts at once with the same stream id and `resume: true`, " +
      "and the receiver, still serving, continues its partial file. Re-sent: data payload bytes the resumed sender published beyond the rest of the file from where it resumed (counted at its transport). " +
      "Killed sender's publishes past it: what went twice over both senders (its last count before the kill, so at least this). Both are held to one window. " +
      "Total: the first sender's first read to the file saved and verified; uninterrupted: the same file sent once without a kill.",
  );
}
