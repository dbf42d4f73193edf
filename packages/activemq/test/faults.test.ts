import { fileURLToPath } from "node:url";
import { runFaultTests } from "@stream/conformance";
import { test } from "vitest";

// Each side cut for 3 s and for 30 s, sender killed and resumed: `pnpm test:faults`.
runFaultTests({
  test,
  name: "activemq",
  transportModule: fileURLToPath(new URL("./fixtures/transport.mjs", import.meta.url)),
  brokerPort: Number(new URL(process.env.STREAM_ACTIVEMQ_URL ?? "stomp://127.0.0.1:61613").port || 61613),
  onReport: (report) => console.log(`[activemq faults] ${report.fault}: ${report.seconds.toFixed(1)} s, ${report.duplicateBytes} duplicate bytes, sender reconnecting: ${report.senderSawReconnecting}`),
  onResume: (report) => console.log(`[activemq resume] ${JSON.stringify(report)}`),
});
