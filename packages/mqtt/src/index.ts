/**
 * MQTT 3.1.1 / 5 adapter for `@stream/core`, built on mqtt.js.
 *
 * @packageDocumentation
 */
export { createMqttTransport } from "./mqtt-transport";
export type { MqttTransportOptions } from "./mqtt-transport-options";
