import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { runTlsTests } from "@stream/conformance";
import { afterAll, beforeAll, test } from "vitest";
import { createMqttTransport } from "../src/index";

// A Mosquitto of this test's own (the shared one on 1883 stays as it is), with a TLS listener and
// a mutual TLS listener beside its plain one, both wanting a user and password.
runTlsTests({
  test,
  beforeAll,
  afterAll,
  name: "mqtt",
  broker: {
    script: fileURLToPath(new URL("../../../tooling/brokers/mosquitto.sh", import.meta.url)),
    ports: 3,
    env: ([plain, tls, mutualTls]) => ({ MQTT_PORT: String(plain), MQTT_TLS_PORT: String(tls), MQTT_MTLS_PORT: String(mutualTls) }),
  },
  tlsPorts: ([, tls = 0, mutualTls]) => ({ tls, ...(mutualTls === undefined ? {} : { mutualTls }) }),
  createTransport: ({ port, tls, username, password }) =>
    createMqttTransport({ url: `mqtts://127.0.0.1:${port}`, tls, clientOptions: { username, password }, connectTimeoutMs: 10_000 }),
  ...(existsSync("/usr/sbin/mosquitto") ? {} : { skip: "no /usr/sbin/mosquitto (Debian's mosquitto package)" }),
});
