import { runConformanceSuite, runTransportContract } from "@stream/conformance";
import { describe, test } from "vitest";
import { createMqttTransport } from "../src/index";
import { MQTT_PORT, MQTT_URL, plainClient } from "./broker";

for (const protocolVersion of [5, 4] as const) {
  runConformanceSuite({
    describe,
    test,
    name: `mqtt-v${protocolVersion}`,
    createTransport: () => createMqttTransport({ url: MQTT_URL, protocolVersion }),
  });

  runTransportContract({
    describe,
    test,
    name: `mqtt-v${protocolVersion}`,
    brokerPort: MQTT_PORT,
    createTransport: ({ port } = {}) =>
      createMqttTransport({ url: port ? `mqtt://127.0.0.1:${port}` : MQTT_URL, protocolVersion, reconnectPeriodMs: 200 }),
    injected: {
      make: () => plainClient({ protocolVersion }),
      createTransport: (client) => createMqttTransport({ client }),
      // Nothing is kept for a topic nobody reads (retention "none"): publish at QoS 1 and wait for the PUBACK.
      isOpen: async (client, channel) => {
        await client.publishAsync(`stream/${channel}`, "still open", { qos: 1 });
        return client.connected;
      },
      closeClient: (client) => client.endAsync(),
    },
  });
}
