import { createHash, randomBytes } from "node:crypto";
import { afterEach, describe, expect, test } from "vitest";
import { createStreamClient, type StreamClient } from "./client";
import { IntegrityError } from "./errors/integrity-error";
import { ProtocolError } from "./errors/protocol-error";
import type { IncomingStream } from "./incoming-stream";
import { decodeFrame, encodeFrame } from "./protocol/frame-codec";
import { FrameType } from "./protocol/frames";
import { createMemoryTransport, MemoryBroker } from "./testing/memory-transport";

// A large message by reference: the Open carries the content's name, size and (when the sender
// knows it) SHA-256; the receiver may decide on them before taking a byte, and holds the stream to it.
const sha256 = (bytes: Uint8Array) => createHash("sha256").update(bytes).digest("hex");
const CHUNK = 16 * 1024;

let clients: StreamClient[] = [];
afterEach(async () => {
  await Promise.all(clients.map((client) => client.close()));
  clients = [];
});

function client(broker: MemoryBroker, transport = createMemoryTransport({ broker })): StreamClient {
  const made = createStreamClient({ transport, retry: false });
  clients.push(made);
  return made;
}

async function firstStream(broker: MemoryBroker): Promise<IncomingStream> {
  const receiver = client(broker).receive("refs");
  await receiver.ready;
  return new Promise((resolve) => receiver.once("stream", resolve));
}

async function readAll(stream: IncomingStream): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const part of stream) parts.push(part as Buffer);
  return Buffer.concat(parts);
}

describe("the manifest's sha256 (SendOptions.sha256)", () => {
  test("a pull stream's receiver sees name, size and SHA-256 before a byte moves, and gets what they say", async () => {
    const broker = new MemoryBroker();
    const bytes = randomBytes(10 * CHUNK + 7);
    const arriving = firstStream(broker);
    const sent = client(broker).send(bytes, { destination: "refs", name: "movie.bin", model: "pull", chunkBytes: CHUNK, sha256: sha256(bytes) });
    const stream = await arriving;
    expect(stream.manifest).toMatchObject({ name: "movie.bin", sizeBytes: bytes.byteLength, sha256: sha256(bytes), model: "pull" });
    expect(stream.phase).toBe("waiting"); // nothing moved yet: the application decides on the reference
    const received = await readAll(stream);
    expect(sha256(received)).toBe(sha256(bytes));
    expect((await sent).sha256).toBe(sha256(bytes));
  });

  test("a source that does not match the SHA-256 it announced is aborted on both sides with an IntegrityError", async () => {
    const broker = new MemoryBroker();
    const bytes = randomBytes(6 * CHUNK);
    const arriving = firstStream(broker);
    const sent = client(broker).send(bytes, { destination: "refs", chunkBytes: CHUNK, sha256: sha256(randomBytes(8)) });
    const reading = arriving.then(readAll);
    await expect(sent).rejects.toSatisfy((error) => IntegrityError.isInstance(error) && /announced/.test((error as Error).message));
    await expect(reading).rejects.toThrow(/announced/);
  });

  test("a receiver refuses bytes whose SHA-256 differs from the manifest's, even when the End frame agrees with them", async () => {
    const broker = new MemoryBroker();
    const bytes = randomBytes(6 * CHUNK);
    // A lying manifest: the Open's sha256 is rewritten on the way; data and End are the sender's own.
    const lying = createMemoryTransport({ broker });
    const publish = lying.publish.bind(lying);
    lying.publish = (channel, frame, options) => {
      const decoded = decodeFrame(frame);
      if (decoded.type !== FrameType.Open) return publish(channel, frame, options);
      return publish(channel, encodeFrame({ ...decoded, manifest: { ...decoded.manifest, sha256: "0".repeat(64) } }), options);
    };
    const arriving = firstStream(broker);
    const sent = client(broker, lying).send(bytes, { destination: "refs", chunkBytes: CHUNK });
    const reading = arriving.then(readAll);
    await expect(reading).rejects.toSatisfy((error) => IntegrityError.isInstance(error) && /manifest announced/.test((error as Error).message));
    await expect(sent).rejects.toSatisfy((error) => IntegrityError.isInstance(error));
  });

  test("a sha256 that is not 64 lower-case hex digits is refused before anything is sent; the codec refuses one too", async () => {
    const broker = new MemoryBroker();
    await expect(client(broker).send(randomBytes(10), { destination: "refs", sha256: "ABC" })).rejects.toThrow(TypeError);
    const open = encodeFrame({
      type: FrameType.Open,
      streamId: "00000000-0000-4000-8000-000000000000",
      manifest: {
        streamId: "00000000-0000-4000-8000-000000000000",
        name: "x",
        contentType: "application/octet-stream",
        chunkBytes: CHUNK,
        metadata: {},
        createdAt: new Date().toISOString(),
        model: "push",
        replyTo: "",
        windowChunks: 4,
        windowBytes: 4 * CHUNK,
        sha256: "not-a-hash",
      },
    });
    expect(() => decodeFrame(open)).toThrow(ProtocolError);
  });
});
