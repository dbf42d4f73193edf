import type { FlowOptions } from "./flow-options";
import type { E2eKey, E2eKeyring } from "./e2e/e2e-keyring";
import type { SendPhase } from "./outgoing-stream";
import type { Compression, Delivery, DeliveryModel, Manifest } from "./protocol/frames";
import type { TransferStatus } from "./transfer-status";
import type { ConnectionState } from "./transport";

/**
 * Where acknowledgements that free the window come from.
 * - `"end-to-end"`: the receiver's acks (credit). Bounded memory at both ends and in the broker,
 *   and `send` resolves only once the receiver has verified the whole stream. Needs a receiver.
 * - `"broker"`: the broker's confirms. Store-and-forward: the stream is parked in the broker and
 *   `send` resolves once the broker holds all of it; no receiver needs to be running.
 */
export type FlowControl = "end-to-end" | "broker";

/** Progress of one send, reported as acknowledgements arrive. */
export interface SendProgress {
  readonly streamId: string;
  /** Payload bytes handed to the transport so far. */
  readonly bytesSent: number;
  /** Payload bytes acknowledged (by the receiver or the broker, per {@link FlowControl}). */
  readonly bytesAcknowledged: number;
  /** Total bytes, when known. */
  readonly sizeBytes?: number;
  /**
   * `"reconnecting"` while the broker connection is being re-established: the adapter says so
   * (`Transport.connection`), or publishes fail and are being retried (see
   * `StreamClientOptions.retry`); `"connected"` otherwise. Progress is reported on each change.
   * Always `"connected"` with `retry: false`.
   */
  readonly connection: ConnectionState;
  /**
   * `true` while a receiver holds the stream in its queue: it is busy with as many streams as
   * its `concurrency` allows and takes this one after them (end to end only). The sender waits
   * without resending; progress is reported on each change.
   */
  readonly queued: boolean;
}

/** Options of {@link StreamClient.send}. */
export interface SendOptions extends FlowOptions {
  /** Where the stream goes: a queue / topic name of `[A-Za-z0-9._-]`. */
  readonly destination: string;
  /** The name receivers see, e.g. a file name. @default the file's base name, or `"stream"` */
  readonly name?: string;
  /** @default "application/octet-stream" */
  readonly contentType?: string;
  /** Application key/values carried in the manifest. */
  readonly metadata?: Readonly<Record<string, string>>;
  /**
   * The content's SHA-256 (64 lower-case hex digits), when known before sending: carried in the
   * manifest, so receivers see it with the stream's name and size before taking a byte, and
   * checked at the end on both sides (a source that does not match is aborted with an
   * `IntegrityError`, and a receiver refuses bytes that do not match it).
   */
  readonly sha256?: string;
  /**
   * Encrypts the stream end to end with this key (or a keyring's first key): AES-256-GCM per chunk,
   * the frame header as associated data, and the manifest's name, content type, metadata, size and
   * SHA-256 sealed too, so neither the broker nor anyone reading it can read or change the stream
   * unseen. Only the key id travels in the clear; receivers need the same key under that id
   * (`ReceiveOptions.keys`). Each chunk carries a 16-byte tag, so chunks are 16 bytes smaller
   * than the transport's frame limit allows. See docs/protocol.md, "End-to-end encryption".
   */
  readonly encryption?: E2eKey | E2eKeyring;
  /**
   * Compresses each chunk with this algorithm (`node:zlib`; zstd needs Node 22.15 or later), named
   * in the manifest. A chunk that does not shrink is sent as it is, so incompressible content
   * costs one byte per chunk; chunks are 1 byte smaller than the frame limit allows. Compression
   * comes before `encryption`. Receivers refuse a chunk that inflates past the chunk size.
   * See docs/protocol.md, "Compression".
   */
  readonly compression?: Compression;
  /** Total bytes, when the source cannot tell (a file's size is read from disk). The receiver holds the sender to it. */
  readonly sizeBytes?: number;
  /** Push streams at once; pull waits until a receiver asks for the stream. @default "push" */
  readonly model?: DeliveryModel;
  /**
   * `"transactional"`: the receiving application sees the stream only once all of it has arrived
   * and been verified (the receiver spools it first); with `flowControl: "broker"` the stream is
   * then all in the broker before anyone sees it. `"streaming"`: it reads while this sends.
   * @default "streaming"
   */
  readonly delivery?: Delivery;
  /** @default "end-to-end" */
  readonly flowControl?: FlowControl;
  /** The stream's identity; give one to make a send idempotent across restarts. @default a random UUID */
  readonly streamId?: string;
  /** Cancels the send; the receiver's stream errors with {@link StreamAbortedError}. */
  readonly signal?: AbortSignal;
  /** Called as acknowledgements arrive. */
  readonly onProgress?: (progress: SendProgress) => void;
  /**
   * Called with the send's {@link TransferStatus} (bytes, chunks, rate, ETA, phase, connection)
   * every `statusIntervalMs`, at once on each phase change, and a last time when it ends (with
   * `failure` if it failed); the `OutgoingStream`'s `'status'` event carries the same.
   */
  readonly onStatus?: (status: TransferStatus<SendPhase>) => void;
  /** How often, in ms, `onStatus` and `'status'` report while the send goes on. @default 1000 */
  readonly statusIntervalMs?: number;
  /**
   * With no acknowledgement progress for this long, frames in flight are sent again, when the
   * transport can lose frames (`retention: "none"` or no redelivery). @default 2000
   */
  readonly retransmitAfterMs?: number;
  /**
   * Fails the send with {@link StreamTimeoutError} after this long, in ms, without a word from any
   * receiver. The stream is then withdrawn: an Abort follows its frames, so a receiver that starts
   * later discards it, and it is safe to send again. @default 120000
   */
  readonly idleTimeoutMs?: number;
  /** A heartbeat goes out after this long with nothing else sent, so receivers know the sender lives. @default 5000 */
  readonly heartbeatMs?: number;
  /**
   * After this long, in ms, without a word from a receiver that had answered (a live receiver
   * acks at least once a second, so three missed keepalives), while the stream is not complete,
   * the receiver is presumed dead and the Open is published again, marked as a takeover
   * (`manifest.takeover`), every `takeoverAfterMs` while the silence lasts: another receiver
   * on the destination may then take the stream over and ask for it from where it wants
   * (a Request). A file path or bytes in memory are read again from there; a `Readable` or
   * iterable can only serve what is still in its window, otherwise the send fails with a
   * {@link StreamAbortedError} telling to send again. End-to-end flow control only; keep it
   * well above the receiver's 1 s keepalive. `Infinity` turns it off. @default 3000
   */
  readonly takeoverAfterMs?: number;
  /**
   * This send continues an earlier attempt of the same `streamId` that failed (its process was
   * killed, the broker stayed away): its Open is marked as a takeover, so the receiver holding
   * that stream's partial file (`saveTo` keeps it when its sender vanished or restarted)
   * continues it, and nothing is published until a receiver says where it starts (a Request,
   * as for a pull); the chunks before are only read and hashed. At most one window is sent
   * again. `acknowledgedBytes`: what the earlier attempt had acknowledged, when known (informs
   * the receiver). Needs `streamId` and end-to-end flow control.
   */
  readonly resume?: boolean | { readonly acknowledgedBytes: number };
  /**
   * Gives the stream a time to live, in ms from its Open: every frame is published with the
   * broker's own per-message expiry at that one instant (`manifest.expiresAt`), so a stream that
   * nobody takes (no receiver, a withdrawn send, a receiver dead for good) is dropped by the broker
   * instead of staying in its queue for ever. A receiver refuses a stream whose expiry has passed
   * (some frames may be gone) and fails one not received whole by then; a send still going at that
   * instant fails with `StreamExpiredError`. Needs a transport that declares
   * `capabilities.messageExpiry` (RabbitMQ, ActiveMQ, MQTT 5): others refuse the send with a
   * `TypeError` (Kafka has only its topic's `retention.ms`). Clocks of sender, broker and receiver
   * are taken to agree to well under the expiry. @default no expiry
   */
  readonly expireAfterMs?: number;
}

/** What a completed send reports. */
export interface SendResult {
  readonly streamId: string;
  readonly byteCount: number;
  readonly chunkCount: number;
  /** SHA-256 of the whole stream, lower-case hex. */
  readonly sha256: string;
  readonly manifest: Manifest;
  /**
   * Where the receiver started: 0, or for a resume (or a pull) asked from further on, the bytes
   * it already had (a partial file kept), which this send read and hashed but did not publish.
   */
  readonly startOffset: number;
  /**
   * Payload bytes this send published, counting every chunk sent again (lost frames, a takeover,
   * a receiver that asked from further back): `byteCount - startOffset` when nothing was resent.
   * For a resume, what it costs beyond that is what the earlier attempt had in flight.
   */
  readonly bytesPublished: number;
}
