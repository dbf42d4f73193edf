import { createHash, randomBytes, randomUUID } from "node:crypto";
import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, test } from "vitest";
import { createStreamClient } from "./client";
import { IntegrityError } from "./errors/integrity-error";
import { StreamAbortedError } from "./errors/stream-aborted-error";
import { StreamRefusedError } from "./errors/stream-refused-error";
import { StreamTimeoutError } from "./errors/stream-timeout-error";
import type { IncomingStream } from "./incoming-stream";
import { decodeFrame, encodeFrame } from "./protocol/frame-codec";
import { AbortCode, type Frame, FrameType } from "./protocol/frames";
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

  test("a 'stream' listener that throws is tried 3 times, 1 s then 2 s apart, then the stream is refused with its reason; the next stream is taken", async () => {
    const { sender, receiver, close } = rig();
    const frameErrors: Error[] = [];
    const streams = receiver.receive("throws", { onFrameError: (error) => frameErrors.push(error) });
    await streams.ready;
    const calls: number[] = [];
    const saved: Array<Promise<Buffer>> = [];
    streams.on("stream", (stream) => {
      calls.push(Date.now());
      if (stream.manifest.name === "bad.bin") throw new Error("EACCES: permission denied, mkdir '/srv/inbox'");
      saved.push(readAll(stream));
    });
    const started = Date.now();
    const cpuBefore = process.cpuUsage();
    const error = await sender.send(randomBytes(5000), { destination: "throws", name: "bad.bin", chunkBytes: 1024 }).catch((caught: unknown) => caught);
    const cpu = process.cpuUsage(cpuBefore);
    expect(StreamRefusedError.isInstance(error)).toBe(true);
    expect(StreamAbortedError.isInstance(error)).toBe(true); // still one, for checks written before
    expect(String(error)).toContain("the receiver could not take the stream (3 attempts): EACCES: permission denied, mkdir '/srv/inbox'");
    expect(calls).toHaveLength(3);
    const gaps = [(calls[1] as number) - (calls[0] as number), (calls[2] as number) - (calls[1] as number)];
    expect(gaps[0]).toBeGreaterThanOrEqual(990);
    expect(gaps[0]).toBeLessThan(1500);
    expect(gaps[1]).toBeGreaterThanOrEqual(1990);
    expect(gaps[1]).toBeLessThan(2500);
    expect(Date.now() - started).toBeLessThan(4000);
    expect((cpu.user + cpu.system) / 1000).toBeLessThan(300);
    expect(frameErrors.map((e) => e.name)).toEqual(["StreamRefusedError"]);
    // The receiver goes on: the next stream is handed to the same listener.
    const data = randomBytes(5000);
    const sent = await sender.send(data, { destination: "throws", name: "good.bin", chunkBytes: 1024 });
    expect(sha256(await (saved[0] as Promise<Buffer>))).toBe(sha256(data));
    expect(sent.sha256).toBe(sha256(data));
    expect(calls).toHaveLength(4);
    await close();
  }, 15_000);

  test("a frame is never handed back to the transport for redelivery: handling it throws, the receiver retries it itself", async () => {
    const { broker, receiver, close } = rig();
    const sender = createStreamClient({ transport: createMemoryTransport({ broker }) });
    const streams = receiver.receive("once", { retry: { initialDelayMs: 20 } });
    await streams.ready;
    let attempts = 0;
    streams.on("stream", () => {
      attempts += 1;
      throw new Error("listener failed");
    });
    const error = await sender.send(randomBytes(100), { destination: "once" }).catch((caught: unknown) => caught);
    expect(String(error)).toContain("(3 attempts): listener failed");
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(attempts).toBe(3); // the memory transport redelivers a rejected frame every 10 ms: none were
    await Promise.all([sender.close(), close()]);
  });
});

describe("a send that timed out is withdrawn", () => {
  /** Records the type of every frame published on stream channels. */
  function recording(transport: ReturnType<typeof createMemoryTransport>, published: Frame[]) {
    return {
      ...transport,
      publish(channel: string, frame: Uint8Array, options: Parameters<typeof transport.publish>[2]) {
        if (options.kind === "stream") published.push(decodeFrame(new Uint8Array(frame)));
        return transport.publish(channel, frame, options);
      },
    };
  }

  test("no receiver: the End is held back, an Abort follows, the sender says withdrawn; a later receiver saves nothing; the same id sent again is saved once", async () => {
    const broker = new MemoryBroker();
    const published: Frame[] = [];
    const sender = createStreamClient({ transport: recording(createMemoryTransport({ broker }), published) });
    const receiver = createStreamClient({ transport: createMemoryTransport({ broker }) });
    const dir = await mkdtemp(join(tmpdir(), "stream-withdrawn-"));
    const data = randomBytes(20_000);
    const streamId = randomUUID();
    const started = Date.now();
    const error = await sender.send(data, { destination: "late", name: "report.pdf", chunkBytes: 4096, streamId, idleTimeoutMs: 500 }).catch((caught: unknown) => caught);
    expect(Date.now() - started).toBeLessThan(1500);
    expect(StreamTimeoutError.isInstance(error)).toBe(true);
    expect(String(error)).toMatch(/withdrawn.*safe to send again/);
    expect(published.map((frame) => frame.type)).not.toContain(FrameType.End);
    expect(published.at(-1)).toMatchObject({ type: FrameType.Abort, code: AbortCode.TimedOut, reason: expect.stringMatching(/withdrew/) });

    // One stream in all: the withdrawn one does not count, so the next is still taken.
    const streams = receiver.receive("late", { maxStreams: 1 });
    const outcomes: string[] = [];
    const receiving = (async () => {
      for await (const stream of streams) {
        try {
          outcomes.push((await stream.saveTo(dir)).path);
        } catch (caught) {
          outcomes.push(`${(caught as Error).name}: ${(caught as Error).message}`);
        }
      }
    })();
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(await readdir(dir)).toEqual([]);
    expect(outcomes).toHaveLength(1);
    expect(outcomes[0]).toMatch(/^StreamWithdrawnError: .*the sender withdrew the stream/);

    const again = await sender.send(data, { destination: "late", name: "report.pdf", chunkBytes: 4096, streamId });
    expect(again.sha256).toBe(sha256(data));
    expect(await readdir(dir)).toEqual(["report.pdf"]);
    expect(sha256(await readFile(join(dir, "report.pdf")))).toBe(sha256(data));
    expect(outcomes).toEqual([outcomes[0], join(dir, "report.pdf")]);
    await Promise.all([sender.close(), receiver.close()]);
    await receiving;
    await rm(dir, { recursive: true, force: true });
  });

  test("an Open whose Abort came first is never handed over, nor a late copy of an aborted attempt's Open", async () => {
    const broker = new MemoryBroker();
    const transport = createMemoryTransport({ broker });
    const receiver = createStreamClient({ transport: createMemoryTransport({ broker }) });
    const streams = receiver.receive("stale");
    const yielded: string[] = [];
    streams.on("stream", (stream) => {
      yielded.push(stream.streamId);
      stream.on("error", () => {});
    });
    await streams.ready;
    const publish = (frame: Frame) => transport.publish("stale", encodeFrame(frame), { key: frame.streamId, kind: "stream" });
    const manifest = (streamId: string) => ({
      streamId, name: "x.bin", contentType: "application/octet-stream", chunkBytes: 1024, metadata: {},
      createdAt: "2026-12-01T10:00:00.000Z", model: "push" as const, replyTo: "", windowChunks: 4, windowBytes: 4096,
    });
    const first = randomUUID();
    await publish({ type: FrameType.Abort, streamId: first, code: AbortCode.TimedOut, reason: "withdrawn" });
    await publish({ type: FrameType.Open, streamId: first, manifest: manifest(first) });
    const second = randomUUID();
    await publish({ type: FrameType.Open, streamId: second, manifest: manifest(second) });
    await publish({ type: FrameType.Abort, streamId: second, code: AbortCode.TimedOut, reason: "withdrawn" });
    await publish({ type: FrameType.Open, streamId: second, manifest: manifest(second) }); // a late copy
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(yielded).toEqual([second]);
    expect(streams.activeStreams).toBe(0);
    await Promise.all([transport.close(), receiver.close()]);
  });
});
