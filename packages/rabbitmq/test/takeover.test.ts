import { fileURLToPath } from "node:url";
import { runTakeoverTest } from "@stream/conformance";
import { afterAll, test } from "vitest";
import { deleteQueuesStartingWith } from "./helpers";

const transportModule = fileURLToPath(new URL("./fixtures/transport.mjs", import.meta.url));
for (const source of ["file", "readable"] as const) {
  runTakeoverTest({
    test,
    name: "rabbitmq",
    transportModule,
    source,
    sizeBytes: 128 * 1024 * 1024,
    onReport: (report) => console.log(`[rabbitmq takeover, ${source}] ${JSON.stringify(report)}`),
  });
}

afterAll(() => deleteQueuesStartingWith("takeover.rabbitmq."));
