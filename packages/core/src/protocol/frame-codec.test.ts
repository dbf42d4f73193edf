import { randomUUID } from "node:crypto";
import fc from "fast-check";
import { describe, expect, test } from "vitest";
import { ProtocolError } from "../errors/protocol-error";
import { DATA_HEADER_BYTES, decodeFrame, encodeFrame } from "./frame-codec";
import { AbortCode, type Frame, FrameType, type Manifest } from "./frames";

const streamId = randomUUID();
const manifest: Manifest = {
  streamId,
  name: "video.mp4",
  sizeBytes: 123_456_789,
  contentType: "video/mp4",
  chunkBytes: 1024 * 1024,
  metadata: { owner: "ops" },
  createdAt: new Date(0).toISOString(),
  model: "pull",
  replyTo: "files.inbox.abc123",
  windowChunks: 16,
  windowBytes: 16 * 1024 * 1024,
};

const frames: Frame[] = [
  { type: FrameType.Open, streamId, manifest },
  { type: FrameType.Data, streamId, sequence: 7, offset: 7 * 1024, crc32: 0xdeadbeef, payload: new Uint8Array([0, 1, 2, 0, 255]) },
  { type: FrameType.End, streamId, chunkCount: 3, byteCount: 2 ** 40, sha256: new Uint8Array(32).fill(9) },
  { type: FrameType.Abort, streamId, code: AbortCode.IntegrityFailed, reason: "chunk 2 failed its CRC-32 check ✗" },
  { type: FrameType.Ack, streamId, nextSequence: 12, offset: 12 * 1024, windowChunks: 16, complete: true },
  { type: FrameType.Request, streamId, sequence: 4, offset: 4096 },
  { type: FrameType.Heartbeat, streamId, timestampMs: 1_700_000_000_000 },
];

const decodeError = (bytes: Uint8Array): unknown => {
  try {
    decodeFrame(bytes);
  } catch (error) {
    return error;
  }
  return undefined;
};

describe("frame codec", () => {
  test.each(frames.map((frame) => [frame.type, frame] as const))("frame type %i round-trips", (_, frame) => {
    expect(decodeFrame(encodeFrame(frame))).toEqual(frame);
  });

  test("a data frame's header is 40 bytes and its payload follows it untouched", () => {
    const payload = new Uint8Array([1, 2, 3]);
    const bytes = encodeFrame({ type: FrameType.Data, streamId, sequence: 0, offset: 0, crc32: 0, payload });
    expect(bytes.byteLength).toBe(DATA_HEADER_BYTES + 3);
    expect([...bytes.subarray(DATA_HEADER_BYTES)]).toEqual([1, 2, 3]);
    expect([...bytes.subarray(0, 4)]).toEqual([0x53, 0x46, 1, FrameType.Data]);
  });

  test("every truncation of every frame is a ProtocolError, never a partial frame", () => {
    for (const frame of frames) {
      const bytes = encodeFrame(frame);
      for (let length = 0; length < bytes.byteLength; length++) {
        expect(ProtocolError.isInstance(decodeError(bytes.subarray(0, length))), `type ${frame.type} cut at ${length}`).toBe(true);
      }
    }
  });

  test("a declared payload length is never trusted: longer or shorter than the frame is refused", () => {
    const bytes = encodeFrame(frames[1] as Frame);
    const view = new DataView(bytes.buffer, bytes.byteOffset);
    view.setUint32(36, 6);
    expect(ProtocolError.isInstance(decodeError(bytes))).toBe(true);
    view.setUint32(36, 0xffffffff);
    expect(ProtocolError.isInstance(decodeError(bytes))).toBe(true);
  });

  test("wrong magic, version, type, or trailing bytes are refused with a message that says what", () => {
    const bytes = encodeFrame(frames[6] as Frame);
    const tamper = (at: number, value: number) => {
      const copy = bytes.slice();
      copy[at] = value;
      return decodeError(copy);
    };
    expect(String(tamper(0, 0))).toMatch(/bad magic/);
    expect(String(tamper(2, 2))).toMatch(/protocol version 2/);
    expect(String(tamper(3, 99))).toMatch(/unknown frame type 99/);
    const longer = new Uint8Array(bytes.byteLength + 1);
    longer.set(bytes);
    expect(ProtocolError.isInstance(decodeError(longer))).toBe(true);
  });

  test("a manifest that lies about its stream id or holds bad fields is refused", () => {
    const bad: Array<Partial<Record<keyof Manifest, unknown>>> = [
      { streamId: randomUUID() },
      { chunkBytes: 0 },
      { sizeBytes: -1 },
      { model: "teleport" },
      { metadata: { n: 1 } },
      { replyTo: "../../etc" },
      { createdAt: "yesterday" },
      { windowChunks: 1.5 },
    ];
    for (const fields of bad) {
      const bytes = encodeFrame({ type: FrameType.Open, streamId, manifest: { ...manifest, ...fields } as Manifest });
      expect(ProtocolError.isInstance(decodeError(bytes)), JSON.stringify(fields)).toBe(true);
    }
  });

  test("numbers the wire cannot carry are refused when encoding, never wrapped", () => {
    const encodeError = (frame: Frame): unknown => {
      try {
        encodeFrame(frame);
      } catch (error) {
        return error;
      }
      return undefined;
    };
    expect(ProtocolError.isInstance(encodeError({ type: FrameType.Ack, streamId, nextSequence: 2 ** 32 + 5, offset: 0, windowChunks: 1, complete: false }))).toBe(true);
    expect(ProtocolError.isInstance(encodeError({ type: FrameType.Request, streamId, sequence: -1, offset: 0 }))).toBe(true);
    expect(ProtocolError.isInstance(encodeError({ type: FrameType.Heartbeat, streamId, timestampMs: 2 ** 60 }))).toBe(true);
  });

  test("a long abort reason is cut on a character boundary and still decodes", () => {
    const reason = "é".repeat(5000);
    const decoded = decodeFrame(encodeFrame({ type: FrameType.Abort, streamId, code: AbortCode.Rejected, reason }));
    expect(decoded.type === FrameType.Abort && decoded.reason).toBe("é".repeat(2048));
  });

  test("random bytes never decode into anything but a frame or a ProtocolError", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), fc.constantFrom(...frames), fc.nat(), (noise, frame, at) => {
        const bytes = encodeFrame(frame);
        const mixed = bytes.slice();
        mixed.set(noise.subarray(0, Math.max(0, mixed.byteLength - (at % mixed.byteLength))), at % mixed.byteLength);
        for (const candidate of [noise, mixed]) {
          const error = decodeError(candidate);
          if (error !== undefined) expect(ProtocolError.isInstance(error)).toBe(true);
        }
      }),
      { numRuns: 2000 },
    );
  });
});
