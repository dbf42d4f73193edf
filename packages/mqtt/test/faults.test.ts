import { fileURLToPath } from "node:url";
import { runFaultTests } from "@stream/conformance";
import { test } from "vitest";

// Each side cut for 3 s and for 30 s, sender killed and resumed: `pnpm test:faults`.
runFaultTests({
  test,
  name: "mqtt",
  transportModule: fileURLToPath(new URL("./fixtures/transport.mjs", import.meta.url)),
  brokerPort: Number(new URL(process.env.STREAM_MQTT_URL ?? "mqtt://127.0.0.1:1883").port || 1883),
  onReport: (report) => console.log(`[mqtt faults] ${report.fault}: ${report.seconds.toFixed(1)} s, ${report.duplicateBytes} duplicate bytes, sender reconnecting: ${report.senderSawReconnecting}`),
  onResume: (report) => console.log(`[mqtt resume] ${JSON.stringify(report)}`),
});
