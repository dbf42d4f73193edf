import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { runTlsTests } from "@stream/conformance";
import { afterAll, beforeAll, test } from "vitest";
import { createActivemqTransport } from "../src/index";

// An ActiveMQ of this test's own with a STOMP+TLS connector and a mutual TLS one beside its plain
// STOMP. ActiveMQ's simple authentication covers the whole broker, so the shared broker (anonymous
// STOMP, which the other tests use) stays as it is and this one wants a user and password everywhere.
runTlsTests({
  test,
  beforeAll,
  afterAll,
  name: "activemq",
  broker: {
    script: fileURLToPath(new URL("../../../tooling/brokers/activemq.sh", import.meta.url)),
    ports: 4,
    env: ([stomp, openwire, tls, mutualTls]) => ({
      ACTIVEMQ_STOMP_PORT: String(stomp),
      ACTIVEMQ_OPENWIRE_PORT: String(openwire),
      ACTIVEMQ_STOMP_TLS_PORT: String(tls),
      ACTIVEMQ_STOMP_MTLS_PORT: String(mutualTls),
      ACTIVEMQ_HEAP: "512M",
    }),
  },
  tlsPorts: ([, , tls = 0, mutualTls]) => ({ tls, ...(mutualTls === undefined ? {} : { mutualTls }) }),
  createTransport: ({ port, tls, username, password }) =>
    createActivemqTransport({ url: `stomp+ssl://127.0.0.1:${port}`, tls, login: username, passcode: password, connectTimeoutMs: 10_000 }),
  ...(existsSync("/usr/share/activemq/bin/activemq.jar") ? {} : { skip: "no ActiveMQ in /usr/share/activemq (Debian's activemq package)" }),
});
