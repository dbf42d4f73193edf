import { fileURLToPath } from "node:url";
import { runTakeoverTest } from "@stream/conformance";
import { afterAll, test } from "vitest";
import { deleteQueuesStartingWith } from "./helpers";

// A receiver process SIGKILLed half way through 128 MiB; a second one continues its partial file.
runTakeoverTest({
  test,
  name: "rabbitmq",
  transportModule: fileURLToPath(new URL("./fixtures/transport.mjs", import.meta.url)),
  onReport: (report) => console.log(`[rabbitmq takeover] ${JSON.stringify(report)}`),
});

afterAll(() => deleteQueuesStartingWith("takeover.rabbitmq."));
