import { describe, expect, it } from "vitest";
import { chartBars, renderChartSvg } from "./bench-chart";
import { summarise } from "./bench-report";
import type { RunResult } from "./bench-run";
import { KiB, MiB } from "./sizes";

const run = (mode: "raw" | "stream", chunkBytes: number, mbPerSecond: number): RunResult => ({
  broker: "mqtt",
  mode,
  chunkBytes,
  sizeBytes: 1,
  round: 1,
  seconds: 1,
  mbPerSecond,
  timeToFirstByteMs: 1,
  bytesDelivered: 1,
  lost: 0,
  duplicated: 0,
  sender: { role: "send", doneAt: 0, bytes: 0, chunks: 0, cpuSeconds: 0, peakRssBytes: 90e6 },
  receiver: { role: "receive", doneAt: 0, bytes: 0, chunks: 0, cpuSeconds: 0, peakRssBytes: 120e6 },
  oneProcess: false,
});

const report = {
  cells: summarise([run("raw", 64 * KiB, 100), run("stream", 64 * KiB, 96), run("raw", MiB, 200), run("stream", MiB, 150)]),
  date: "2026-01-02",
  machine: "2 cores, 24 GiB",
  sizeBytes: 1024 * MiB,
};

describe("chartBars", () => {
  it("has a bar per side per cell, the ratio over @stream's", () => {
    const bars = chartBars(report);
    expect(bars).toHaveLength(4);
    expect(bars[1]).toMatchObject({ broker: "mqtt", chunk: "64 KiB", client: "@stream", mbPerSecond: 96, peakRssMB: 120, label: "0.96x" });
    expect(bars[0]?.label).toBe("");
  });
});

describe("renderChartSvg", () => {
  it("renders headless to an SVG with bars and labels", async () => {
    const svg = await renderChartSvg(report);
    expect(svg.startsWith("<svg")).toBe(true);
    expect(svg).toContain("</svg>");
    expect(svg).toContain("0.96x");
    expect(svg).toContain("64 KiB");
    expect(svg).toContain("MB/s");
    // 4 throughput bars and 4 RSS bars.
    expect(svg.match(/aria-roledescription="bar"/g)).toHaveLength(8);
  });
});
