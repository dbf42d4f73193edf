import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { runBrokerRestartTest } from "@stream/conformance";
import { afterAll, beforeAll, test } from "vitest";

// An ActiveMQ of this test's own (tooling/brokers/activemq.sh on a temporary data dir and free
// STOMP and OpenWire ports; its persistent KahaDB store recovers the frames), SIGKILLed at half the
// file and started again 2 s later on the same store and ports.
runBrokerRestartTest({
  test,
  beforeAll,
  afterAll,
  name: "activemq",
  transportModule: fileURLToPath(new URL("./fixtures/transport.mjs", import.meta.url)),
  broker: {
    script: fileURLToPath(new URL("../../../tooling/brokers/activemq.sh", import.meta.url)),
    ports: 2,
    env: ([stomp, openwire]) => ({ ACTIVEMQ_STOMP_PORT: String(stomp), ACTIVEMQ_OPENWIRE_PORT: String(openwire), ACTIVEMQ_HEAP: "512M" }),
  },
  onStarted: ({ ports }) => void (process.env.STREAM_ACTIVEMQ_URL = `stomp://127.0.0.1:${ports[0]}`), // read by the workers' transport module
  ...(existsSync("/usr/share/activemq/bin/activemq.jar") ? {} : { skip: "no ActiveMQ in /usr/share/activemq (Debian's activemq package)" }),
});
