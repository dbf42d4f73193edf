import { existsSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { runBrokerRestartTest } from "@stream/conformance";
import { afterAll, beforeAll, test } from "vitest";

// A single-node KRaft Kafka of this test's own (tooling/brokers/kafka.sh on a temporary log dir,
// formatted once, free broker and controller ports, the shared cache's jars), SIGKILLed at half the
// file and started again 2 s later on the same dir and ports.
const libs = join(process.env.BROKERS_CACHE_DIR ?? fileURLToPath(new URL("../../../tooling/brokers/.cache", import.meta.url)), "kafka/libs");

runBrokerRestartTest({
  test,
  beforeAll,
  afterAll,
  name: "kafka",
  transportModule: fileURLToPath(new URL("./fixtures/transport.mjs", import.meta.url)),
  broker: {
    script: fileURLToPath(new URL("../../../tooling/brokers/kafka.sh", import.meta.url)),
    ports: 2,
    env: ([port, controller]) => ({ KAFKA_PORT: String(port), KAFKA_CONTROLLER_PORT: String(controller), KAFKA_LIBS: libs, KAFKA_HEAP: "512M" }),
  },
  onStarted: ({ ports }) => void (process.env.STREAM_KAFKA_BROKERS = `127.0.0.1:${ports[0]}`), // read by the workers' transport module
  ...(existsSync(join(libs, ".stamp")) ? {} : { skip: `no Kafka jars in ${libs} (tooling/brokers/kafka.sh up resolves them)` }),
});
