import { fileURLToPath } from "node:url";
import { runEndToEndTest } from "@stream/conformance";
import { test } from "vitest";

const MB = 1_000_000;
/** The receiver holds a window, not the file: its peak RSS stays under 200 MB whatever the size. */
const RECEIVER_MAX_RSS_BYTES = 200 * MB;
/**
 * The sender's bound, looser: kafkajs encodes each record through four or five power-of-two buffers
 * (about 5 MB of short-lived ArrayBuffers per 1 MB frame) and V8 collects them lazily, so the
 * sender peaks at 150-200 MB although what it holds live stays near 100 MB (measured with a forced
 * GC); @platformatic/kafka's sender peaked at about 200 MB too (2026-12, 256 MiB).
 */
const SENDER_MAX_RSS_BYTES = 250 * MB;

/** Each client's transport module (a name here is part of a channel name: `[A-Za-z0-9._-]`). */
const fixtures = { "kafka-platformatic": "./fixtures/transport.mjs", "kafka-kafkajs": "./fixtures/transport-kafkajs.mjs" };

for (const [client, fixture] of Object.entries(fixtures)) {
  runEndToEndTest({
    test,
    name: client,
    transportModule: fileURLToPath(new URL(fixture, import.meta.url)),
    sizeBytes: 256 * 1024 * 1024,
    maxRssBytes: SENDER_MAX_RSS_BYTES,
    timeoutMs: 180_000,
    onReport: (report) => {
      console.log(
        `[${client} end-to-end] ${(report.sizeBytes / 1024 / 1024).toFixed(0)} MiB: ${report.megabytesPerSecond.toFixed(1)} MB/s; ` +
          `receiver peak RSS ${(report.received.peakRssBytes / MB).toFixed(1)} MB, sender peak RSS ${(report.sent.peakRssBytes / MB).toFixed(1)} MB`,
      );
      if (report.received.peakRssBytes >= RECEIVER_MAX_RSS_BYTES) {
        throw new Error(`receiver peak RSS ${report.received.peakRssBytes} bytes >= ${RECEIVER_MAX_RSS_BYTES}`);
      }
    },
  });
}
