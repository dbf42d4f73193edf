import { createHash, randomBytes, randomUUID } from "node:crypto";
import { describe, expect, test } from "vitest";
import { crc32 } from "./checksum";
import { createStreamClient } from "./client";
import { StreamExpiredError } from "./errors/stream-expired-error";
import type { StreamError } from "./errors/stream-error";
import type { IncomingStream } from "./incoming-stream";
import { decodeFrame, encodeFrame } from "./protocol/frame-codec";
import { AbortCode, type Frame, FrameType, type Manifest } from "./protocol/frames";
import type { StreamReceiver } from "./stream-receiver";
import { createMemoryTransport, MemoryBroker } from "./testing/memory-transport";
import type { PublishOptions, Transport } from "./transport";

const sha256 = (bytes: Uint8Array) => createHash("sha256").update(bytes).digest("hex");
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function nextStream(streams: StreamReceiver): Promise<IncomingStream> {
  for await (const stream of streams) return stream;
  throw new Error("the receiver closed before a stream arrived");
}

/** A transport that records the options of every publish. */
function recording(transport: Transport): { transport: Transport; published: PublishOptions[] } {
  const published: PublishOptions[] = [];
  return {
    published,
    transport: {
      ...transport,
      publish: (channel, frame, options) => {
        published.push(options);
        return transport.publish(channel, frame, options);
      },
    },
  };
}

/** A sender's inbox and what arrives on it, for tests that play the sender by hand. */
async function handMadeSender(broker: MemoryBroker) {
  const transport = createMemoryTransport({ broker });
  const replies: Frame[] = [];
  const replyTo = `inbox.${randomUUID().slice(0, 8)}`;
  await transport.subscribe(replyTo, (bytes) => void replies.push(decodeFrame(bytes)), { kind: "inbox" });
  const manifest = (streamId: string, expiresAt: Date): Manifest => ({
    streamId,
    name: "report.pdf",
    sizeBytes: 8,
    contentType: "application/octet-stream",
    chunkBytes: 4,
    metadata: {},
    createdAt: new Date().toISOString(),
    model: "push",
    replyTo,
    windowChunks: 4,
    windowBytes: 16,
    expiresAt: expiresAt.toISOString(),
  });
  const publish = (destination: string, frame: Frame) => transport.publish(destination, encodeFrame(frame), { key: frame.streamId, kind: "stream" });
  return { transport, replies, manifest, publish };
}

describe("expiry (SendOptions.expireAfterMs)", () => {
  test("every frame goes to the transport with the manifest's expiry; a stream nobody took is gone after it, one without expiry is not", async () => {
    const broker = new MemoryBroker();
    const { transport, published } = recording(createMemoryTransport({ broker }));
    const sender = createStreamClient({ transport });
    const receiver = createStreamClient({ transport: createMemoryTransport({ broker }) });
    const data = randomBytes(10_000);
    const stored = { chunkBytes: 1024, flowControl: "broker" } as const;
    const before = Date.now();
    const expiring = await sender.send(data, { ...stored, destination: "expiring", expireAfterMs: 300 });
    const expiresAtMs = Date.parse(expiring.manifest.expiresAt ?? "");
    expect(expiresAtMs).toBeGreaterThanOrEqual(before + 300);
    expect(expiresAtMs).toBeLessThanOrEqual(Date.now() + 300);
    expect(published).toHaveLength(12); // Open, 10 chunks, End
    expect(published.every((options) => options.expiresAtMs === expiresAtMs)).toBe(true);
    const kept = await sender.send(data, { ...stored, destination: "kept" });
    expect(kept.manifest.expiresAt).toBeUndefined();
    expect(published.slice(12).every((options) => options.expiresAtMs === undefined)).toBe(true);
    await sleep(expiresAtMs - Date.now() + 50);

    const frameErrors: StreamError[] = [];
    const late = receiver.receive("expiring", { onFrameError: (error) => frameErrors.push(error) });
    await late.ready;
    const arrived = await Promise.race([nextStream(late).then(() => "a stream"), sleep(500).then(() => "nothing")]);
    expect(arrived).toBe("nothing");
    expect(frameErrors).toEqual([]);
    expect(broker.channel("expiring").parked).toHaveLength(0);
    const stillThere = receiver.receive("kept");
    const stream = await nextStream(stillThere);
    const parts: Buffer[] = [];
    for await (const part of stream) parts.push(part as Buffer);
    expect(sha256(Buffer.concat(parts))).toBe(sha256(data));
    await Promise.all([sender.close(), receiver.close()]);
  });

  test("a transport that cannot expire messages refuses the send before anything is published", async () => {
    const { transport, published } = recording(createMemoryTransport({ capabilities: { messageExpiry: false } }));
    const sender = createStreamClient({ transport });
    await expect(sender.send(randomBytes(10), { destination: "d", expireAfterMs: 1000 })).rejects.toThrow(/expireAfterMs needs a broker that drops expired messages.*retention\.ms/);
    await expect(sender.send(randomBytes(10), { destination: "d", expireAfterMs: 0 })).rejects.toThrow(RangeError);
    expect(published).toEqual([]);
    await sender.close();
  });

  test("a receiver refuses a stream whose expiry has passed, reports it and tells its sender; its repeated Open is dropped unseen", async () => {
    const broker = new MemoryBroker();
    const hand = await handMadeSender(broker);
    const receiver = createStreamClient({ transport: createMemoryTransport({ broker }) });
    const frameErrors: StreamError[] = [];
    const streams = receiver.receive("late", { onFrameError: (error) => frameErrors.push(error) });
    await streams.ready;
    const streamId = randomUUID();
    const manifest = hand.manifest(streamId, new Date(Date.now() - 1));
    const yielded = nextStream(streams).then(() => "a stream");
    await hand.publish("late", { type: FrameType.Open, streamId, manifest });
    await hand.publish("late", { type: FrameType.Data, streamId, sequence: 0, offset: 0, crc32: crc32(Buffer.from("abcd")), payload: Buffer.from("abcd") });
    await hand.publish("late", { type: FrameType.Open, streamId, manifest });
    await sleep(200);
    expect(frameErrors).toHaveLength(1);
    const [error] = frameErrors;
    expect(StreamExpiredError.isInstance(error)).toBe(true);
    expect((error as StreamExpiredError).expiresAt).toBe(manifest.expiresAt);
    expect(error?.message).toMatch(/refused stream .* expired at .* send it again/);
    expect(hand.replies).toEqual([{ type: FrameType.Abort, streamId, code: AbortCode.Rejected, reason: expect.stringMatching(/expired/) }]);
    expect(await Promise.race([yielded, sleep(100).then(() => "nothing")])).toBe("nothing");
    expect(streams.activeStreams).toBe(0);
    await Promise.all([receiver.close(), hand.transport.close()]);
  });

  test("a receiver fails a stream not received whole by its expiry, and tells its sender", async () => {
    const broker = new MemoryBroker();
    const hand = await handMadeSender(broker);
    const receiver = createStreamClient({ transport: createMemoryTransport({ broker }) });
    const streams = receiver.receive("slow", { producerTimeoutMs: 60_000 });
    await streams.ready;
    const streamId = randomUUID();
    const manifest = hand.manifest(streamId, new Date(Date.now() + 400));
    await hand.publish("slow", { type: FrameType.Open, streamId, manifest });
    await hand.publish("slow", { type: FrameType.Data, streamId, sequence: 0, offset: 0, crc32: crc32(Buffer.from("abcd")), payload: Buffer.from("abcd") });
    const stream = await nextStream(streams);
    const error = await stream.result.catch((caught: unknown) => caught);
    expect(StreamExpiredError.isInstance(error)).toBe(true);
    expect(Date.now()).toBeGreaterThanOrEqual(Date.parse(manifest.expiresAt ?? ""));
    expect(String(error)).toMatch(/expired at .* before this receiver had all of it \(0 bytes\)/);
    expect(hand.replies).toContainEqual({ type: FrameType.Abort, streamId, code: AbortCode.TimedOut, reason: expect.stringMatching(/expired/) });
    await Promise.all([receiver.close(), hand.transport.close()]);
  });

  test("a send not delivered by its expiry fails with StreamExpiredError, well before its idle timeout", async () => {
    const broker = new MemoryBroker();
    const { transport, published } = recording(createMemoryTransport({ broker }));
    const sender = createStreamClient({ transport });
    const startedAt = Date.now();
    const error = await sender
      .send(randomBytes(10_000), { destination: "nobody", chunkBytes: 1024, expireAfterMs: 300, idleTimeoutMs: 60_000 })
      .catch((caught: unknown) => caught);
    expect(StreamExpiredError.isInstance(error)).toBe(true);
    expect(String(error)).toMatch(/expired at .*expireAfterMs 300/);
    expect(Date.now() - startedAt).toBeLessThan(5000);
    // The Abort that withdraws it carries the same expiry, so it does not outlive the stream in the queue.
    expect(new Set(published.map((options) => options.expiresAtMs)).size).toBe(1);
    await sender.close();
  });
});
