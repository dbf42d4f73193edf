import { existsSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { runTlsTests } from "@stream/conformance";
import { afterAll, beforeAll, test } from "vitest";
import { createKafkaTransport } from "../src/index";

// A single-node KRaft Kafka of this test's own (the shared one keeps its plain listener only), with
// a SASL_SSL listener (TLS and a SCRAM-SHA-256 user made when its storage is formatted) and an SSL
// listener that requires a client certificate, beside its plain one.
const libs = join(process.env.BROKERS_CACHE_DIR ?? fileURLToPath(new URL("../../../tooling/brokers/.cache", import.meta.url)), "kafka/libs");

runTlsTests({
  test,
  beforeAll,
  afterAll,
  name: "kafka",
  broker: {
    script: fileURLToPath(new URL("../../../tooling/brokers/kafka.sh", import.meta.url)),
    ports: 4,
    env: ([port, controller, tls, mutualTls]) => ({
      KAFKA_PORT: String(port),
      KAFKA_CONTROLLER_PORT: String(controller),
      KAFKA_TLS_PORT: String(tls),
      KAFKA_MTLS_PORT: String(mutualTls),
      KAFKA_LIBS: libs,
      KAFKA_HEAP: "512M",
      KAFKA_OFFSETS_PARTITIONS: "1",
    }),
  },
  tlsPorts: ([, , tls = 0, mutualTls]) => ({ tls, ...(mutualTls === undefined ? {} : { mutualTls }) }),
  // SCRAM on the SASL_SSL port; the mutual TLS port authenticates by certificate alone.
  createTransport: ({ port, tls, username, password, mutualTls }) =>
    createKafkaTransport({
      brokers: [`127.0.0.1:${port}`],
      tls,
      platformatic: { retries: 2, retryDelay: 200, connectTimeout: 10_000, ...(mutualTls ? {} : { sasl: { mechanism: "SCRAM-SHA-256", username, password } }) },
    }),
  alsoTransferWith: {
    kafkajs: ({ port, tls, username, password }) =>
      createKafkaTransport({ brokers: [`127.0.0.1:${port}`], tls, kafkaConfig: { sasl: { mechanism: "scram-sha-256", username, password } } }),
  },
  ...(existsSync(join(libs, ".stamp")) ? {} : { skip: `no Kafka jars in ${libs} (tooling/brokers/kafka.sh up resolves them)` }),
});
