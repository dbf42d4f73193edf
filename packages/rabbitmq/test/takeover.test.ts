import { fileURLToPath } from "node:url";
import { runTakeoverTest } from "@stream/conformance";
import { afterAll, test } from "vitest";
import { deleteQueuesStartingWith } from "./helpers";

runTakeoverTest({
  test,
  name: "rabbitmq",
  transportModule: fileURLToPath(new URL("./fixtures/transport.mjs", import.meta.url)),
  sizeBytes: 128 * 1024 * 1024,
  onReport: (report) => console.log(`[rabbitmq takeover] ${JSON.stringify(report)}`),
});

afterAll(() => deleteQueuesStartingWith("takeover.rabbitmq."));
