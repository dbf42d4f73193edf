/**
 * `@stream/core`: streams of any size through any message broker, chunked, verified,
 * flow-controlled. Pair it with an adapter (`@stream/rabbitmq`, `@stream/activemq`,
 * `@stream/mqtt`, `@stream/kafka`).
 *
 * @packageDocumentation
 */
export { createStreamClient, type ResumeSaveOptions, type StreamClient, type StreamClientOptions } from "./client";
export type { FlowControl, SendOptions, SendProgress, SendResult } from "./sender";
export { OutgoingStream, type OutgoingStreamEvents, type SendPhase } from "./outgoing-stream";
export { StreamReceiver, type OrphanReport, type ReceiveOptions, type StreamReceiverEvents } from "./stream-receiver";
export type { Rejection, RejectionCode } from "./rejections";
export { IncomingStream, type ReceivePhase, type ReceiveResult } from "./incoming-stream";
export type { StreamSource } from "./stream-source";
export type { TransferDirection, TransferEvent, TransferFailure, TransferStatus } from "./transfer-status";
export { resolveFlow, type FlowOptions, type ResolvedFlow } from "./flow-options";
export {
  TRANSPORT_SPECIFICATION_VERSION,
  assertTransport,
  type ChannelKind,
  type ConnectionState,
  type ConnectionWatch,
  type FrameHandler,
  type PublishOptions,
  type SubscribeOptions,
  type Subscription,
  type Transport,
  type TransportCapabilities,
} from "./transport";
export { createRetryingTransport, type RetryOptions } from "./retrying-transport";
export * from "./errors/index";
export { COMPRESSIONS } from "./compression";
export { defaultKeyId, E2E_KEY_BYTES, type E2eKey, E2eKeyring, e2eKey } from "./e2e/e2e-keyring";
export { E2E_TAG_BYTES } from "./e2e/stream-cipher";
export { isTlsCertificateError, type Pem, type TlsOptions } from "./adapter-kit/tls";
export {
  AbortCode,
  FrameType,
  PROTOCOL_VERSION,
  type AbortFrame,
  type AckFrame,
  type Compression,
  type DataFrame,
  type Delivery,
  type DeliveryModel,
  type EndFrame,
  type Frame,
  type HeartbeatFrame,
  type Manifest,
  type OpenFrame,
  type RequestFrame,
  type TakeoverInfo,
  type E2eInfo,
} from "./protocol/frames";
export {
  DATA_HEADER_BYTES,
  MAX_CHANNEL_CHARS,
  MAX_DESTINATION_CHARS,
  decodeFrame,
  encodeFrame,
  isChannelName,
  isDestinationName,
  parseManifest,
  readFrameType,
} from "./protocol/frame-codec";
export { RangeSet } from "./range-set";
export { safeFileName, type SaveOptions, type SaveProgress, type SaveResult } from "./save-to";
export { type PartialFilesSwept, sweepPartialFiles } from "./partial-files";
export { defaultStateDir, type PrefixCheckpoint, TransferJournal, type TransferRecord } from "./journal";
