import { fileURLToPath } from "node:url";
import { type EndToEndReport, runEndToEndTest } from "@stream/conformance";
import { test } from "vitest";

const transportModule = fileURLToPath(new URL("./fixtures/transport.mjs", import.meta.url));

/** The figures of the last run, for the README. */
export let lastReport: EndToEndReport | undefined;

runEndToEndTest({
  test,
  name: "mqtt",
  transportModule,
  sizeBytes: 256 * 1024 * 1024,
  onReport: (report) => {
    lastReport = report;
    console.log(
      `[mqtt e2e] ${(report.sizeBytes / 1024 / 1024).toFixed(0)} MiB in ${(report.sizeBytes / 1e6 / report.megabytesPerSecond).toFixed(1)} s: ` +
        `${report.megabytesPerSecond.toFixed(1)} MB/s, receiver peak RSS ${(report.received.peakRssBytes / 1e6).toFixed(1)} MB, ` +
        `sender peak RSS ${(report.sent.peakRssBytes / 1e6).toFixed(1)} MB`,
    );
  },
});
