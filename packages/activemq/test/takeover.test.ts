import { fileURLToPath } from "node:url";
import { runTakeoverTest } from "@stream/conformance";
import { test } from "vitest";

// A receiver process SIGKILLed half way through 128 MiB; a second one continues its partial file.
runTakeoverTest({
  test,
  name: "activemq",
  transportModule: fileURLToPath(new URL("./fixtures/transport.mjs", import.meta.url)),
  onReport: (report) => console.log(`[activemq takeover] ${JSON.stringify(report)}`),
});
