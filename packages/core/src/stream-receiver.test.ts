import { createHash, randomBytes, randomUUID } from "node:crypto";
import { describe, expect, test } from "vitest";
import { createStreamClient } from "./client";
import { IntegrityError } from "./errors/integrity-error";
import { StreamAbortedError } from "./errors/stream-aborted-error";
import type { IncomingStream } from "./incoming-stream";
import { withFaults } from "./testing/fault-injecting-transport";
import { createMemoryTransport, MemoryBroker } from "./testing/memory-transport";

const sha256 = (bytes: Uint8Array) => createHash("sha256").update(bytes).digest("hex");

async function readAll(stream: IncomingStream): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const part of stream) parts.push(part as Buffer);
  return Buffer.concat(parts);
}

function rig() {
  const broker = new MemoryBroker();
  const sender = createStreamClient({ transport: createMemoryTransport({ broker }) });
  const receiver = createStreamClient({ transport: createMemoryTransport({ broker }) });
  return { broker, sender, receiver, close: () => Promise.all([sender.close(), receiver.close()]) };
}

describe("StreamReceiver", () => {
  test("a stream that opens before iteration begins is still yielded", async () => {
    const { sender, receiver, close } = rig();
    const streams = receiver.receive("early");
    await streams.ready;
    const data = randomBytes(10_000);
    const sent = sender.send(data, { destination: "early", chunkBytes: 1024 });
    await new Promise((resolve) => setTimeout(resolve, 50));
    for await (const stream of streams) {
      expect(sha256(await readAll(stream))).toBe(sha256(data));
      break;
    }
    await sent;
    await close();
  });

  test("a failed stream can be sent again under the same stream id", async () => {
    const { broker, receiver, close } = rig();
    const corrupting = createStreamClient({ transport: withFaults(createMemoryTransport({ broker }), { corrupt: (s) => s === 0 }) });
    const clean = createStreamClient({ transport: createMemoryTransport({ broker }) });
    const streams = receiver.receive("again");
    await streams.ready;
    const iterator = streams[Symbol.asyncIterator]();
    const data = randomBytes(5000);
    const streamId = randomUUID();
    const first = corrupting.send(data, { destination: "again", chunkBytes: 1024, streamId });
    const failed = (await iterator.next()).value as IncomingStream;
    await expect(Promise.all([readAll(failed), first])).rejects.toSatisfy(IntegrityError.isInstance);
    const second = clean.send(data, { destination: "again", chunkBytes: 1024, streamId });
    const retried = (await iterator.next()).value as IncomingStream;
    expect(retried.streamId).toBe(streamId);
    expect(sha256(await readAll(retried))).toBe(sha256(data));
    expect((await second).sha256).toBe(sha256(data));
    await Promise.all([corrupting.close(), clean.close(), close()]);
  });

  test("a stream asking for a larger window than the receiver allows is refused, and its sender told why", async () => {
    const { sender, receiver, close } = rig();
    const refusals: string[] = [];
    const streams = receiver.receive("small", { maxWindowBytes: 64 * 1024, onFrameError: (error) => refusals.push(error.message) });
    await streams.ready;
    const sent = sender.send(randomBytes(300_000), { destination: "small", chunkBytes: 32 * 1024, windowChunks: 8 });
    const error = await sent.catch((caught: unknown) => caught);
    expect(StreamAbortedError.isInstance(error)).toBe(true);
    expect(String(error)).toMatch(/maxWindowBytes/);
    expect(refusals).toHaveLength(1);
    expect(streams.activeStreams).toBe(0);
    await close();
  });

  test("a receiver that reads slowly keeps the sender alive past its idle timeout (keepalive acks)", async () => {
    const { sender, receiver, close } = rig();
    const streams = receiver.receive("slow");
    await streams.ready;
    const data = randomBytes(64 * 1024);
    const sent = sender.send(data, { destination: "slow", chunkBytes: 4096, windowChunks: 2, idleTimeoutMs: 1500 });
    for await (const stream of streams) {
      await new Promise((resolve) => setTimeout(resolve, 3000)); // longer than idleTimeoutMs
      expect(sha256(await readAll(stream))).toBe(sha256(data));
      break;
    }
    expect((await sent).sha256).toBe(sha256(data));
    await close();
  }, 20_000);
});
