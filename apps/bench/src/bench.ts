/**
 * `pnpm bench`: @stream against each broker's raw client, alternating, sender and receiver in
 * processes of their own. Writes results.json, results.md and chart.svg into the results folder;
 * exits non-zero when a run fails or @stream's SHA-256 does not match. `--help` for the options.
 */
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { cpus, loadavg, tmpdir, totalmem } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { renderChartSvg } from "./bench-chart";
import { parseBenchOptions, USAGE } from "./bench-options";
import { type BenchReport, type FailoverRows, type FanInRows, type FlatnessRow, renderMarkdown, type ResumeRows, summarise, worstCell, formatRatio } from "./bench-report";
import type { RunFailure, RunMode, RunResult } from "./bench-run";
import { runOnce, type RunSpec } from "./bench-runner";
import { BROKERS, type BrokerName, chunkSizesFor, isReachable } from "./brokers";
import { ensureInputFile, sha256File } from "./input-file";
import { type FailoverResult, type FanInResult, type ResumeResult, runFailover, runFanIn, runResume, type ScenarioSpec } from "./scenario-runner";
import { adapterBuilt, adapterProblem } from "./stream-transports";
import { formatSize, MiB } from "./sizes";

const appDir = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const log = (line: string): void => {
  process.stderr.write(`${line}\n`);
};

let options: ReturnType<typeof parseBenchOptions>;
try {
  options = parseBenchOptions(process.argv.slice(2), process.env, appDir);
} catch (error) {
  log(error instanceof Error ? error.message : String(error));
  log(USAGE);
  process.exit(2);
}
if (options.help) {
  console.log(USAGE);
  process.exit(0);
}
if (options.from) {
  const saved = JSON.parse(await readFile(options.from, "utf8")) as BenchReport;
  await writeReport(saved, options.outDir);
  process.exit(0);
}

/** Writes results.json, results.md and chart.svg. */
async function writeReport(report: BenchReport, outDir: string): Promise<string> {
  await mkdir(outDir, { recursive: true });
  const markdown = renderMarkdown(report);
  await writeFile(join(outDir, "results.json"), `${JSON.stringify(report, null, 2)}\n`);
  await writeFile(join(outDir, "results.md"), markdown);
  if (report.cells.length > 0) await writeFile(join(outDir, "chart.svg"), await renderChartSvg(report));
  log(`results in ${outDir} (results.json, results.md${report.cells.length > 0 ? ", chart.svg" : ""})`);
  return markdown;
}

const loadStart = loadavg()[0] ?? 0;
const skipped: Array<{ broker: BrokerName; reason: string }> = [];
const brokers: BrokerName[] = [];
const failures: RunFailure[] = [];
for (const broker of options.brokers) {
  const problem = await adapterProblem(broker);
  if (problem) {
    // A named broker or not: an adapter that does not load is this repository's fault, not the machine's.
    log(`✗ ${broker}: ${problem}`);
    failures.push({ broker, mode: "stream", chunkBytes: 0, sizeBytes: options.sizeBytes, round: 0, error: problem });
    continue;
  }
  if (await isReachable(BROKERS[broker])) {
    brokers.push(broker);
    continue;
  }
  const reason = `nothing answers on 127.0.0.1:${BROKERS[broker].port}; start it with bash tooling/brokers/up.sh`;
  if (options.brokersNamed) {
    log(`✗ ${broker}: ${reason}`);
    failures.push({ broker, mode: "stream", chunkBytes: 0, sizeBytes: options.sizeBytes, round: 0, error: reason });
  } else {
    log(`- ${broker} skipped: ${reason}`);
    skipped.push({ broker, reason });
  }
}

const cells = brokers.flatMap((broker) => chunkSizesFor(BROKERS[broker], options.chunks).map((chunkBytes) => ({ broker, chunkBytes })));
const totalRuns = cells.length * 2 * options.rounds + (options.flatness ? 2 : 0);
const workDir = join(tmpdir(), "stream-bench");
const profileDir = options.profile ? join(options.outDir, "profiles") : undefined;
if (profileDir) await mkdir(profileDir, { recursive: true });
log(
  `stream bench: ${brokers.join(", ") || "no transport"}; ${cells.length} cells × raw/@stream × ${options.rounds} round(s) = ${totalRuns} runs of ${formatSize(options.sizeBytes)}; load ${loadStart.toFixed(1)}`,
);
const inputFile = await ensureInputFile(workDir, options.sizeBytes, (written) => log(`  generating input: ${formatSize(written)}`));

const results: RunResult[] = [];
let done = 0;
const interactive = process.stderr.isTTY;
async function measure(spec: Omit<RunSpec, "workDir" | "windowChunks" | "onProgress" | "onNote" | "inputFile"> & { inputFile?: string }): Promise<RunResult | undefined> {
  done += 1;
  const label = `[${done}/${totalRuns}] ${spec.broker} ${formatSize(spec.chunkBytes)} ${spec.mode === "raw" ? "raw    " : "@stream"} ${spec.round === 0 ? `flatness ${formatSize(spec.sizeBytes)}` : `round ${spec.round}`}`;
  const started = Date.now();
  let loggedAt = started;
  const onProgress = (bytes: number): void => {
    const at = Date.now();
    const line = `${label} … ${formatSize(bytes)} of ${formatSize(spec.sizeBytes)} (${Math.round((at - started) / 1000)} s)`;
    if (interactive) process.stderr.write(`\r${line}\u001b[K`);
    else if (at - loggedAt >= 15_000) {
      // Not a terminal (CI, a log file): a line every 15 s, so a slow run still shows life.
      loggedAt = at;
      log(line);
    }
  };
  try {
    const runSpec = { ...spec, inputFile: spec.inputFile ?? inputFile, workDir, windowChunks: spec.mode === "stream" ? options.streamWindowChunks : options.windowChunks, e2e: spec.mode === "stream" && options.e2e, onProgress, onNote: (note: string) => log(`${label}  note: ${note}`), ...(profileDir ? { profileDir } : {}) };
    const result = await runOnce(runSpec).catch(async (error: unknown) => {
      // A package's dist/ being rebuilt (tsup cleans it first) while a worker starts is a race of
      // a shared work tree, not a result: wait for the build to land and run once more, saying so.
      if (!String(error).includes("ERR_MODULE_NOT_FOUND")) throw error;
      log(`${label}  a dist/ went missing (a build in progress?); waiting for it, then retrying once`);
      await waitForAdapter(spec.broker);
      return runOnce(runSpec);
    });
    const loss = result.lost || result.duplicated ? `, LOST ${result.lost} DUP ${result.duplicated}` : "";
    const rss = result.oneProcess
      ? `${(result.sender.peakRssBytes / 1e6).toFixed(0)} MB`
      : `${(result.sender.peakRssBytes / 1e6).toFixed(0)}/${(result.receiver.peakRssBytes / 1e6).toFixed(0)} MB`;
    if (interactive) process.stderr.write("\r\u001b[K");
    log(`${label}  ${result.mbPerSecond.toFixed(0).padStart(5)} MB/s  RSS ${rss}  TTFB ${result.timeToFirstByteMs.toFixed(0)} ms${loss}`);
    return result;
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    if (interactive) process.stderr.write("\r\u001b[K");
    log(`${label}  ✗ ${message.split("\n")[0]}`);
    failures.push({ broker: spec.broker, mode: spec.mode, chunkBytes: spec.chunkBytes, sizeBytes: spec.sizeBytes, round: spec.round, error: message });
    return undefined;
  }
}

/** Waits up to 2 minutes for core and the broker's adapter to load again. */
async function waitForAdapter(broker: BrokerName): Promise<void> {
  for (let waited = 0; waited < 120_000; waited += 5000) {
    // Plus a pause: tsup writes the entry before its sibling files.
    if (adapterBuilt(broker)) return new Promise((resolve) => setTimeout(resolve, 5000));
    await new Promise((resolve) => setTimeout(resolve, 5000));
  }
}

for (let round = 1; round <= options.rounds; round++) {
  // Alternate which side goes first, so neither always gets the warmer page cache or broker.
  const order: RunMode[] = round % 2 === 1 ? ["raw", "stream"] : ["stream", "raw"];
  for (const cell of cells) {
    for (const mode of order) {
      const result = await measure({ ...cell, mode, sizeBytes: options.sizeBytes, round });
      if (result) results.push(result);
    }
  }
}

let flatness: FlatnessRow | undefined;
if (options.flatness) {
  const { broker, sizeBytes: largeBytes } = options.flatness;
  const chunkBytes = MiB;
  const points: Array<{ sizeBytes: number; mbPerSecond: number; senderPeakRssMB: number; receiverPeakRssMB: number }> = [];
  const errors: string[] = [];
  for (const sizeBytes of [options.sizeBytes, largeBytes]) {
    const file = sizeBytes === options.sizeBytes ? inputFile : await ensureInputFile(workDir, sizeBytes, (written) => log(`  generating input: ${formatSize(written)}`));
    const failedBefore = failures.length;
    const result = await measure({ broker, chunkBytes, mode: "stream", sizeBytes, round: 0, inputFile: file });
    if (result) {
      points.push({ sizeBytes, mbPerSecond: result.mbPerSecond, senderPeakRssMB: result.sender.peakRssBytes / 1e6, receiverPeakRssMB: result.receiver.peakRssBytes / 1e6 });
    } else {
      errors.push(...failures.slice(failedBefore).map((failure) => failure.error));
    }
  }
  flatness = { broker, chunkBytes, points, errors };
}

// Fan-in, failover and resume: @stream alone, on each broker (not the in-memory transport: one process).
const scenarioBrokers = brokers.filter((broker): broker is Exclude<BrokerName, "memory"> => broker !== "memory");
const SCENARIO_CHUNK_BYTES = MiB;
let scenarioFailures = 0;
let scenarioPasses = 0;
/** Runs `measureOne` per broker, logging each result or error the way runs are logged. */
async function eachBroker<T>(title: string, sizeBytes: number, measureOne: (spec: ScenarioSpec) => Promise<T>, describe: (result: T) => string) {
  const file = await ensureInputFile(workDir, sizeBytes, (written) => log(`  generating input: ${formatSize(written)}`));
  const expectedSha256 = await sha256File(file);
  const results: T[] = [];
  const errors: Array<{ broker: BrokerName; error: string }> = [];
  for (const broker of scenarioBrokers) {
    const label = `[${title}] ${broker}`;
    const started = Date.now();
    let loggedAt = started;
    const onProgress = (bytes: number): void => {
      const line = `${label} … ${formatSize(bytes)} (${Math.round((Date.now() - started) / 1000)} s)`;
      if (interactive) process.stderr.write(`\r${line}\u001b[K`);
      else if (Date.now() - loggedAt >= 15_000) {
        loggedAt = Date.now();
        log(line);
      }
    };
    try {
      const result = await measureOne({ broker, chunkBytes: SCENARIO_CHUNK_BYTES, sizeBytes, inputFile: file, expectedSha256, workDir, onProgress, onNote: (note) => log(`${label}  note: ${note}`) });
      if (interactive) process.stderr.write("\r\u001b[K");
      log(`${label}  ${describe(result)}`);
      results.push(result);
      scenarioPasses += 1;
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      if (interactive) process.stderr.write("\r\u001b[K");
      log(`${label}  ✗ ${message.split("\n")[0]}`);
      errors.push({ broker, error: message });
      scenarioFailures += 1;
    }
  }
  return { results, errors };
}

let fanIn: FanInRows | undefined;
if (options.fanIn && scenarioBrokers.length > 0) {
  const { producers, sizeBytes } = options.fanIn;
  const title = `fan-in ${producers} × ${formatSize(sizeBytes)}`;
  const rows = await eachBroker<FanInResult>(title, sizeBytes, (spec) => runFanIn(spec, producers), (row) =>
    `${row.verified}/${row.producers} verified in ${row.seconds.toFixed(1)} s, ${row.mbPerSecond.toFixed(0)} MB/s, consumer RSS ${row.receiverPeakRssMB.toFixed(0)} MB, CPU ${row.receiverCpuSeconds.toFixed(1)} s, ${row.maxOpenStreams} open at most`,
  );
  fanIn = { producers, sizeBytes, chunkBytes: SCENARIO_CHUNK_BYTES, ...rows };
}
let failover: FailoverRows | undefined;
if (options.failover && scenarioBrokers.length > 0) {
  const { sizeBytes } = options.failover;
  const rows = await eachBroker<FailoverResult>(`failover ${formatSize(sizeBytes)}`, sizeBytes, runFailover, (row) =>
    `killed at ${formatSize(row.killedAtBytes)}, first byte saved ${(row.killToFirstByteMs / 1000).toFixed(1)} s after the kill, total ${row.totalSeconds.toFixed(1)} s, continued from ${formatSize(row.startOffset)}, SHA-256 matched`,
  );
  failover = { sizeBytes, chunkBytes: SCENARIO_CHUNK_BYTES, ...rows };
}

let resume: ResumeRows | undefined;
if (options.resume && scenarioBrokers.length > 0) {
  const { sizeBytes, windowBytes } = options.resume;
  const rows = await eachBroker<ResumeResult>(`resume ${formatSize(sizeBytes)}`, sizeBytes, (spec) => runResume(spec, windowBytes), (row) =>
    `uninterrupted ${row.uninterruptedSeconds.toFixed(1)} s; killed at ${formatSize(row.killedAtBytes)}, resumed from ${formatSize(row.resumedFromBytes)}, re-sent ${formatSize(row.resentBytes)} (window ${formatSize(row.windowBytes)}), kill → done ${row.killToDoneSeconds.toFixed(1)} s, total ${row.totalSeconds.toFixed(1)} s (${row.ratio.toFixed(2)}x), SHA-256 matched`,
  );
  resume = { sizeBytes, chunkBytes: SCENARIO_CHUNK_BYTES, ...rows };
}

const report: BenchReport = {
  date: new Date().toISOString().slice(0, 10),
  machine: `${cpus().length} cores, ${Math.round(totalmem() / 2 ** 30)} GiB`,
  node: process.versions.node,
  quick: options.quick,
  sizeBytes: options.sizeBytes,
  rounds: options.rounds,
  windowChunks: options.windowChunks,
  streamWindowChunks: options.streamWindowChunks,
  e2e: options.e2e,
  command: `pnpm bench ${process.argv.slice(2).join(" ")}`.trim(),
  loadAverage: { start: loadStart, end: loadavg()[0] ?? 0 },
  skipped,
  cells: summarise(results, failures.filter((failure) => failure.round > 0)),
  ...(flatness ? { flatness } : {}),
  ...(fanIn ? { fanIn } : {}),
  ...(failover ? { failover } : {}),
  ...(resume ? { resume } : {}),
  runs: results,
  failures,
};
console.log(await writeReport(report, options.outDir));
const worst = worstCell(report.cells);
// A quick run's ratios are not judged (quickRunSummary says why), so no worst cell is named.
if (worst && !options.quick) log(`worst cell: ${worst.broker} ${formatSize(worst.chunkBytes)} at ${formatRatio(worst.ratio)}`);
// The plain closing line CI reads: each run is a check that @stream (or the raw client) delivered.
console.log(`${results.length + scenarioPasses} passed, ${failures.length + scenarioFailures} failed${options.quick ? " (correctness smoke test: @stream's SHA-256 checked end to end; ratios not judged)" : ""}`);
if (failures.length + scenarioFailures > 0) {
  log(`✗ ${failures.length + scenarioFailures} run(s) failed`);
  process.exit(1);
}
