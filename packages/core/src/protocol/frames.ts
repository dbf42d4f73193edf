/**
 * The frames of the wire protocol, as values. `frame-codec.ts` turns them into bytes and back;
 * `docs/protocol.md` gives the byte layouts.
 */

/** The protocol version this core writes and reads. */
export const PROTOCOL_VERSION = 1;

/** Frame type numbers, as they appear on the wire in byte 3. */
export const FrameType = {
  Open: 1,
  Data: 2,
  End: 3,
  Abort: 4,
  Ack: 5,
  Request: 6,
  Heartbeat: 7,
} as const;
export type FrameType = (typeof FrameType)[keyof typeof FrameType];

/**
 * How the bytes of a stream move.
 * - `"push"`: the sender streams as soon as it opens (store-and-forward through the broker).
 * - `"pull"`: the open frame only announces the stream; data flows once a receiver asks for it
 *   with a request frame (its `saveTo`), from the offset it asks.
 */
export type DeliveryModel = "push" | "pull";

/** What the receiver learns about a stream before its first byte. */
export interface Manifest {
  /** The stream's identity: a UUID, stable across resumes and restarts. */
  readonly streamId: string;
  /** The sender's name for the content, usually a file name. Never trusted as a path. */
  readonly name: string;
  /** Total bytes when known in advance; the receiver holds the sender to it. */
  readonly sizeBytes?: number;
  /** MIME type of the content. @default "application/octet-stream" */
  readonly contentType: string;
  /** Payload bytes per data frame (the last one may be shorter). */
  readonly chunkBytes: number;
  /** Application key/values carried with the stream. */
  readonly metadata: Readonly<Record<string, string>>;
  /** When the sender created the stream, ISO 8601. */
  readonly createdAt: string;
  /** Push or pull; see {@link DeliveryModel}. */
  readonly model: DeliveryModel;
  /** The inbox channel where the receiver sends acks, requests and aborts; empty when the sender wants none (broker flow control). */
  readonly replyTo: string;
  /** Most data frames the sender keeps unacknowledged. */
  readonly windowChunks: number;
  /** Most payload bytes the sender keeps unacknowledged. */
  readonly windowBytes: number;
  /**
   * Present on an Open the sender publishes again because its receiver fell silent (died): a
   * receiver that does not know the stream may take it over (see `ReceiveOptions.takeover`).
   * Optional: receivers that predate it drop it, so it needs no new protocol version.
   */
  readonly takeover?: TakeoverInfo;
  /**
   * When the receiving application may see the stream; see {@link Delivery}. Absent means
   * `"streaming"`. Optional: receivers that predate it drop it and stream it.
   */
  readonly delivery?: Delivery;
  /**
   * When the broker drops the stream's frames that nobody has taken (`SendOptions.expireAfterMs`),
   * ISO 8601. A receiver refuses a stream whose expiry has passed, and fails one not received whole
   * by then: some of its frames may be gone. Optional: receivers that predate it drop it.
   */
  readonly expiresAt?: string;
  /**
   * The SHA-256 of the whole content (64 lower-case hex digits), when the sender knew it before
   * sending (`SendOptions.sha256`): a receiver may decide on it before taking a byte (a file it
   * already has), and holds the stream to it as to the End frame's. Optional: receivers that
   * predate it drop it.
   */
  readonly sha256?: string;
  /**
   * Set when the stream is end-to-end encrypted (`SendOptions.encryption`): its chunks are
   * sealed, and so are `name`, `contentType`, `metadata`, `sizeBytes` and `sha256`, which the
   * Open carries here instead (empty placeholders in their place). A receiver holding the key
   * restores them before anyone sees the manifest. Optional: receivers that predate it drop it,
   * see only sealed bytes, and fail the stream at its End.
   */
  readonly e2e?: E2eInfo;
  /**
   * Set when the sender compresses the stream's chunks (`SendOptions.compression`): each chunk
   * travels behind a one-byte marker, 0 for a chunk sent as it is (it did not shrink), 1 for one
   * compressed with this algorithm. Optional: receivers that predate it drop it, see marked
   * bytes, and fail the stream at its End.
   */
  readonly compression?: Compression;
}

/** How a stream's chunks may be compressed; see `Manifest.compression`. */
export type Compression = "zstd" | "brotli" | "deflate";

/** What an end-to-end encrypted stream's Open says in the clear about its encryption. */
export interface E2eInfo {
  /** The id of the shared key the stream is sealed under: receivers pick their key by it. */
  readonly keyId: string;
  /** This attempt's random salt (16 bytes, base64url), mixed into the stream's keys. */
  readonly salt: string;
  /** The sealed manifest fields (AES-256-GCM, tag last), base64url. */
  readonly sealed: string;
}

/**
 * When the receiving application sees a stream:
 * - `"streaming"`: at once, reading while the sender writes (time to first byte: a round trip).
 * - `"transactional"`: only once all of it has arrived and its SHA-256 matched: the receiver
 *   stores it in its spool folder first, so the application never sees part of a stream. With
 *   `flowControl: "broker"` the sender may exit once the broker holds it all.
 */
export type Delivery = "streaming" | "transactional";

/** What a takeover Open says about the stream so far. */
export interface TakeoverInfo {
  /** Bytes the silent receiver had acknowledged (everything before it had reached its application). */
  readonly acknowledgedBytes: number;
}

/** Announces a stream and carries its manifest. */
export interface OpenFrame {
  readonly type: typeof FrameType.Open;
  readonly streamId: string;
  readonly manifest: Manifest;
}

/** One chunk of a stream. */
export interface DataFrame {
  readonly type: typeof FrameType.Data;
  readonly streamId: string;
  /** 0-based chunk number. */
  readonly sequence: number;
  /** Byte offset of the payload's first byte in the stream. */
  readonly offset: number;
  /** CRC-32 of the payload. */
  readonly crc32: number;
  readonly payload: Uint8Array;
}

/** The stream is complete: how much was sent and its SHA-256. */
export interface EndFrame {
  readonly type: typeof FrameType.End;
  readonly streamId: string;
  readonly chunkCount: number;
  readonly byteCount: number;
  /** SHA-256 of the whole stream, 32 bytes. */
  readonly sha256: Uint8Array;
}

/** Why an abort happened, on the wire as a number. */
export const AbortCode = {
  /** The application cancelled (an `AbortSignal`, `destroy()`). */
  Cancelled: 1,
  /** The source failed (a read error). */
  SourceFailed: 2,
  /** The receiver found the data corrupt or the manifest false. */
  IntegrityFailed: 3,
  /** The receiver refused the stream (no space, a forbidden name). */
  Rejected: 4,
  /** The other side stopped answering. */
  TimedOut: 5,
} as const;
export type AbortCode = (typeof AbortCode)[keyof typeof AbortCode];

/** Ends a stream before its end, from either side. */
export interface AbortFrame {
  readonly type: typeof FrameType.Abort;
  readonly streamId: string;
  readonly code: AbortCode;
  readonly reason: string;
}

/**
 * Receiver to sender: every chunk before `nextSequence` (and so every byte before `offset`) has
 * arrived, been verified and been taken by the application. The sender may have up to
 * `windowChunks` chunks past it in flight. With `complete`, the whole stream was verified.
 */
export interface AckFrame {
  readonly type: typeof FrameType.Ack;
  readonly streamId: string;
  readonly nextSequence: number;
  readonly offset: number;
  readonly windowChunks: number;
  readonly complete: boolean;
}

/**
 * Receiver to sender: send (again) from this chunk and offset. Starts a pull transfer, resumes
 * a broken one, and asks for a chunk lost in transit.
 */
export interface RequestFrame {
  readonly type: typeof FrameType.Request;
  readonly streamId: string;
  readonly sequence: number;
  readonly offset: number;
}

/** Either side: still alive, while there is nothing else to say. */
export interface HeartbeatFrame {
  readonly type: typeof FrameType.Heartbeat;
  readonly streamId: string;
  readonly timestampMs: number;
}

/** Any frame of the protocol. */
export type Frame = OpenFrame | DataFrame | EndFrame | AbortFrame | AckFrame | RequestFrame | HeartbeatFrame;
