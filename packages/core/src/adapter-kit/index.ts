/**
 * `@stream/core/adapter-kit`: what every broker adapter needs, written once here rather than
 * in each adapter: the channel-name rule and the stream/inbox mapping (`channelMap`), error
 * mapping to `TransportError` (`transportErrors`), option checks (`integerOptions`), TLS
 * options mapped onto Node's `tls.connect` (`nodeTlsOptions`, with its loud unverified warning),
 * one-frame-at-a-time delivery, connection supervision, the connection state a transport reports
 * (`ConnectionStatus`), subscription bookkeeping (`SubscriptionSet`), a client made on first use
 * (`Lazy`), a call that settles once (`PendingCall`), `withTimeout`, and core's one retry loop
 * and backoff (and `sleep`) for an adapter's own retries.
 * An application never imports it.
 *
 * @packageDocumentation
 */
export { assertChannelName } from "./channel-name";
export { channelMap, type ChannelTargets } from "./channel-map";
export { transportErrors, type TransportErrors, type TransportErrorsOptions } from "./transport-errors";
export { integerOptions, type IntegerRange } from "./options";
export { isTlsCertificateError, nodeTlsOptions, TLS_UNVERIFIED_WARNING, type Pem, type TlsOptions } from "./tls";
export { SubscriptionSet } from "./subscription-set";
export { Lazy } from "./lazy";
export { PendingCall } from "./pending-call";
export { withTimeout } from "./timeout";
export { MAX_CHANNEL_CHARS, MAX_DESTINATION_CHARS, isChannelName, isDestinationName } from "../protocol/frame-codec";
export { FrameQueue, type FrameQueueOptions } from "./frame-queue";
export { ConnectionStatus } from "./connection-status";
export { retryDelayMs, sleep, withRetries, type RetryControl, type RetryPolicy } from "../backoff";
export {
  ConnectionSupervisor,
  type ConnectionPhase,
  type ConnectionSupervisorOptions,
  type ReconnectPolicy,
  type SupervisedSubscription,
} from "./connection-supervisor";
