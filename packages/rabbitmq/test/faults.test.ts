import { fileURLToPath } from "node:url";
import { runFaultTests } from "@stream/conformance";
import { afterAll, test } from "vitest";
import { deleteQueuesStartingWith } from "./helpers";

// Each side cut for 3 s and for 30 s, sender killed and resumed: `pnpm test:faults`.
runFaultTests({
  test,
  name: "rabbitmq",
  transportModule: fileURLToPath(new URL("./fixtures/transport.mjs", import.meta.url)),
  brokerPort: Number(new URL(process.env.STREAM_RABBITMQ_URL ?? "amqp://127.0.0.1:5672").port || 5672),
  onReport: (report) => console.log(`[rabbitmq faults] ${report.fault}: ${report.seconds.toFixed(1)} s, ${report.duplicateBytes} duplicate bytes, sender reconnecting: ${report.senderSawReconnecting}`),
  onResume: (report) => console.log(`[rabbitmq resume] ${JSON.stringify(report)}`),
});

afterAll(() => deleteQueuesStartingWith("faults.rabbitmq."));
