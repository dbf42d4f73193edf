import { ProtocolError } from "../errors/protocol-error";
import {
  AbortCode,
  type Frame,
  FrameType,
  type Manifest,
  PROTOCOL_VERSION,
} from "./frames";

/** A SHA-256 as the manifest carries it. */
const SHA256_HEX = /^[0-9a-f]{64}$/;
/** `manifest.e2e`'s fields: a key id, 16 bytes of salt, and sealed bytes, base64url. */
const E2E_KEY_ID = /^[A-Za-z0-9._-]{1,64}$/;
const E2E_SALT = /^[A-Za-z0-9_-]{22}$/;
const BASE64URL = /^[A-Za-z0-9_-]+$/;

/** `SF`: the first two bytes of every frame. */
const MAGIC_0 = 0x53;
const MAGIC_1 = 0x46;
/** Magic (2) + version (1) + type (1) + stream id (16). */
export const COMMON_HEADER_BYTES = 20;
/** Bytes a data frame adds to its payload: common header + sequence, offset, crc, length. */
export const DATA_HEADER_BYTES = COMMON_HEADER_BYTES + 20;
/** A manifest larger than this is refused: it is metadata, not content. */
export const MAX_MANIFEST_BYTES = 64 * 1024;
const MAX_REASON_BYTES = 4096;
/**
 * The longest channel name, in characters. See docs/protocol.md, "Channels".
 */
export const MAX_CHANNEL_CHARS = 200;
/**
 * The longest destination (a `"stream"` channel named by the user), in characters. Shorter than
 * {@link MAX_CHANNEL_CHARS} because a sender's inbox is `<destination>.inbox.<12 hex>`, 19 more.
 */
export const MAX_DESTINATION_CHARS = 180;
const CHANNEL_CHARS = /^[A-Za-z0-9._-]+$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const textEncoder = new TextEncoder();
const textDecoder = new TextDecoder("utf-8", { fatal: true });

function fail(message: string, cause?: unknown): never {
  throw new ProtocolError({ message: `[stream] [protocol] ${message}`, cause });
}

/** The type byte of an encoded frame (a {@link FrameType} value), read without decoding it. */
export function readFrameType(bytes: Uint8Array): number | undefined {
  return bytes[3];
}

/** Whether `id` is a lower-case UUID, the only stream id form the protocol carries. */
export function isStreamId(id: unknown): id is string {
  return typeof id === "string" && UUID.test(id);
}

/** @internal Whether `digest` is a SHA-256 as a manifest carries it: 64 lower-case hex digits. */
export function isSha256Hex(digest: unknown): digest is string {
  return typeof digest === "string" && SHA256_HEX.test(digest);
}

/**
 * Whether `name` is a channel name: 1 to `maxChars` characters of `[A-Za-z0-9._-]`. The one rule
 * core and every adapter apply (adapters through `assertChannelName` of `@stream/core/adapter-kit`).
 * @param maxChars {@link MAX_CHANNEL_CHARS} for any channel, {@link MAX_DESTINATION_CHARS} for a destination.
 */
export function isChannelName(name: unknown, maxChars: number = MAX_CHANNEL_CHARS): name is string {
  return typeof name === "string" && name.length <= maxChars && CHANNEL_CHARS.test(name);
}

/** Whether `name` can be a destination: a channel name of at most {@link MAX_DESTINATION_CHARS} characters. */
export function isDestinationName(name: unknown): name is string {
  return isChannelName(name, MAX_DESTINATION_CHARS);
}

/** The 16 bytes of a stream id, to write into many frames without parsing it each time. */
export function streamIdBytes(streamId: string): Uint8Array {
  if (!isStreamId(streamId)) fail(`stream id ${JSON.stringify(streamId)} is not a lower-case UUID`);
  const hex = streamId.replaceAll("-", "");
  const bytes = new Uint8Array(16);
  for (let i = 0; i < 16; i++) bytes[i] = Number.parseInt(hex.slice(i * 2, i * 2 + 2), 16);
  return bytes;
}

function writeHeader(bytes: Uint8Array, type: FrameType, id: Uint8Array): void {
  bytes[0] = MAGIC_0;
  bytes[1] = MAGIC_1;
  bytes[2] = PROTOCOL_VERSION;
  bytes[3] = type;
  bytes.set(id, 4);
}

/** The fields of a data frame's header; its payload is whatever follows the header. */
export interface DataHeader {
  readonly streamId: Uint8Array;
  readonly sequence: number;
  readonly offset: number;
  readonly crc32: number;
}

/**
 * Writes a data frame's header into the first {@link DATA_HEADER_BYTES} of `frame`, whose
 * remaining bytes are the payload. The sender reads chunks straight into such buffers, so a
 * chunk is never copied to be framed.
 */
export function writeDataHeader(frame: Uint8Array, header: DataHeader): Uint8Array {
  const view = new DataView(frame.buffer, frame.byteOffset, frame.byteLength);
  writeHeader(frame, FrameType.Data, header.streamId);
  const at = COMMON_HEADER_BYTES;
  setU32(view, at, header.sequence, "sequence");
  setU64(view, at + 4, header.offset);
  setU32(view, at + 12, header.crc32, "crc32");
  view.setUint32(at + 16, frame.byteLength - DATA_HEADER_BYTES);
  return frame;
}

function readStreamId(bytes: Uint8Array): string {
  let hex = "";
  for (let i = 4; i < 20; i++) hex += (bytes[i] as number).toString(16).padStart(2, "0");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

function setU32(view: DataView, at: number, value: number, what: string): void {
  if (!Number.isInteger(value) || value < 0 || value > 0xffff_ffff) fail(`${what} ${value} does not fit 32 bits`);
  view.setUint32(at, value);
}

/** UTF-8 of `text`, cut to at most `maxBytes` without splitting a character. */
function utf8Prefix(text: string, maxBytes: number): Uint8Array {
  const bytes = textEncoder.encode(text);
  if (bytes.byteLength <= maxBytes) return bytes;
  let end = maxBytes;
  while (end > 0 && ((bytes[end] as number) & 0xc0) === 0x80) end--; // back off continuation bytes
  return bytes.subarray(0, end);
}

function setU64(view: DataView, at: number, value: number): void {
  if (!Number.isSafeInteger(value) || value < 0) fail(`${value} is not a byte count or offset`);
  view.setBigUint64(at, BigInt(value));
}

function getU64(view: DataView, at: number, what: string): number {
  const value = view.getBigUint64(at);
  if (value > BigInt(Number.MAX_SAFE_INTEGER)) fail(`${what} ${value} is beyond 2^53`);
  return Number(value);
}

function allocate(type: FrameType, streamId: string, bodyBytes: number) {
  const bytes = new Uint8Array(COMMON_HEADER_BYTES + bodyBytes);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  writeHeader(bytes, type, streamIdBytes(streamId));
  return { bytes, view, at: COMMON_HEADER_BYTES };
}

/**
 * Encodes a frame. Data frames copy their payload once, into the frame; nothing else is copied.
 * Throws {@link ProtocolError} for a value the protocol cannot carry.
 */
export function encodeFrame(frame: Frame): Uint8Array {
  switch (frame.type) {
    case FrameType.Open: {
      const json = textEncoder.encode(JSON.stringify(frame.manifest));
      if (json.byteLength > MAX_MANIFEST_BYTES) fail(`manifest is ${json.byteLength} bytes; at most ${MAX_MANIFEST_BYTES}`);
      const { bytes, view, at } = allocate(frame.type, frame.streamId, 4 + json.byteLength);
      view.setUint32(at, json.byteLength);
      bytes.set(json, at + 4);
      return bytes;
    }
    case FrameType.Data: {
      const bytes = new Uint8Array(DATA_HEADER_BYTES + frame.payload.byteLength);
      bytes.set(frame.payload, DATA_HEADER_BYTES);
      return writeDataHeader(bytes, { ...frame, streamId: streamIdBytes(frame.streamId) });
    }
    case FrameType.End: {
      if (frame.sha256.byteLength !== 32) fail("end frame needs a 32-byte SHA-256");
      const { bytes, view, at } = allocate(frame.type, frame.streamId, 44);
      setU32(view, at, frame.chunkCount, "chunk count");
      setU64(view, at + 4, frame.byteCount);
      bytes.set(frame.sha256, at + 12);
      return bytes;
    }
    case FrameType.Abort: {
      const reason = utf8Prefix(frame.reason, MAX_REASON_BYTES);
      const { bytes, view, at } = allocate(frame.type, frame.streamId, 6 + reason.byteLength);
      view.setUint16(at, frame.code);
      view.setUint32(at + 2, reason.byteLength);
      bytes.set(reason, at + 6);
      return bytes;
    }
    case FrameType.Ack: {
      const { view, bytes, at } = allocate(frame.type, frame.streamId, 17);
      setU32(view, at, frame.nextSequence, "next sequence");
      setU64(view, at + 4, frame.offset);
      setU32(view, at + 12, frame.windowChunks, "window");
      view.setUint8(at + 16, frame.complete ? 1 : 0);
      return bytes;
    }
    case FrameType.Request: {
      const { view, bytes, at } = allocate(frame.type, frame.streamId, 12);
      setU32(view, at, frame.sequence, "sequence");
      setU64(view, at + 4, frame.offset);
      return bytes;
    }
    case FrameType.Heartbeat: {
      const { view, bytes, at } = allocate(frame.type, frame.streamId, 8);
      setU64(view, at, frame.timestampMs);
      return bytes;
    }
  }
}

function expectLength(bytes: Uint8Array, length: number, what: string): void {
  if (bytes.byteLength !== length) {
    fail(`${what} frame is ${bytes.byteLength} bytes; its fields say ${length}`);
  }
}

/**
 * Decodes one frame, validating every field and length; it never trusts a declared length.
 * Data payloads are views into `bytes`, not copies. Throws {@link ProtocolError}.
 */
export function decodeFrame(bytes: Uint8Array): Frame {
  if (!(bytes instanceof Uint8Array)) fail("a frame must be a Uint8Array");
  if (bytes.byteLength < COMMON_HEADER_BYTES) fail(`frame of ${bytes.byteLength} bytes is shorter than a header`);
  if (bytes[0] !== MAGIC_0 || bytes[1] !== MAGIC_1) fail("not a stream frame (bad magic); is another producer using this destination?");
  if (bytes[2] !== PROTOCOL_VERSION) {
    fail(`protocol version ${bytes[2]}; this @stream/core reads version ${PROTOCOL_VERSION}. Upgrade the older side.`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const streamId = readStreamId(bytes);
  const at = COMMON_HEADER_BYTES;
  const body = bytes.byteLength - at;
  const type = bytes[3];
  switch (type) {
    case FrameType.Open: {
      if (body < 4) fail("open frame too short");
      const length = view.getUint32(at);
      if (length > MAX_MANIFEST_BYTES) fail(`manifest of ${length} bytes; at most ${MAX_MANIFEST_BYTES}`);
      expectLength(bytes, at + 4 + length, "open");
      let json: unknown;
      try {
        json = JSON.parse(textDecoder.decode(bytes.subarray(at + 4)));
      } catch (error) {
        fail("manifest is not valid UTF-8 JSON", error);
      }
      const manifest = parseManifest(json);
      if (manifest.streamId !== streamId) fail("manifest stream id differs from the frame's");
      return { type, streamId, manifest };
    }
    case FrameType.Data: {
      if (body < 20) fail("data frame too short");
      const length = view.getUint32(at + 16);
      expectLength(bytes, DATA_HEADER_BYTES + length, "data");
      return {
        type,
        streamId,
        sequence: view.getUint32(at),
        offset: getU64(view, at + 4, "offset"),
        crc32: view.getUint32(at + 12),
        payload: bytes.subarray(DATA_HEADER_BYTES),
      };
    }
    case FrameType.End: {
      expectLength(bytes, at + 44, "end");
      return {
        type,
        streamId,
        chunkCount: view.getUint32(at),
        byteCount: getU64(view, at + 4, "byte count"),
        sha256: new Uint8Array(bytes.subarray(at + 12, at + 44)), // a copy, even when bytes is a Buffer
      };
    }
    case FrameType.Abort: {
      if (body < 6) fail("abort frame too short");
      const code = view.getUint16(at);
      const length = view.getUint32(at + 2);
      if (length > MAX_REASON_BYTES) fail(`abort reason of ${length} bytes; at most ${MAX_REASON_BYTES}`);
      expectLength(bytes, at + 6 + length, "abort");
      if (!Object.values(AbortCode).includes(code as AbortCode)) fail(`unknown abort code ${code}`);
      let reason: string;
      try {
        reason = textDecoder.decode(bytes.subarray(at + 6));
      } catch (error) {
        fail("abort reason is not valid UTF-8", error);
      }
      return { type, streamId, code: code as AbortCode, reason };
    }
    case FrameType.Ack: {
      expectLength(bytes, at + 17, "ack");
      const flags = view.getUint8(at + 16);
      if (flags > 1) fail(`ack flags ${flags} unknown`);
      return {
        type,
        streamId,
        nextSequence: view.getUint32(at),
        offset: getU64(view, at + 4, "offset"),
        windowChunks: view.getUint32(at + 12),
        complete: flags === 1,
      };
    }
    case FrameType.Request: {
      expectLength(bytes, at + 12, "request");
      return { type, streamId, sequence: view.getUint32(at), offset: getU64(view, at + 4, "offset") };
    }
    case FrameType.Heartbeat: {
      expectLength(bytes, at + 8, "heartbeat");
      return { type, streamId, timestampMs: getU64(view, at, "timestamp") };
    }
    default:
      return fail(`unknown frame type ${String(type)}`);
  }
}

/** What can be read of a frame that did not decode; see {@link peekFrame}. */
export interface FramePeek {
  /**
   * - `"not-a-frame"`: shorter than a header, or without the magic: not this protocol at all.
   * - `"unsupported-version"`: this protocol, another version (its layout is not known here).
   * - `"malformed"`: this protocol and version, a field or length that does not hold.
   */
  readonly kind: "not-a-frame" | "unsupported-version" | "malformed";
  /** The header's stream id, when the header is this version's. */
  readonly streamId?: string;
  /** Of an Open whose manifest is JSON: its `name` (cut to 256 characters) and its `replyTo`, if a channel name. */
  readonly name?: string;
  readonly replyTo?: string;
}

/**
 * Reads what it can of a frame {@link decodeFrame} refused, so the receiver can report it and,
 * for an Open, tell its sender why. Never throws; trusts nothing it reads beyond reporting it.
 */
export function peekFrame(bytes: Uint8Array): FramePeek {
  if (!(bytes instanceof Uint8Array) || bytes.byteLength < COMMON_HEADER_BYTES || bytes[0] !== MAGIC_0 || bytes[1] !== MAGIC_1) {
    return { kind: "not-a-frame" };
  }
  if (bytes[2] !== PROTOCOL_VERSION) return { kind: "unsupported-version" };
  const streamId = readStreamId(bytes);
  if (bytes[3] !== FrameType.Open || bytes.byteLength > COMMON_HEADER_BYTES + 4 + MAX_MANIFEST_BYTES) return { kind: "malformed", streamId };
  let json: unknown;
  try {
    json = JSON.parse(textDecoder.decode(bytes.subarray(COMMON_HEADER_BYTES + 4)));
  } catch {
    return { kind: "malformed", streamId };
  }
  const { name, replyTo } = (typeof json === "object" && json !== null ? json : {}) as Record<string, unknown>;
  return {
    kind: "malformed",
    streamId,
    ...(typeof name === "string" ? { name: name.length > 256 ? `${name.slice(0, 256)}…` : name } : {}),
    ...(isChannelName(replyTo) ? { replyTo } : {}),
  };
}

const isCount = (value: unknown, min = 0): value is number =>
  typeof value === "number" && Number.isSafeInteger(value) && value >= min;

/** Validates a manifest received from the wire; every field is checked, nothing is assumed. */
export function parseManifest(json: unknown): Manifest {
  if (typeof json !== "object" || json === null || Array.isArray(json)) fail("manifest is not an object");
  const m = json as Record<string, unknown>;
  if (!isStreamId(m.streamId)) fail("manifest.streamId is not a UUID");
  if (typeof m.name !== "string" || m.name.length > 1024) fail("manifest.name must be a string of at most 1024 characters");
  if (m.sizeBytes !== undefined && !isCount(m.sizeBytes)) fail("manifest.sizeBytes must be a non-negative integer");
  if (typeof m.contentType !== "string" || m.contentType.length > 256) fail("manifest.contentType must be a short string");
  if (!isCount(m.chunkBytes, 1) || m.chunkBytes > 0xffff_ffff) fail("manifest.chunkBytes must be a positive integer");
  if (typeof m.metadata !== "object" || m.metadata === null || Array.isArray(m.metadata)) fail("manifest.metadata must be an object");
  for (const value of Object.values(m.metadata)) {
    if (typeof value !== "string") fail("manifest.metadata values must be strings");
  }
  if (typeof m.createdAt !== "string" || Number.isNaN(Date.parse(m.createdAt))) fail("manifest.createdAt must be an ISO date");
  if (m.model !== "push" && m.model !== "pull") fail('manifest.model must be "push" or "pull"');
  if (m.replyTo !== "" && !isChannelName(m.replyTo)) fail("manifest.replyTo must be a channel name, or empty");
  if (!isCount(m.windowChunks, 1)) fail("manifest.windowChunks must be a positive integer");
  if (!isCount(m.windowBytes, 1)) fail("manifest.windowBytes must be a positive integer");
  const takeover = m.takeover as Record<string, unknown> | undefined;
  if (takeover !== undefined && (typeof takeover !== "object" || takeover === null || !isCount(takeover.acknowledgedBytes))) {
    fail("manifest.takeover must be an object whose acknowledgedBytes is a non-negative integer");
  }
  if (m.delivery !== undefined && m.delivery !== "streaming" && m.delivery !== "transactional") {
    fail('manifest.delivery must be "streaming" or "transactional"');
  }
  if (m.expiresAt !== undefined && (typeof m.expiresAt !== "string" || Number.isNaN(Date.parse(m.expiresAt)))) {
    fail("manifest.expiresAt must be an ISO date");
  }
  if (m.sha256 !== undefined && !isSha256Hex(m.sha256)) {
    fail("manifest.sha256 must be 64 lower-case hex digits");
  }
  const e2e = m.e2e as Record<string, unknown> | undefined;
  if (
    e2e !== undefined &&
    (typeof e2e !== "object" || e2e === null || typeof e2e.keyId !== "string" || !E2E_KEY_ID.test(e2e.keyId) ||
      typeof e2e.salt !== "string" || !E2E_SALT.test(e2e.salt) || typeof e2e.sealed !== "string" || !BASE64URL.test(e2e.sealed))
  ) {
    fail("manifest.e2e must be { keyId, salt, sealed }: a key id, 16 bytes of salt and the sealed fields, base64url");
  }
  if (m.compression !== undefined && m.compression !== "zstd" && m.compression !== "brotli" && m.compression !== "deflate") {
    fail('manifest.compression must be "zstd", "brotli" or "deflate"');
  }
  const { sizeBytes, delivery, expiresAt, sha256, compression } = m;
  return {
    streamId: m.streamId,
    name: m.name,
    ...(sizeBytes === undefined ? {} : { sizeBytes }),
    contentType: m.contentType,
    chunkBytes: m.chunkBytes,
    metadata: { ...(m.metadata as Record<string, string>) },
    createdAt: m.createdAt,
    model: m.model,
    replyTo: m.replyTo,
    windowChunks: m.windowChunks,
    windowBytes: m.windowBytes,
    ...(takeover === undefined ? {} : { takeover: { acknowledgedBytes: takeover.acknowledgedBytes as number } }),
    ...(delivery === undefined ? {} : { delivery }),
    ...(expiresAt === undefined ? {} : { expiresAt }),
    ...(sha256 === undefined ? {} : { sha256 }),
    ...(compression === undefined ? {} : { compression }),
    ...(e2e === undefined ? {} : { e2e: { keyId: e2e.keyId as string, salt: e2e.salt as string, sealed: e2e.sealed as string } }),
  };
}
