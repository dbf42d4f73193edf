import { describe, expect, it } from "vitest";
import type { RunResult, WorkerReport } from "./bench-run";
import { type BenchReport, formatRatio, quickRunSummary, ratioVerdict, renderCellsTable, renderFailover, renderFanIn, renderMarkdown, renderResume, summarise, worstCell } from "./bench-report";
import { type ResumeSend, toFailoverResult, toFanInResult, toResumeResult } from "./scenario-runner";
import { toResult } from "./bench-runner";
import { KiB, MiB } from "./sizes";

const worker = (role: WorkerReport["role"], rssMB: number, extra: Partial<WorkerReport> = {}): WorkerReport => ({
  role,
  doneAt: 0,
  bytes: 0,
  chunks: 0,
  cpuSeconds: 1,
  peakRssBytes: rssMB * 1e6,
  ...extra,
});

function run(mode: "raw" | "stream", mbPerSecond: number, options: Partial<RunResult> & { rss?: [number, number] } = {}): RunResult {
  const [senderMB, receiverMB] = options.rss ?? [80, 90];
  return {
    broker: "rabbitmq",
    mode,
    chunkBytes: 256 * KiB,
    sizeBytes: 100e6,
    round: 1,
    seconds: 100 / mbPerSecond,
    mbPerSecond,
    timeToFirstByteMs: 20,
    bytesDelivered: 100e6,
    lost: 0,
    duplicated: 0,
    sender: worker("send", senderMB),
    receiver: worker("receive", receiverMB),
    oneProcess: false,
    ...options,
  };
}

/** A report of nothing; tests add what they check. */
const baseReport: BenchReport = {
  date: "2026-01-02",
  machine: "2 cores, 24 GiB",
  node: "20.0.0",
  quick: false,
  sizeBytes: 1024 * MiB,
  rounds: 1,
  windowChunks: 16,
  streamWindowChunks: undefined,
  command: "pnpm bench",
  loadAverage: { start: 1, end: 1 },
  skipped: [],
  cells: [],
  runs: [],
  failures: [],
};

describe("ratioVerdict", () => {
  it.each([
    [1.2, "goal"],
    [0.95, "goal"],
    [0.949, "floor"],
    [0.85, "floor"],
    [0.849, "below"],
  ] as const)("%d is %s", (ratio, verdict) => {
    expect(ratioVerdict(ratio)).toBe(verdict);
  });

  it("formats the ratio with its mark", () => {
    expect(formatRatio(0.97)).toBe("0.97x ✅");
    expect(formatRatio(0.9)).toBe("0.90x 🟡");
    expect(formatRatio(0.5)).toBe("0.50x ❌");
    expect(formatRatio(undefined)).toBe("–");
  });
});

describe("summarise", () => {
  it("takes the best throughput of the rounds, the worst RSS, and divides @stream by raw", () => {
    const cells = summarise([
      run("raw", 100),
      run("stream", 90, { rss: [120, 100] }),
      run("raw", 80, { round: 2, rss: [130, 90] }),
      run("stream", 95, { round: 2 }),
    ]);
    expect(cells).toHaveLength(1);
    const [cell] = cells;
    expect(cell?.raw?.mbPerSecond).toBe(100);
    expect(cell?.raw?.senderPeakRssMB).toBe(130);
    expect(cell?.stream?.mbPerSecond).toBe(95);
    expect(cell?.stream?.senderPeakRssMB).toBe(120);
    expect(cell?.ratio).toBeCloseTo(0.95);
    expect(cell?.ratioVerdict).toBe("goal");
    expect(cell?.rssWithinGoal).toBe(true);
  });

  it("flags @stream over the RSS goal and keeps raw losses", () => {
    const [cell] = summarise([run("raw", 50, { lost: 12, duplicated: 1 }), run("stream", 40, { rss: [90, 180] })]);
    expect(cell?.rssWithinGoal).toBe(false);
    expect(cell?.raw?.lost).toBe(12);
    expect(cell?.ratioVerdict).toBe("below");
  });

  it("keeps a cell whose runs failed, with no ratio", () => {
    const cells = summarise([run("raw", 50)], [{ broker: "rabbitmq", mode: "stream", chunkBytes: 256 * KiB, sizeBytes: 1, round: 1, error: "boom" }]);
    expect(cells[0]?.ratio).toBeUndefined();
    expect(cells[0]?.errors).toEqual(["stream round 1: boom"]);
  });

  it("keeps cells in first-seen order, and finds the worst broker cell (not memory)", () => {
    const cells = summarise([
      run("raw", 100, { broker: "memory" }),
      run("stream", 10, { broker: "memory" }),
      run("raw", 100, { chunkBytes: MiB }),
      run("stream", 80, { chunkBytes: MiB }),
      run("raw", 100),
      run("stream", 90),
    ]);
    expect(cells.map((cell) => `${cell.broker} ${cell.chunkBytes}`)).toEqual(["memory 262144", "rabbitmq 1048576", "rabbitmq 262144"]);
    expect(worstCell(cells)?.chunkBytes).toBe(MiB);
  });
});

describe("renderCellsTable", () => {
  it("shows MB/s, the ratio, RSS per side, and raw losses in bold", () => {
    const table = renderCellsTable(summarise([run("raw", 120, { lost: 3, duplicated: 0 }), run("stream", 118)]));
    const row = table.split("\n")[2];
    expect(row).toBe("| rabbitmq | 256 KiB | 120 | 118 | 0.98x ✅ | 80 / 90 | 80 / 90 | 1.0 / 1.0 | 1.0 / 1.0 | 20 / 20 | **3 / 0** |");
  });

  it("marks one-process cells of the in-memory transport", () => {
    const local = { sender: worker("local", 100), receiver: worker("local", 100), oneProcess: true, broker: "memory" as const };
    const table = renderCellsTable(summarise([run("raw", 500, local), run("stream", 200, local)]));
    expect(table).toContain("| 100 (1 process) |");
    expect(table).toContain("| n/a |");
  });
});

describe("renderMarkdown", () => {
  it("includes the date, machine, the flatness row and skipped brokers", () => {
    const report: BenchReport = {
      ...baseReport,
      streamWindowChunks: 16,
      loadAverage: { start: 1, end: 1.5 },
      skipped: [{ broker: "kafka", reason: "down" }],
      cells: summarise([run("raw", 100), run("stream", 99)]),
      flatness: { broker: "rabbitmq", chunkBytes: MiB, points: [{ sizeBytes: 1024 * MiB, mbPerSecond: 50, senderPeakRssMB: 100, receiverPeakRssMB: 110 }], errors: [] },
      runs: [],
      failures: [],
    };
    const markdown = renderMarkdown(report);
    expect(markdown).toContain("2026-01-02");
    expect(markdown).toContain("2 cores, 24 GiB");
    expect(markdown).toContain("| 1 GiB | 50 | 100 | 110 |");
    expect(markdown).toContain("Skipped: kafka (down)");
  });
});

describe("fan-in and failover", () => {
  const scenario = (extra: Partial<import("./bench-run").ScenarioReport>) => ({ doneAt: 0, bytes: 0, streams: 0, cpuSeconds: 2, peakRssBytes: 120e6, ...extra });
  const fanInResult = toFanInResult(
    { broker: "rabbitmq", sizeBytes: 8 * MiB, chunkBytes: MiB },
    20,
    scenario({ startedAt: 1000, streams: 20, bytes: 20 * 8 * MiB, peakRssBytes: 300e6 }),
    scenario({ firstByteAt: 1010, doneAt: 3000, streams: 20, bytes: 20 * 8 * MiB, maxOpenStreams: 20, cpuSeconds: 3.25 }),
  );
  const failoverResult = toFailoverResult(
    { broker: "kafka", sizeBytes: 64 * MiB, chunkBytes: MiB },
    { killedAt: 5000, killedAtBytes: 32 * MiB },
    scenario({ startedAt: 1000, streams: 1, bytes: 64 * MiB }),
    scenario({ firstByteAt: 9500, doneAt: 11_000, streams: 1, bytes: 64 * MiB, startOffset: 32 * MiB, takeover: true, peakRssBytes: 90e6 }),
  );

  it("measures fan-in from the producers' first read to the last stream verified", () => {
    expect(fanInResult).toMatchObject({ seconds: 2, verified: 20, maxOpenStreams: 20, receiverPeakRssMB: 120, receiverCpuSeconds: 3.25, senderPeakRssMB: 300 });
    expect(fanInResult.mbPerSecond).toBeCloseTo((20 * 8 * MiB) / 1e6 / 2);
  });

  it("fails a fan-in unless every stream verified", () => {
    expect(() => toFanInResult({ broker: "mqtt", sizeBytes: MiB, chunkBytes: MiB }, 10, scenario({ startedAt: 0 }), scenario({ doneAt: 1, streams: 9 }))).toThrow(/9 of 10 streams/);
  });

  it("measures failover from the kill to the second receiver's first byte, and the whole transfer", () => {
    expect(failoverResult).toMatchObject({ killToFirstByteMs: 4500, totalSeconds: 10, startOffset: 32 * MiB, takeover: true, killedAtBytes: 32 * MiB });
    expect(() => toFailoverResult({ broker: "kafka", sizeBytes: 64 * MiB, chunkBytes: MiB }, { killedAt: 0, killedAtBytes: 0 }, scenario({}), scenario({ bytes: 1 }))).toThrow(/1 bytes saved of/);
  });

  it("renders a row per broker and the errors", () => {
    const fanIn = renderFanIn({ producers: 20, sizeBytes: 8 * MiB, chunkBytes: MiB, results: [fanInResult], errors: [{ broker: "kafka", error: "no \"ready\" from the worker\nstack" }] });
    expect(fanIn).toContain("### Fan-in: 20 producers × 8 MiB into one consumer");
    expect(fanIn).toContain("| rabbitmq | 20 / 20 | 2.0 | 84 | 120 | 3.3 | 20 | 300 / 2.0 |");
    expect(fanIn).toContain('- kafka: error: no "ready" from the worker');
    expect(fanIn).not.toContain("stack");
    const failover = renderFailover({ sizeBytes: 64 * MiB, chunkBytes: MiB, results: [failoverResult], errors: [] });
    expect(failover).toContain("half-way through 64 MiB");
    expect(failover).toContain("| kafka | 32 MiB | 4.5 | 10.0 | 32 MiB | matched | 90 |");
  });

  it("puts both sections into the report when they ran, and neither otherwise", () => {
    const base = { ...baseReport, sizeBytes: 64 * MiB };
    expect(renderMarkdown(base)).not.toMatch(/Fan-in|Failover/);
    const markdown = renderMarkdown({
      ...base,
      fanIn: { producers: 20, sizeBytes: 8 * MiB, chunkBytes: MiB, results: [fanInResult], errors: [] },
      failover: { sizeBytes: 64 * MiB, chunkBytes: MiB, results: [failoverResult], errors: [] },
    });
    expect(markdown).toContain("### Fan-in");
    expect(markdown).toContain("### Failover");
  });
});

describe("resume", () => {
  const scenario = (extra: Partial<import("./bench-run").ScenarioReport>) => ({ doneAt: 0, bytes: 64 * MiB, streams: 1, cpuSeconds: 2, peakRssBytes: 120e6, ...extra });
  const spec = { broker: "mqtt", sizeBytes: 64 * MiB, chunkBytes: MiB } as const;
  // Uninterrupted: 1 s to 5 s. Killed at 32 MiB at 7 s (started at 5 s), resumed from 33 MiB, saved at 10 s.
  const uninterrupted: ResumeSend = { startedAt: 1000, sender: scenario({}), receiver: scenario({ doneAt: 5000 }) };
  const resumed = (publishedBytes: number, killedPublishedBytes = 35 * MiB): ResumeSend => ({
    startedAt: 5000,
    kill: { killedAt: 7000, killedAtBytes: 32 * MiB, publishedBytes: killedPublishedBytes },
    sender: scenario({ publishedBytes, windowBytes: 4 * MiB, sendStartOffset: 33 * MiB }),
    receiver: scenario({ doneAt: 10_000, startOffset: 33 * MiB }),
  });

  it("counts what the resumed sender re-sent, and times the kill to the file saved against the uninterrupted send", () => {
    expect(toResumeResult(spec, uninterrupted, resumed(31 * MiB + 2 * MiB))).toEqual({
      broker: "mqtt",
      sizeBytes: 64 * MiB,
      chunkBytes: MiB,
      windowBytes: 4 * MiB,
      uninterruptedSeconds: 4,
      killedAtBytes: 32 * MiB,
      killedSenderPublishedBytes: 35 * MiB,
      resumedFromBytes: 33 * MiB,
      resentBytes: 2 * MiB,
      killToDoneSeconds: 3,
      totalSeconds: 5,
      ratio: 1.25,
    });
  });

  it("fails a resume that re-sent more than one window, or whose killed sender had published more than one past it, or a file saved short", () => {
    expect(toResumeResult(spec, uninterrupted, resumed(31 * MiB + 4 * MiB)).resentBytes).toBe(4 * MiB);
    expect(() => toResumeResult(spec, uninterrupted, resumed(31 * MiB + 4 * MiB + 1))).toThrow(/re-sent 4194305 bytes, more than its window of 4194304/);
    expect(() => toResumeResult(spec, uninterrupted, resumed(31 * MiB, 38 * MiB))).toThrow(/published 5242880 bytes past where the resume started/);
    expect(() => toResumeResult(spec, { ...uninterrupted, receiver: scenario({ bytes: 1 }) }, resumed(31 * MiB))).toThrow(/1 bytes saved of/);
    expect(() => toResumeResult(spec, uninterrupted, uninterrupted)).toThrow(/not killed/);
  });

  it("renders a row per broker and the errors, and goes into the report when it ran", () => {
    const result = toResumeResult(spec, uninterrupted, resumed(31 * MiB));
    const rows = { sizeBytes: 64 * MiB, chunkBytes: MiB, results: [result], errors: [{ broker: "kafka" as const, error: "no \"scenario\" from the worker\nstack" }] };
    const section = renderResume(rows);
    expect(section).toContain("### Resume: a sender SIGKILLed half-way through 64 MiB");
    expect(section).toContain("| mqtt | 4.0 | 32 MiB | 33 MiB | 0 B | 2 MiB | 4 MiB | 3.0 | 5.0 | 1.25x | matched |");
    expect(section).toContain('- kafka: error: no "scenario" from the worker');
    expect(section).not.toContain("stack");
    expect(renderMarkdown(baseReport)).not.toContain("### Resume");
    expect(renderMarkdown({ ...baseReport, resume: rows })).toContain(section);
  });
});

describe("a quick run (--quick)", () => {
  const quickReport = (runs: RunResult[], failures: BenchReport["failures"] = []): BenchReport => ({
    date: "2026-01-02",
    machine: "2 cores, 24 GiB",
    node: "24.0.0",
    quick: true,
    sizeBytes: 16 * MiB,
    rounds: 1,
    windowChunks: 16,
    streamWindowChunks: undefined,
    command: "pnpm bench --quick",
    loadAverage: { start: 1, end: 1.5 },
    skipped: [],
    cells: summarise(runs, failures),
    runs,
    failures,
  });

  it("says it is a correctness smoke test and marks no ratio as a failure", () => {
    // 0.50x would be ❌ in a full run; 16 MiB is mostly start-up, so a quick run does not judge it.
    const markdown = renderMarkdown(quickReport([run("raw", 100), run("stream", 50), run("raw", 100, { broker: "mqtt" }), run("stream", 99, { broker: "mqtt" })]));
    expect(markdown).toContain("**Correctness smoke test (--quick), not a measurement.** @stream: 2 of 2 transfers of 16 MiB arrived whole with their SHA-256 matched end to end.");
    expect(markdown).toContain("they mean nothing here and are not judged");
    expect(markdown).toContain("| rabbitmq | 256 KiB | 100 | 50 | 0.50x |");
    expect(markdown).not.toMatch(/❌|✅|🟡/);
    expect(markdown).not.toContain("Goals:");
  });

  it("counts failed @stream transfers, and brokers that could not run", () => {
    const failures = [
      { broker: "rabbitmq" as const, mode: "stream" as const, chunkBytes: 256 * KiB, sizeBytes: 16 * MiB, round: 1, error: "@stream SHA-256 mismatch" },
      { broker: "kafka" as const, mode: "stream" as const, chunkBytes: 0, sizeBytes: 16 * MiB, round: 0, error: "nothing answers" },
    ];
    const [verdict] = quickRunSummary(quickReport([run("raw", 100)], failures));
    expect(verdict).toContain("@stream: 0 of 1 transfers of 16 MiB arrived whole with their SHA-256 matched end to end; 1 failed (see Errors).");
    expect(verdict).toContain("1 broker(s) could not be run at all");
  });

  it("leaves a full run's goal marks as they were", () => {
    const markdown = renderMarkdown({ ...quickReport([run("raw", 100), run("stream", 50)]), quick: false });
    expect(markdown).toContain("0.50x ❌");
    expect(markdown).toContain("Goals:");
    expect(markdown).not.toContain("smoke test");
  });
});

describe("toResult", () => {
  const spec = { broker: "rabbitmq" as const, mode: "stream" as const, chunkBytes: MiB, sizeBytes: 10e6, round: 1 };

  it("measures from the sender's start to the receiver's last byte", () => {
    const result = toResult(
      spec,
      worker("send", 50, { startedAt: 1000, sha256: "ab", bytes: 10e6 }),
      worker("receive", 60, { firstByteAt: 1020, doneAt: 3000, sha256: "ab", bytes: 10e6 }),
    );
    expect(result.seconds).toBe(2);
    expect(result.mbPerSecond).toBe(5);
    expect(result.timeToFirstByteMs).toBe(20);
  });

  it("fails a @stream run whose SHA-256 differs or whose bytes fall short", () => {
    expect(() => toResult(spec, worker("send", 1, { startedAt: 0, sha256: "ab" }), worker("receive", 1, { doneAt: 1, sha256: "cd", bytes: 10e6 }))).toThrow(/SHA-256 mismatch/);
    expect(() => toResult(spec, worker("send", 1, { startedAt: 0, sha256: "ab" }), worker("receive", 1, { doneAt: 1, sha256: "ab", bytes: 5 }))).toThrow(/delivered 5 bytes/);
  });

  it("counts what a raw receiver lost instead of failing", () => {
    const result = toResult({ ...spec, mode: "raw" }, worker("send", 1, { startedAt: 0 }), worker("receive", 1, { doneAt: 1000, bytes: 5e6, lost: 5, duplicated: 2 }));
    expect(result).toMatchObject({ lost: 5, duplicated: 2, bytesDelivered: 5e6, mbPerSecond: 5 });
  });
});
