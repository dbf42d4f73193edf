import { fileURLToPath } from "node:url";
import { runFanInTest } from "@stream/conformance";
import { afterAll, test } from "vitest";
import { deleteQueuesStartingWith } from "./helpers";

// 20 producers × 8 MiB at once into one consumer, one stream at a time: `pnpm test:faults`.
runFanInTest({
  test,
  name: "rabbitmq",
  transportModule: fileURLToPath(new URL("./fixtures/transport.mjs", import.meta.url)),
  onReport: (report) => console.log(`[rabbitmq fan-in] ${JSON.stringify(report)}`),
});

afterAll(() => deleteQueuesStartingWith("fan-in.rabbitmq."));
