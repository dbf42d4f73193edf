/**
 * Apache Kafka adapter for `@stream/core`, on `@platformatic/kafka` by default or on kafkajs.
 *
 * @packageDocumentation
 */
export { createKafkaTransport } from "./kafka-transport";
export type { KafkajsLike, KafkaTransportOptions, PlatformaticConnectionOptions } from "./kafka-transport-options";
