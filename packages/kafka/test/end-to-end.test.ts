import { fileURLToPath } from "node:url";
import { runEndToEndTest } from "@stream/conformance";
import { test } from "vitest";

const MB = 1_000_000;
/** The receiver holds a window, not the file: its peak RSS stays under 200 MB whatever the size. */
const RECEIVER_MAX_RSS_BYTES = 200 * MB;
/**
 * The sender's bound, looser: kafkajs encodes each record through four or five power-of-two buffers
 * (about 5 MB of short-lived ArrayBuffers per 1 MB frame) and V8 collects them lazily, so the
 * sender peaks at 150-190 MB although what it holds live stays near 100 MB (measured with a forced GC).
 */
const SENDER_MAX_RSS_BYTES = 250 * MB;

const fixtures = { "@platformatic/kafka": "./fixtures/transport.mjs", kafkajs: "./fixtures/transport-kafkajs.mjs" };

for (const [client, fixture] of Object.entries(fixtures)) {
  runEndToEndTest({
    test,
    name: `kafka on ${client}`,
    transportModule: fileURLToPath(new URL(fixture, import.meta.url)),
    sizeBytes: 256 * 1024 * 1024,
    maxRssBytes: SENDER_MAX_RSS_BYTES,
    timeoutMs: 180_000,
    onReport: (report) => {
      console.log(
        `[kafka end-to-end on ${client}] ${(report.sizeBytes / 1024 / 1024).toFixed(0)} MiB: ${report.megabytesPerSecond.toFixed(1)} MB/s; ` +
          `receiver peak RSS ${(report.received.peakRssBytes / MB).toFixed(1)} MB, sender peak RSS ${(report.sent.peakRssBytes / MB).toFixed(1)} MB`,
      );
      if (report.received.peakRssBytes >= RECEIVER_MAX_RSS_BYTES) {
        throw new Error(`receiver peak RSS ${report.received.peakRssBytes} bytes >= ${RECEIVER_MAX_RSS_BYTES}`);
      }
    },
  });
}
