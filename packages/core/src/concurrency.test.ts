import { createHash, randomBytes } from "node:crypto";
import { afterEach, describe, expect, test } from "vitest";
import { createStreamClient, type StreamClient } from "./client";
import type { IncomingStream } from "./incoming-stream";
import { decodeFrame } from "./protocol/frame-codec";
import { FrameType } from "./protocol/frames";
import type { SendProgress } from "./sender";
import type { StreamReceiver } from "./stream-receiver";
import { createMemoryTransport, MemoryBroker, type MemoryTransport } from "./testing/memory-transport";

const sha256 = (bytes: Uint8Array) => createHash("sha256").update(bytes).digest("hex");
const CHUNK = 16 * 1024;

let clients: StreamClient[] = [];
afterEach(async () => {
  await Promise.all(clients.map((client) => client.close()));
  clients = [];
});

function client(broker: MemoryBroker, transport: MemoryTransport = createMemoryTransport({ broker })): StreamClient {
  const made = createStreamClient({ transport, retry: false });
  clients.push(made);
  return made;
}

/**
 * Reads every stream `receiver` hands over, slowly, recording how many were open at once and
 * whether the chunks of two ever interleaved; resolves once `count` streams are read.
 */
function readAll(receiver: StreamReceiver, count: number) {
  let open = 0;
  let mostOpen = 0;
  const order: string[] = [];
  const got = new Map<string, Buffer>();
  const done = new Promise<void>((resolve, reject) => {
    receiver.on("stream", (stream: IncomingStream) => {
      // Open from being handed over until read to its end (then the receiver may hand over the next).
      open += 1;
      mostOpen = Math.max(mostOpen, open);
      stream.once("end", () => {
        open -= 1;
      });
      void (async () => {
        const parts: Buffer[] = [];
        for await (const part of stream) {
          order.push(stream.streamId);
          parts.push(part as Buffer);
          await new Promise((wait) => setTimeout(wait, 2));
        }
        got.set(stream.manifest.name, Buffer.concat(parts));
        if (got.size === count) resolve();
      })().catch(reject);
    });
  });
  /** How many times the application went from the chunks of one stream to another's. */
  const switches = () => order.filter((id, i) => i > 0 && id !== order[i - 1]).length;
  return { done, got, mostOpen: () => mostOpen, switches };
}

describe("one stream at a time per receiver (concurrency)", () => {
  test("by default a receiver takes one stream at a time: 6 senders at once, each stream whole before the next, the others queued and told so", async () => {
    const broker = new MemoryBroker();
    const receiver = client(broker).receive("files");
    await receiver.ready;
    const queuedEvents: string[] = [];
    receiver.on("queued", (manifest) => queuedEvents.push(manifest.name));
    const reading = readAll(receiver, 6);
    const payloads = Array.from({ length: 6 }, (_, i) => randomBytes(20 * CHUNK + i));
    const sawQueued = new Set<string>();
    const results = await Promise.all(
      payloads.map((bytes, i) =>
        client(broker).send(bytes, {
          destination: "files",
          name: `f${i}`,
          chunkBytes: CHUNK,
          windowChunks: 4,
          onProgress: (progress: SendProgress) => {
            if (progress.queued) sawQueued.add(`f${i}`);
          },
        }),
      ),
    );
    await reading.done;
    for (const [i, bytes] of payloads.entries()) {
      expect(reading.got.get(`f${i}`)?.equals(bytes)).toBe(true);
      expect(results[i]?.sha256).toBe(sha256(bytes));
    }
    expect(reading.mostOpen()).toBe(1);
    expect(reading.switches()).toBe(5); // one switch per new stream: never interleaved
    expect(queuedEvents.length).toBeGreaterThanOrEqual(4);
    expect(sawQueued.size).toBe(queuedEvents.length);
    expect(receiver.queuedStreams).toBe(0);
  });

  test("concurrency: 3 lets a receiver take three at once, never more", async () => {
    const broker = new MemoryBroker();
    const receiver = client(broker).receive("files", { concurrency: 3 });
    await receiver.ready;
    const reading = readAll(receiver, 7);
    const payloads = Array.from({ length: 7 }, (_, i) => randomBytes(12 * CHUNK + i));
    await Promise.all(payloads.map((bytes, i) => client(broker).send(bytes, { destination: "files", name: `f${i}`, chunkBytes: CHUNK, windowChunks: 4 })));
    await reading.done;
    for (const [i, bytes] of payloads.entries()) expect(reading.got.get(`f${i}`)?.equals(bytes)).toBe(true);
    expect(reading.mostOpen()).toBe(3);
  });

  test("refuses a concurrency that is not a whole number of streams", () => {
    const receiving = client(new MemoryBroker());
    for (const concurrency of [0, -1, 1.5, Number.NaN]) expect(() => receiving.receive("files", { concurrency })).toThrow(RangeError);
  });

  test("a queued stream's sender on a lossy transport resends nothing while it waits", async () => {
    const broker = new MemoryBroker();
    const lossy = { retention: "none", redelivery: false } as const;
    const receiver = client(broker, createMemoryTransport({ broker, capabilities: lossy })).receive("files");
    await receiver.ready;
    let dataFrames = 0;
    const sender = createMemoryTransport({ broker, capabilities: lossy });
    const publish = sender.publish.bind(sender);
    sender.publish = (channel, frame, options) => {
      if (decodeFrame(frame).type === FrameType.Data) dataFrames += 1;
      return publish(channel, frame, options);
    };
    // The first stream is taken and not read for 5 s; the second waits in the queue meanwhile.
    const first = new Promise<IncomingStream>((resolve) => receiver.once("stream", resolve));
    const firstBytes = randomBytes(8 * CHUNK);
    const firstSend = client(broker).send(firstBytes, { destination: "files", name: "first", chunkBytes: CHUNK, windowChunks: 4 });
    await first;
    const secondBytes = randomBytes(8 * CHUNK);
    const secondSend = client(broker, sender).send(secondBytes, { destination: "files", name: "second", chunkBytes: CHUNK, windowChunks: 4 });
    await new Promise((wait) => setTimeout(wait, 300));
    expect(receiver.queuedStreams).toBe(1);
    const beforeQueued = dataFrames; // what went out before the receiver said "queued"
    expect(beforeQueued).toBeGreaterThan(0);
    expect(beforeQueued).toBeLessThanOrEqual(4);
    await new Promise((wait) => setTimeout(wait, 5000));
    expect(dataFrames).toBe(beforeQueued); // nothing more while queued (no probe every 2 s)
    const second = new Promise<IncomingStream>((resolve) => receiver.once("stream", resolve));
    const firstRead: Buffer[] = [];
    for await (const part of await first) firstRead.push(part as Buffer);
    const secondRead: Buffer[] = [];
    for await (const part of await second) secondRead.push(part as Buffer);
    await Promise.all([firstSend, secondSend]);
    expect(Buffer.concat(firstRead).equals(firstBytes)).toBe(true);
    expect(Buffer.concat(secondRead).equals(secondBytes)).toBe(true);
  }, 15_000);

  test("a receiver that dies with streams queued: their senders offer them to another receiver, which takes them whole", async () => {
    const broker = new MemoryBroker();
    const doomed = createMemoryTransport({ broker });
    const first = client(broker, doomed).receive("files");
    await first.ready;
    const taken = new Promise<IncomingStream>((resolve) => first.once("stream", resolve));
    const payloads = Array.from({ length: 3 }, (_, i) => randomBytes(10 * CHUNK + i));
    const sends = payloads.map((bytes, i) =>
      client(broker).send(bytes, { destination: "files", name: `f${i}`, chunkBytes: CHUNK, windowChunks: 4, takeoverAfterMs: 1000 }),
    );
    await taken;
    await new Promise((wait) => setTimeout(wait, 300));
    expect(first.queuedStreams).toBe(2);
    doomed.crash(); // SIGKILL: one stream open, two queued
    const second = client(broker).receive("files");
    await second.ready;
    const reading = readAll(second, 3);
    await reading.done;
    for (const [i, bytes] of payloads.entries()) expect(reading.got.get(`f${i}`)?.equals(bytes)).toBe(true);
    await Promise.all(sends);
    expect(reading.mostOpen()).toBe(1);
  }, 20_000);

  test("maxStreams: 1 takes one stream; the next waits queued until the receiver closes, then another receiver takes it", async () => {
    const broker = new MemoryBroker();
    const once = client(broker).receive("files", { maxStreams: 1 });
    await once.ready;
    const firstBytes = randomBytes(6 * CHUNK);
    const secondBytes = randomBytes(6 * CHUNK + 7);
    const handed: string[] = [];
    const firstRead = new Promise<Buffer>((resolve) =>
      once.on("stream", (stream: IncomingStream) => {
        handed.push(stream.manifest.name);
        void (async () => {
          const parts: Buffer[] = [];
          for await (const part of stream) parts.push(part as Buffer);
          resolve(Buffer.concat(parts));
        })();
      }),
    );
    const firstSend = client(broker).send(firstBytes, { destination: "files", name: "first", chunkBytes: CHUNK });
    await new Promise((wait) => setTimeout(wait, 100));
    const secondSend = client(broker).send(secondBytes, { destination: "files", name: "second", chunkBytes: CHUNK, takeoverAfterMs: 1000 });
    expect((await firstRead).equals(firstBytes)).toBe(true);
    await firstSend;
    await new Promise((wait) => setTimeout(wait, 1500));
    expect(handed).toEqual(["first"]);
    expect(once.queuedStreams).toBe(1);
    await once.close();
    const next = client(broker).receive("files");
    const reading = readAll(next, 1);
    await reading.done;
    expect(reading.got.get("second")?.equals(secondBytes)).toBe(true);
    await secondSend;
  }, 15_000);

  test("a 'stream' listener added right after receive() gets the streams that were waiting in the broker", async () => {
    const broker = new MemoryBroker();
    const bytes = randomBytes(3 * CHUNK);
    const sending = client(broker).send(bytes, { destination: "files", chunkBytes: CHUNK, model: "pull" });
    await new Promise((wait) => setTimeout(wait, 50)); // the Open waits in the broker
    const receiver = client(broker).receive("files"); // the memory broker delivers it within subscribe
    const stream = await new Promise<IncomingStream>((resolve) => receiver.once("stream", resolve));
    const parts: Buffer[] = [];
    for await (const part of stream) parts.push(part as Buffer);
    expect(Buffer.concat(parts).equals(bytes)).toBe(true);
    await sending;
  });
});
