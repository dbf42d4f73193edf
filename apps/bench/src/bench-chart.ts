import type { BenchReport } from "./bench-report";
import { GOALS } from "./bench-report";
import { formatSize } from "./sizes";

/** One bar of the chart. */
interface Bar {
  broker: string;
  chunk: string;
  chunkBytes: number;
  client: "raw client" | "@stream";
  mbPerSecond: number;
  peakRssMB: number;
  label: string;
}

const CLIENTS = ["raw client", "@stream"];

/** The bars of the chart: per cell, raw and @stream throughput and the larger of their two peak RSS. */
export function chartBars(report: Pick<BenchReport, "cells">): Bar[] {
  const bars: Bar[] = [];
  for (const cell of report.cells) {
    for (const [client, summary] of [["raw client", cell.raw], ["@stream", cell.stream]] as const) {
      if (!summary) continue;
      bars.push({
        broker: cell.broker,
        chunk: formatSize(cell.chunkBytes),
        chunkBytes: cell.chunkBytes,
        client,
        mbPerSecond: Math.round(summary.mbPerSecond),
        peakRssMB: Math.round(Math.max(summary.senderPeakRssMB, summary.receiverPeakRssMB)),
        label: client === "@stream" && cell.ratio !== undefined ? `${cell.ratio.toFixed(2)}x` : "",
      });
    }
  }
  return bars;
}

/**
 * The Vega-Lite spec: for each broker, throughput by chunk size (raw client beside @stream, the
 * ratio over @stream's bar), and below it each side's peak RSS against the 150 MB goal.
 */
export function chartSpec(report: Pick<BenchReport, "cells" | "date" | "machine" | "sizeBytes">): Record<string, unknown> {
  const chunks = [...new Set(report.cells.map((cell) => cell.chunkBytes))].sort((a, b) => a - b).map(formatSize);
  const brokers = [...new Set(report.cells.map((cell) => cell.broker))];
  const x = { field: "chunk", type: "ordinal", sort: chunks, title: "chunk size", axis: { labelAngle: 0 } };
  const color = { field: "client", type: "nominal", scale: { domain: CLIENTS, range: ["#9aa5b1", "#2f6fde"] }, legend: { title: null, orient: "top" } };
  const facet = { column: { field: "broker", type: "nominal", sort: brokers, title: null, header: { labelFontSize: 13, labelFontWeight: "bold" } } };
  // The RSS row sits under the throughput row's broker names; it repeats them small.
  const rssFacet = { column: { ...facet.column, header: { labelFontSize: 10, labelColor: "#666" } } };
  return {
    $schema: "https://vega.github.io/schema/vega-lite/v6.json",
    title: { text: `@stream vs raw client, ${formatSize(report.sizeBytes)} file`, subtitle: `${report.date} · ${report.machine}` },
    data: { values: chartBars(report) },
    config: { font: "Helvetica, Arial, sans-serif", view: { stroke: null } },
    vconcat: [
      {
        facet,
        spec: {
          width: { step: 22 },
          height: 180,
          layer: [
            {
              mark: { type: "bar" },
              encoding: { x, xOffset: { field: "client", sort: CLIENTS }, y: { field: "mbPerSecond", type: "quantitative", title: "MB/s" }, color },
            },
            {
              mark: { type: "text", dy: -6, fontSize: 9 },
              encoding: { x, xOffset: { field: "client", sort: CLIENTS }, y: { field: "mbPerSecond", type: "quantitative" }, text: { field: "label" } },
            },
          ],
        },
        // Brokers differ by an order of magnitude, and not all have an 8 MiB cell.
        resolve: { scale: { y: "independent", x: "independent" } },
      },
      {
        facet: rssFacet,
        spec: {
          width: { step: 22 },
          height: 110,
          layer: [
            {
              mark: { type: "bar" },
              encoding: {
                x,
                xOffset: { field: "client", sort: CLIENTS },
                y: { field: "peakRssMB", type: "quantitative", title: "peak RSS MB (max of snd, rcv)" },
                color,
              },
            },
            { mark: { type: "rule", color: "#c0392b", strokeDash: [4, 3] }, encoding: { y: { datum: GOALS.peakRssMB } } },
          ],
        },
        // One RSS scale for all, so the 150 MB goal line sits at one height.
        resolve: { scale: { x: "independent" } },
      },
    ],
  };
}

/** Renders the chart to an SVG string, headless (Vega's SVG renderer, no canvas). */
export async function renderChartSvg(report: Pick<BenchReport, "cells" | "date" | "machine" | "sizeBytes">): Promise<string> {
  const vega = await import("vega");
  const { compile } = await import("vega-lite");
  // Vega-Lite warns that faceted independent scales share a field; here they do, by design.
  const logger = vega.logger(vega.Error);
  const view = new vega.View(vega.parse(compile(chartSpec(report) as never, { logger }).spec), { renderer: "none", logger });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}
