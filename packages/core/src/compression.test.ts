import { createHash, randomBytes } from "node:crypto";
import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { zstdCompressSync } from "node:zlib";
import { afterEach, beforeEach, describe, expect, test } from "vitest";
import { crc32 } from "./checksum";
import { createStreamClient, type StreamClient } from "./client";
import { COMPRESSION_MARKER_BYTES, COMPRESSIONS } from "./compression";
import { e2eKey } from "./e2e/e2e-keyring";
import { IntegrityError } from "./errors/integrity-error";
import type { StreamError } from "./errors/stream-error";
import { DATA_HEADER_BYTES, decodeFrame, writeDataHeader } from "./protocol/frame-codec";
import { FrameType } from "./protocol/frames";
import type { SaveResult } from "./save-to";
import type { SendOptions } from "./sender";
import type { ReceiveOptions } from "./stream-receiver";
import { createMemoryTransport, MemoryBroker } from "./testing/memory-transport";
import { tappedTransport, until } from "./test-support";

const sha256 = (bytes: Uint8Array) => createHash("sha256").update(bytes).digest("hex");
const CHUNK = 16 * 1024;
const KEY = e2eKey(randomBytes(32), "team-a");

/** Compressible content: log-like lines with some variety. */
function logLines(bytes: number): Buffer {
  const lines: string[] = [];
  let length = 0;
  for (let i = 0; length < bytes; i++) {
    const line = `2026-12-02T02:${String(i % 60).padStart(2, "0")}:00Z INFO request ${i} served in ${i % 97} ms from node-${i % 7}\n`;
    lines.push(line);
    length += line.length;
  }
  return Buffer.from(lines.join("")).subarray(0, bytes);
}

let dir: string;
let clients: StreamClient[] = [];
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "stream-compression-"));
});
afterEach(async () => {
  await Promise.all(clients.map((client) => client.close()));
  clients = [];
  await rm(dir, { recursive: true, force: true });
});


/** A sending client whose Data frames are recorded as published, and may be changed first (`tamper`). */
function tappedClient(broker: MemoryBroker, tamper?: (frame: Uint8Array) => Uint8Array) {
  const { transport, published } = tappedTransport(broker, tamper);
  const client = createStreamClient({ transport, retry: false });
  clients.push(client);
  return {
    client,
    /** The Data frames published so far. */
    get data() {
      return published.filter((frame) => frame[3] === FrameType.Data);
    },
  };
}

async function savingReceiver(broker: MemoryBroker, folder: string, options: ReceiveOptions = {}) {
  const client = createStreamClient({ transport: createMemoryTransport({ broker }) });
  clients.push(client);
  const frameErrors: StreamError[] = [];
  const receiver = client.receive("files", { onFrameError: (error) => frameErrors.push(error), ...options });
  await receiver.ready;
  const outcomes: Array<SaveResult | Error> = [];
  let received = 0;
  receiver.on("stream", (stream) => {
    stream.saveTo(folder, { onProgress: ({ bytesReceived }) => (received = bytesReceived) }).then(
      (saved) => outcomes.push(saved),
      (error: Error) => outcomes.push(error),
    );
  });
  return { outcomes, frameErrors, received: () => received };
}

const send = (client: StreamClient, source: Uint8Array, options: Partial<SendOptions> = {}) =>
  client.send(source, { destination: "files", name: "app.log", chunkBytes: CHUNK, windowChunks: 8, compression: "zstd", ...options });

/** The bytes Data frames carried after their headers. */
const payloadBytes = (frames: Uint8Array[]) => frames.reduce((sum, frame) => sum + frame.byteLength - DATA_HEADER_BYTES, 0);

async function roundTrip(bytes: Buffer, options: Partial<SendOptions>, receive: ReceiveOptions = {}) {
  const broker = new MemoryBroker();
  const folder = join(dir, "inbox");
  const receiving = await savingReceiver(broker, folder, receive);
  const sender = tappedClient(broker);
  const sent = await send(sender.client, bytes, options);
  await until(() => receiving.outcomes.length === 1);
  const saved = receiving.outcomes[0] as SaveResult;
  expect(saved.sha256).toBe(sha256(bytes));
  expect((await readFile(saved.path)).equals(bytes)).toBe(true);
  return { sent, data: sender.data };
}

describe("compression", () => {
  const SIZE = 40 * CHUNK + 777;
  for (const compression of COMPRESSIONS) {
    test(`${compression}: a compressible file round-trips, in far fewer bytes than it has`, async () => {
      const bytes = logLines(SIZE);
      const { sent, data } = await roundTrip(bytes, { compression });
      expect(sent.manifest.compression).toBe(compression);
      expect(sent.sha256).toBe(sha256(bytes));
      expect(data.length).toBe(Math.ceil(SIZE / CHUNK));
      expect(payloadBytes(data)).toBeLessThan(SIZE / 3);
      // Offsets stay in plaintext terms.
      const second = decodeFrame(data[1] as Uint8Array);
      expect(second.type === FrameType.Data && second.offset).toBe(CHUNK);
    });
  }

  test("a random (incompressible) file round-trips with every chunk sent raw: one marker byte more per chunk", async () => {
    const bytes = randomBytes(SIZE);
    const { data } = await roundTrip(bytes, { compression: "zstd" });
    expect(data.map((frame) => frame[DATA_HEADER_BYTES])).toEqual(data.map(() => 0));
    expect(payloadBytes(data)).toBe(SIZE + data.length * COMPRESSION_MARKER_BYTES);
  });

  test("compression and end-to-end encryption together round-trip, compressed before sealing", async () => {
    const bytes = logLines(SIZE);
    const { sent, data } = await roundTrip(bytes, { compression: "brotli", encryption: KEY }, { keys: [KEY] });
    expect(sent.manifest).toMatchObject({ compression: "brotli", e2e: { keyId: "team-a" } });
    // Sealed after compressing: far smaller than the plaintext (ciphertext does not compress).
    expect(payloadBytes(data)).toBeLessThan(SIZE / 3);
  });

  test("a decompression bomb (a chunk inflating past the chunk size) is refused with IntegrityError; the sender is told, nothing is handed over", async () => {
    const broker = new MemoryBroker();
    const folder = join(dir, "inbox");
    const receiving = await savingReceiver(broker, folder);
    const bomb = zstdCompressSync(Buffer.alloc(64 * CHUNK));
    const tamper = (frame: Uint8Array) => {
      if (frame[3] !== FrameType.Data) return frame;
      const crafted = new Uint8Array(DATA_HEADER_BYTES + COMPRESSION_MARKER_BYTES + bomb.byteLength);
      crafted.set(frame.subarray(0, DATA_HEADER_BYTES));
      crafted[DATA_HEADER_BYTES] = 1;
      crafted.set(bomb, DATA_HEADER_BYTES + COMPRESSION_MARKER_BYTES);
      const header = decodeFrame(frame);
      if (header.type !== FrameType.Data) throw new Error("not a Data frame");
      return writeDataHeader(crafted, { streamId: frame.subarray(4, 20), sequence: header.sequence, offset: header.offset, crc32: crc32(crafted.subarray(DATA_HEADER_BYTES)) });
    };
    const error = await send(tappedClient(broker, tamper).client, logLines(SIZE)).catch((caught: unknown) => caught);
    expect(IntegrityError.isInstance(error)).toBe(true);
    expect((error as Error).message).toMatch(/decompression bomb/);
    await until(() => receiving.outcomes.length === 1);
    const failure = receiving.outcomes[0];
    expect(IntegrityError.isInstance(failure) && failure.message).toMatch(/inflates past the 16384 bytes it may have \(a decompression bomb\)/);
    expect(receiving.received()).toBe(0);
    const files = await readdir(folder).catch(() => []);
    expect(files.filter((name) => !name.endsWith(".partial"))).toEqual([]);
  });

  test("an unknown algorithm is refused before anything is published", async () => {
    const sender = tappedClient(new MemoryBroker());
    await expect(send(sender.client, logLines(100), { compression: "lz4" as SendOptions["compression"] })).rejects.toThrow(
      /compression must be one of "zstd", "brotli", "deflate"; got "lz4"/,
    );
    expect(sender.data).toHaveLength(0);
  });
});
