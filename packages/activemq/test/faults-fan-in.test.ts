import { fileURLToPath } from "node:url";
import { runFanInTest } from "@stream/conformance";
import { test } from "vitest";

// 20 producers × 8 MiB at once into one consumer, one stream at a time: `pnpm test:faults`.
runFanInTest({
  test,
  name: "activemq",
  transportModule: fileURLToPath(new URL("./fixtures/transport.mjs", import.meta.url)),
  onReport: (report) => console.log(`[activemq fan-in] ${JSON.stringify(report)}`),
});
