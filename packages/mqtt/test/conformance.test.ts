import { runConformanceSuite } from "@stream/conformance";
import { describe, test } from "vitest";
import { createMqttTransport } from "../src/index";
import { MQTT_URL } from "./broker";

for (const protocolVersion of [5, 4] as const) {
  runConformanceSuite({
    describe,
    test,
    name: `mqtt-v${protocolVersion}`,
    createTransport: () => createMqttTransport({ url: MQTT_URL, protocolVersion }),
  });
}
