/**
 * Apache Kafka adapter for `@stream/core`, built on kafkajs.
 *
 * @packageDocumentation
 */
export { createKafkaTransport } from "./kafka-transport";
export type { KafkaTransportOptions } from "./kafka-transport-options";
