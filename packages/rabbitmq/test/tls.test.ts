import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { runTlsTests } from "@stream/conformance";
import { afterAll, beforeAll, test } from "vitest";
import { createRabbitmqTransport } from "../src/index";

// A RabbitMQ node of this test's own (the machine's on 5672 cannot change) with an AMQPS listener
// and a user of its own instead of guest. Mutual TLS is tested on the other brokers: RabbitMQ's TLS
// options are one set for every TLS listener, and this one accepts clients without a certificate.
runTlsTests({
  test,
  beforeAll,
  afterAll,
  name: "rabbitmq",
  broker: {
    script: fileURLToPath(new URL("../../../tooling/brokers/rabbitmq.sh", import.meta.url)),
    ports: 3,
    env: ([port, dist, tls]) => ({
      RABBITMQ_PRIVATE_PORT: String(port),
      RABBITMQ_PRIVATE_DIST_PORT: String(dist),
      RABBITMQ_PRIVATE_TLS_PORT: String(tls),
    }),
  },
  tlsPorts: ([, , tls = 0]) => ({ tls }),
  createTransport: ({ port, tls, username, password }) =>
    createRabbitmqTransport({
      url: `amqps://${encodeURIComponent(username)}:${encodeURIComponent(password)}@localhost:${port}`,
      tls,
      socketOptions: { timeout: 10_000 },
    }),
  ...(existsSync("/usr/lib/rabbitmq/bin/rabbitmq-server") ? {} : { skip: "no /usr/lib/rabbitmq/bin/rabbitmq-server (Debian's rabbitmq-server package)" }),
});
