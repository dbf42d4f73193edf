import { fileURLToPath } from "node:url";
import { runTakeoverTest } from "@stream/conformance";
import { test } from "vitest";

// A receiver process SIGKILLed half way through 128 MiB; a second one continues its partial file.
runTakeoverTest({
  test,
  name: "kafka",
  transportModule: fileURLToPath(new URL("./fixtures/transport.mjs", import.meta.url)),
  onReport: (report) => console.log(`[kafka takeover] ${JSON.stringify(report)}`),
});
