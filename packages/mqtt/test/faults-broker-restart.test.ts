import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { runBrokerRestartTest } from "@stream/conformance";
import { afterAll, beforeAll, test } from "vitest";

// A Mosquitto of this test's own (tooling/brokers/mosquitto.sh on a temporary dir and a free port,
// not the shared one), SIGKILLed at half the file and started again 2 s later: a new broker with
// no session, no subscription and none of the frames in flight. The adapter reconnects and
// subscribes again, the sender's retries and retransmissions bring the rest.
runBrokerRestartTest({
  test,
  beforeAll,
  afterAll,
  name: "mqtt",
  transportModule: fileURLToPath(new URL("./fixtures/transport.mjs", import.meta.url)),
  broker: {
    script: fileURLToPath(new URL("../../../tooling/brokers/mosquitto.sh", import.meta.url)),
    ports: 1,
    env: ([port]) => ({ MQTT_PORT: String(port) }),
  },
  ...(existsSync("/usr/sbin/mosquitto") ? {} : { skip: "no /usr/sbin/mosquitto (Debian's mosquitto package)" }),
});
