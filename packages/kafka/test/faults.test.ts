import { fileURLToPath } from "node:url";
import { runFaultTests } from "@stream/conformance";
import { test } from "vitest";

// Each side cut for 3 s and for 30 s, sender killed and resumed: `pnpm test:faults`.
runFaultTests({
  test,
  name: "kafka",
  transportModule: fileURLToPath(new URL("./fixtures/transport.mjs", import.meta.url)),
  brokerPort: Number((process.env.STREAM_KAFKA_BROKERS ?? "127.0.0.1:9092").split(",")[0]?.split(":")[1] ?? 9092),
  // Kafka's transport cannot say it is reconnecting (see createKafkaTransport), and kafkajs rides
  // out a 3 s cut in its own retries, so no publish fails either: the sender's progress may stay
  // "connected" through a short cut.
  reportsReconnecting: false,
  onReport: (report) => console.log(`[kafka faults] ${report.fault}: ${report.seconds.toFixed(1)} s, ${report.duplicateBytes} duplicate bytes, sender reconnecting: ${report.senderSawReconnecting}`),
  onResume: (report) => console.log(`[kafka resume] ${JSON.stringify(report)}`),
});
