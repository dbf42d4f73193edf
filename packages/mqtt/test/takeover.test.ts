import { fileURLToPath } from "node:url";
import { runTakeoverTest } from "@stream/conformance";
import { test } from "vitest";

const transportModule = fileURLToPath(new URL("./fixtures/transport.mjs", import.meta.url));
for (const source of ["file", "readable"] as const) {
  runTakeoverTest({
    test,
    name: "mqtt",
    transportModule,
    source,
    sizeBytes: 128 * 1024 * 1024,
    onReport: (report) => console.log(`[mqtt takeover, ${source}] ${JSON.stringify(report)}`),
  });
}
