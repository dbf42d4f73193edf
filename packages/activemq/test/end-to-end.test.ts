import { fileURLToPath } from "node:url";
import { runEndToEndTest } from "@stream/conformance";
import { test } from "vitest";

// Two real processes, a sender and a receiver, each loading test/fixtures/transport.mjs, which
// imports the built @stream/activemq by name (run `pnpm --filter @stream/activemq build` first).
runEndToEndTest({
  test,
  name: "activemq",
  transportModule: fileURLToPath(new URL("./fixtures/transport.mjs", import.meta.url)),
  sizeBytes: 256 * 1024 * 1024,
  onReport(report) {
    const figures = {
      sizeMiB: report.sizeBytes / 1024 / 1024,
      megabytesPerSecond: Number(report.megabytesPerSecond.toFixed(1)),
      receiverPeakRssMB: Number((report.received.peakRssBytes / 1e6).toFixed(1)),
      senderPeakRssMB: Number((report.sent.peakRssBytes / 1e6).toFixed(1)),
    };
    console.log(`[activemq end-to-end] ${JSON.stringify(figures)}`);
  },
});
