import { fileURLToPath } from "node:url";
import { runTakeoverTest } from "@stream/conformance";
import { test } from "vitest";

runTakeoverTest({
  test,
  name: "kafka",
  transportModule: fileURLToPath(new URL("./fixtures/transport.mjs", import.meta.url)),
  sizeBytes: 128 * 1024 * 1024,
  onReport: (report) => console.log(`[kafka takeover] ${JSON.stringify(report)}`),
});
