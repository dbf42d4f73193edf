import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { runBrokerRestartTest } from "@stream/conformance";
import { afterAll, beforeAll, test } from "vitest";

// A RabbitMQ node of this test's own (tooling/brokers/rabbitmq.sh with RABBITMQ_PRIVATE_PORT: its
// own node name, AMQP and Erlang distribution ports and mnesia dir in a temporary folder; the
// machine's node and /etc/rabbitmq are not touched), SIGKILLed at half the file and started again
// 2 s later on the same dir and ports.
runBrokerRestartTest({
  test,
  beforeAll,
  afterAll,
  name: "rabbitmq",
  transportModule: fileURLToPath(new URL("./fixtures/transport.mjs", import.meta.url)),
  broker: {
    script: fileURLToPath(new URL("../../../tooling/brokers/rabbitmq.sh", import.meta.url)),
    ports: 2,
    env: ([port, dist]) => ({ RABBITMQ_PRIVATE_PORT: String(port), RABBITMQ_PRIVATE_DIST_PORT: String(dist) }),
  },
  onStarted: ({ ports }) => void (process.env.STREAM_RABBITMQ_URL = `amqp://127.0.0.1:${ports[0]}`), // read by the workers' transport module
  ...(existsSync("/usr/lib/rabbitmq/bin/rabbitmq-server") ? {} : { skip: "no /usr/lib/rabbitmq/bin/rabbitmq-server (Debian's rabbitmq-server package)" }),
});
