/**
 * RabbitMQ transport for `@stream/core`: streams files of any size through RabbitMQ with amqplib.
 *
 * @packageDocumentation
 */
export { createRabbitMQTransport } from "./rabbitmq-transport";
export type { RabbitMQConnectOptions, RabbitMQTransportOptions } from "./rabbitmq-transport-options";
export type {
  RabbitMQChannel,
  RabbitMQConfirmChannel,
  RabbitMQConnection,
  RabbitMQEmitter,
  RabbitMQMessage,
} from "./rabbitmq-connection";
