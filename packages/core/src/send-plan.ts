import { randomUUID } from "node:crypto";
import { COMPRESSION_MARKER_BYTES, checkCompression } from "./compression";
import { type E2eKey, E2eKeyring, e2eKey } from "./e2e/e2e-keyring";
import { E2E_TAG_BYTES, StreamCipher } from "./e2e/stream-cipher";
import { type ResolvedFlow, resolveFlow } from "./flow-options";
import { MAX_DESTINATION_CHARS, isDestinationName, isSha256Hex, isStreamId } from "./protocol/frame-codec";
import type { Compression, Manifest } from "./protocol/frames";
import type { SendOptions } from "./sender";
import type { SourceInfo } from "./stream-source";
import type { Transport } from "./transport";

/** What one send is to do, checked and with its defaults filled in, before anything is published. */
export interface SendPlan {
  readonly destination: string;
  readonly streamId: string;
  readonly flow: ResolvedFlow;
  /** `flowControl: "end-to-end"`: receiver acks free the window, and an inbox hears them. */
  readonly endToEnd: boolean;
  /** The transport may lose frames (`retention: "none"` or no redelivery): the sender resends on silence. */
  readonly lossy: boolean;
  readonly retransmitAfterMs: number;
  readonly idleTimeoutMs: number;
  readonly heartbeatMs: number;
  readonly takeoverAfterMs: number;
  /** `SendOptions.expireAfterMs`, checked against the transport. */
  readonly expireAfterMs: number | undefined;
  /** This attempt's keys, when the stream is encrypted end to end (`SendOptions.encryption`). */
  readonly cipher: StreamCipher | undefined;
  /** How chunks are compressed (`SendOptions.compression`), checked against this Node. */
  readonly compression: Compression | undefined;
}

/** How often an idle sender publishes a Heartbeat by default (`SendOptions.heartbeatMs`). */
export const DEFAULT_HEARTBEAT_MS = 5000;

/**
 * Checks `options` against `transport` and fills in the defaults. Throws `TypeError` or
 * `RangeError` for a send that cannot work, and the signal's reason when it is already aborted.
 */
export function planSend(transport: Transport, options: SendOptions): SendPlan {
  const { destination } = options;
  if (!isDestinationName(destination)) {
    throw new TypeError(
      `[stream] destination ${JSON.stringify(destination)} must be 1-${MAX_DESTINATION_CHARS} characters of [A-Za-z0-9._-]`,
    );
  }
  const streamId = options.streamId ?? randomUUID();
  if (!isStreamId(streamId)) throw new TypeError("[stream] streamId must be a lower-case UUID");
  options.signal?.throwIfAborted();
  const compression = checkCompression(options.compression);
  const overheadBytes = (options.encryption ? E2E_TAG_BYTES : 0) + (compression ? COMPRESSION_MARKER_BYTES : 0);
  const flow = resolveFlow(transport.capabilities, options, overheadBytes);
  const endToEnd = (options.flowControl ?? "end-to-end") === "end-to-end";
  const { brokerAcks, retention, redelivery } = transport.capabilities;
  if (!endToEnd && (!brokerAcks || retention === "none")) {
    throw new TypeError(
      `[stream] flowControl "broker" needs a broker that acknowledges durably; ${transport.name} ` +
        `(brokerAcks ${brokerAcks}, retention "${retention}") could lose the stream. Use "end-to-end".`,
    );
  }
  if (!endToEnd && options.model === "pull") {
    throw new TypeError('[stream] a pull stream waits for its receiver\'s request, so it needs flowControl "end-to-end"');
  }
  if (options.delivery === "transactional" && options.model === "pull") {
    throw new TypeError('[stream] a pull stream moves when its receiver reads it; delivery "transactional" needs model "push"');
  }
  if (options.sha256 !== undefined && !isSha256Hex(options.sha256)) {
    throw new TypeError("[stream] sha256 must be the content's SHA-256 as 64 lower-case hex digits");
  }
  if (options.resume && (options.streamId === undefined || !endToEnd)) {
    throw new TypeError("[stream] resume continues an earlier attempt: it needs that attempt's streamId and end-to-end flow control");
  }
  const takeoverAfterMs = options.takeoverAfterMs ?? 3000;
  if (!(takeoverAfterMs > 0)) throw new RangeError("[stream] takeoverAfterMs must be a positive number of ms (Infinity turns takeover off)");
  const { expireAfterMs } = options;
  if (expireAfterMs !== undefined) {
    if (!Number.isSafeInteger(expireAfterMs) || expireAfterMs < 1) throw new RangeError("[stream] expireAfterMs must be a positive whole number of ms");
    if (transport.capabilities.messageExpiry !== true) {
      throw new TypeError(
        `[stream] expireAfterMs needs a broker that drops expired messages by itself; ${transport.name} does not ` +
          "(capabilities.messageExpiry), so the frames would stay. Leave expireAfterMs out and bound the broker's own retention (Kafka: the topic's retention.ms).",
      );
    }
  }
  return {
    destination,
    streamId,
    flow,
    endToEnd,
    lossy: retention === "none" || !redelivery,
    retransmitAfterMs: options.retransmitAfterMs ?? 2000,
    idleTimeoutMs: options.idleTimeoutMs ?? 120_000,
    heartbeatMs: options.heartbeatMs ?? DEFAULT_HEARTBEAT_MS,
    takeoverAfterMs,
    expireAfterMs,
    cipher: options.encryption ? StreamCipher.forSend(sendingKey(options.encryption), streamId) : undefined,
    compression,
  };
}

/** The manifest the Open carries; `replyTo` is the sender's inbox, `""` with broker flow control. */
export function createManifest(plan: SendPlan, options: SendOptions, source: SourceInfo, replyTo: string): Manifest {
  const sizeBytes = options.sizeBytes ?? source.sizeBytes;
  return {
    streamId: plan.streamId,
    name: options.name ?? source.name ?? "stream",
    ...(sizeBytes === undefined ? {} : { sizeBytes }),
    contentType: options.contentType ?? "application/octet-stream",
    chunkBytes: plan.flow.chunkBytes,
    metadata: { ...options.metadata },
    createdAt: new Date().toISOString(),
    model: options.model ?? "push",
    ...(options.delivery === "transactional" ? { delivery: "transactional" as const } : {}),
    // A resume is offered like a takeover: whoever holds the stream's partial file continues it.
    ...(options.resume ? { takeover: { acknowledgedBytes: options.resume === true ? 0 : options.resume.acknowledgedBytes } } : {}),
    replyTo,
    windowChunks: plan.flow.windowChunks,
    windowBytes: plan.flow.windowBytes,
    ...(plan.expireAfterMs === undefined ? {} : { expiresAt: new Date(Date.now() + plan.expireAfterMs).toISOString() }),
    ...(options.sha256 === undefined ? {} : { sha256: options.sha256 }),
    ...(plan.compression === undefined ? {} : { compression: plan.compression }),
  };
}

/** The key a send seals with: the key given (checked), or a keyring's first. */
function sendingKey(encryption: E2eKey | E2eKeyring): E2eKey {
  return encryption instanceof E2eKeyring ? encryption.primary : e2eKey(encryption.key, encryption.keyId);
}
