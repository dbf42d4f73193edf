/**
 * `@stream/activemq`: a `@stream/core` transport for ActiveMQ Classic over STOMP, with `stompit`.
 *
 * @packageDocumentation
 */
export { createActivemqTransport } from "./activemq-transport";
export type {
  ActivemqStompClient,
  ActivemqStompMessage,
  ActivemqStompSubscription,
  ActivemqTransportOptions,
} from "./activemq-transport-options";
