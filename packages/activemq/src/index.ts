/**
 * `@stream/activemq`: a `@stream/core` transport for ActiveMQ Classic over STOMP, with `stompit`.
 *
 * @packageDocumentation
 */
export { createActiveMqTransport } from "./activemq-transport";
export type {
  ActiveMqStompClient,
  ActiveMqStompMessage,
  ActiveMqStompSubscription,
  ActiveMqTransportOptions,
} from "./activemq-transport-options";
