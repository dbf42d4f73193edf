/**
 * RabbitMQ transport for `@stream/core`: streams files of any size through RabbitMQ with amqplib.
 *
 * @packageDocumentation
 */
export { createRabbitmqTransport } from "./rabbitmq-transport";
export type { RabbitmqConnectOptions, RabbitmqTransportOptions } from "./rabbitmq-transport-options";
export type {
  RabbitmqChannel,
  RabbitmqConfirmChannel,
  RabbitmqConnection,
  RabbitmqEmitter,
  RabbitmqMessage,
} from "./rabbitmq-client";
