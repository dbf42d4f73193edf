import { createHash, randomBytes } from "node:crypto";
import { statSync } from "node:fs";
import { mkdtemp, readdir, readFile, rm, stat, truncate, utimes, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { afterEach, beforeEach, describe, expect, test } from "vitest";
import { createStreamClient, type StreamClient } from "./client";
import { StreamAbortedError } from "./errors/stream-aborted-error";
import { StreamRefusedError } from "./errors/stream-refused-error";
import type { IncomingStream } from "./incoming-stream";
import { decodeFrame, encodeFrame } from "./protocol/frame-codec";
import { FrameType, type Manifest } from "./protocol/frames";
import type { SaveResult } from "./save-to";
import type { SendOptions } from "./sender";
import type { ReceiveOptions } from "./stream-receiver";
import type { StreamSource } from "./stream-source";
import { createMemoryTransport, MemoryBroker, type MemoryTransport } from "./testing/memory-transport";

const sha256 = (bytes: Uint8Array) => createHash("sha256").update(bytes).digest("hex");
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const CHUNK = 64 * 1024;
const SIZE = 64 * CHUNK + 1234; // 65 chunks, the last one short

let dir: string;
let clients: StreamClient[] = [];
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "stream-takeover-"));
});
afterEach(async () => {
  await Promise.all(clients.map((client) => client.close()));
  clients = [];
  await rm(dir, { recursive: true, force: true });
});

const partials = async (folder: string) => (await readdir(folder)).filter((name) => name.endsWith(".partial"));

/** The first receiver: saves into `folder` and dies silently (its process "killed") at half way. */
async function firstReceiverDiesHalfWay(broker: MemoryBroker, folder: string) {
  const transport: MemoryTransport = createMemoryTransport({ broker });
  const client = createStreamClient({ transport, retry: false });
  clients.push(client);
  const receiver = client.receive("files");
  await receiver.ready;
  const died = new Promise<void>((resolve) => {
    receiver.once("stream", (stream: IncomingStream) => {
      stream.saveTo(folder, {
        onProgress: ({ bytesReceived }) => {
          if (bytesReceived >= SIZE / 2) {
            transport.crash(); // no Abort, no more acks: as if SIGKILLed
            resolve();
          }
        },
      }).catch(() => {});
    });
  });
  return { died };
}

/** A second receiver on the same destination; saves into `folder`, counting the bytes it is handed. */
async function secondReceiver(broker: MemoryBroker, folder: string | undefined, options: ReceiveOptions = {}) {
  const client = createStreamClient({ transport: createMemoryTransport({ broker }) });
  clients.push(client);
  const receiver = client.receive("files", options);
  await receiver.ready;
  let handed = 0;
  const discarded: Manifest[] = [];
  receiver.on("takeoverDiscarded", (manifest) => discarded.push(manifest));
  const stream = new Promise<IncomingStream>((resolve) => receiver.once("stream", resolve));
  const saved = stream.then((incoming): Promise<SaveResult | Buffer> => {
    if (folder === undefined) {
      return (async () => {
        const parts: Buffer[] = [];
        for await (const part of incoming) {
          handed += (part as Buffer).byteLength;
          parts.push(part as Buffer);
        }
        return Buffer.concat(parts);
      })();
    }
    return incoming.saveTo(folder, { onProgress: ({ bytesReceived }) => void (handed = bytesReceived) });
  });
  saved.catch(() => {});
  return { stream, saved, handed: () => handed, discarded };
}

function startSend(broker: MemoryBroker, source: StreamSource, options: Partial<SendOptions> = {}) {
  const client = createStreamClient({ transport: createMemoryTransport({ broker }) });
  clients.push(client);
  const sent = client.send(source, { destination: "files", name: "video.bin", chunkBytes: CHUNK, windowChunks: 8, takeoverAfterMs: 300, ...options });
  sent.catch(() => {});
  return sent;
}

/**
 * A first receiver saving into `folder` dies at half way; once its last writes have landed (and
 * its partial file is cut to `cutTo` bytes, if given: writes it never made), a second one starts.
 */
async function dieAndTakeOver(
  source: StreamSource,
  options: { folder?: string | undefined; receive?: ReceiveOptions; cutTo?: number; send?: Partial<SendOptions> } = {},
) {
  const broker = new MemoryBroker();
  const { died } = await firstReceiverDiesHalfWay(broker, dir);
  const sent = startSend(broker, source, options.send);
  await died;
  await sleep(100);
  const [left] = await partials(dir);
  expect(left).toMatch(/^\.video\.bin\.[0-9a-f-]{36}\.[0-9a-f]{8}\.partial$/);
  if (options.cutTo !== undefined) await truncate(join(dir, left as string), options.cutTo);
  const kept = Math.floor((await stat(join(dir, left as string))).size / CHUNK) * CHUNK;
  const second = await secondReceiver(broker, "folder" in options ? options.folder : dir, options.receive);
  return { sent, second, kept };
}

/** The stream arrived whole, from `startOffset` on in the second receiver, nothing handed twice, nothing left. */
async function expectTakenOver(data: Uint8Array, outcome: Awaited<ReturnType<typeof dieAndTakeOver>>, startOffset: number) {
  const saved = (await outcome.second.saved) as SaveResult;
  expect((await outcome.sent).sha256).toBe(sha256(data));
  expect(saved.sha256).toBe(sha256(data));
  expect(sha256(await readFile(saved.path))).toBe(sha256(data));
  expect(saved.startOffset).toBe(startOffset);
  expect((await outcome.second.stream).startOffset).toBe(startOffset);
  expect(outcome.second.handed()).toBe(SIZE - startOffset); // zero duplicate bytes
  expect(await partials(dir)).toEqual([]);
}

describe("takeover: a receiver dies mid-stream, another takes the stream over", () => {
  test("continue: the second receiver continues the partial file from its last whole chunk; no byte handed twice", async () => {
    const data = randomBytes(SIZE);
    const outcome = await dieAndTakeOver(data);
    expect(outcome.kept).toBeGreaterThan(0);
    expect((await outcome.second.stream).takeover).toBeDefined();
    await expectTakenOver(data, outcome, outcome.kept);
  });

  test("continue past what the dead receiver acknowledged, the sender's window full: the new receiver acks its start at once", async () => {
    const data = randomBytes(SIZE);
    const outcome = await dieAndTakeOver(data, { send: { windowChunks: 2 } });
    await expectTakenOver(data, outcome, outcome.kept);
  });

  test("continue from before the sender's window: a partial file cut short makes the sender read the source again from there", async () => {
    const data = randomBytes(SIZE);
    await expectTakenOver(data, await dieAndTakeOver(data, { cutTo: 3 * CHUNK + 100 }), 3 * CHUNK);
  });

  test("a file path as source is read again from the chunk asked for", async () => {
    const data = randomBytes(SIZE);
    const source = join(tmpdir(), `stream-takeover-source-${process.pid}.bin`);
    await writeFile(source, data);
    try {
      await expectTakenOver(data, await dieAndTakeOver(source, { cutTo: CHUNK }), CHUNK);
    } finally {
      await rm(source, { force: true });
    }
  });

  test("restart: the partial file is removed and the stream saved from byte 0", async () => {
    const data = randomBytes(SIZE);
    await expectTakenOver(data, await dieAndTakeOver(data, { receive: { takeover: "restart" } }), 0);
  });

  test("continue, read by the application itself: from byte 0, every byte once", async () => {
    const data = randomBytes(SIZE);
    const { sent, second } = await dieAndTakeOver(data, { folder: undefined });
    expect(sha256((await second.saved) as Buffer)).toBe(sha256(data));
    expect((await sent).sha256).toBe(sha256(data));
    expect((await second.stream).startOffset).toBe(0);
    expect(second.handed()).toBe(SIZE);
  });

  test("discard: the stream is refused with a reason, the sender told, the application told by an event", async () => {
    const { sent, second } = await dieAndTakeOver(randomBytes(SIZE), { receive: { takeover: "discard" } });
    const error = await sent.then(() => undefined, (caught: unknown) => caught);
    expect(StreamRefusedError.isInstance(error)).toBe(true);
    expect((error as Error).message).toMatch(/takeover: "discard"/);
    expect(second.discarded.map((manifest) => manifest.name)).toEqual(["video.bin"]);
  });

  test("a source that cannot be read again serves a takeover within its window", async () => {
    const data = randomBytes(SIZE);
    const outcome = await dieAndTakeOver(Readable.from([data.subarray(0, 100_000), data.subarray(100_000)]));
    await expectTakenOver(data, outcome, outcome.kept);
  });

  test("a source that cannot be read again answers a takeover from before its window with Abort Rejected", async () => {
    const { sent, second } = await dieAndTakeOver(Readable.from([randomBytes(SIZE)]), { receive: { takeover: "restart" } });
    const error = await sent.then(() => undefined, (caught: unknown) => caught);
    expect(StreamAbortedError.isInstance(error)).toBe(true);
    expect((error as Error).message).toMatch(/cannot be read again; send again/);
    const failure = await second.saved.then(() => undefined, (caught: unknown) => caught);
    expect(StreamAbortedError.isInstance(failure)).toBe(true);
    expect((failure as Error).message).toMatch(/cannot be read again; send again/);
  });
});

describe("what a receiver acknowledges with saveTo", () => {
  test("only bytes already in its partial file: a receiver taking over finds at least what the sender let go of", async () => {
    const broker = new MemoryBroker();
    const transport = createMemoryTransport({ broker });
    const publish = transport.publish.bind(transport);
    const behind: string[] = [];
    let acks = 0;
    transport.publish = async (channel, bytes, options) => {
      const frame = decodeFrame(bytes);
      if (frame.type === FrameType.Ack && !frame.complete) {
        acks += 1;
        const [partial] = (await readdir(dir)).filter((name) => name.endsWith(".partial"));
        const written = partial ? statSync(join(dir, partial)).size : 0;
        if (written < frame.offset) behind.push(`ack of ${frame.offset} bytes with ${written} in the file`);
      }
      return publish(channel, bytes, options);
    };
    const client = createStreamClient({ transport });
    clients.push(client);
    const receiver = client.receive("files");
    await receiver.ready;
    const saved = new Promise<SaveResult>((resolve, reject) => receiver.once("stream", (stream) => stream.saveTo(dir).then(resolve, reject)));
    const data = randomBytes(SIZE);
    await startSend(broker, data, { windowChunks: 4 });
    expect(sha256(await readFile((await saved).path))).toBe(sha256(data));
    expect(acks).toBeGreaterThan(5);
    expect(behind).toEqual([]);
  });
});

describe("a receiver that is only slow", () => {
  test("keeps its stream: the takeover Opens its silence caused are ignored, and no second stream starts", async () => {
    const broker = new MemoryBroker();
    const transport = createMemoryTransport({ broker });
    const publish = transport.publish.bind(transport);
    let silent = false;
    transport.publish = async (...args) => (silent ? undefined : publish(...args)); // its acks lost for a while
    let takeoverOpens = 0;
    const subscribe = transport.subscribe.bind(transport);
    transport.subscribe = (channel, handler, options) =>
      subscribe(channel, (bytes) => {
        const frame = decodeFrame(bytes);
        if (frame.type === FrameType.Open && frame.manifest.takeover) takeoverOpens += 1;
        return handler(bytes);
      }, options);
    const client = createStreamClient({ transport, retry: false });
    clients.push(client);
    const receiver = client.receive("files");
    await receiver.ready;
    const streams: IncomingStream[] = [];
    receiver.on("stream", (stream) => streams.push(stream));
    const data = randomBytes(SIZE);
    const sent = startSend(broker, data);
    await new Promise<void>((resolve) => receiver.once("stream", () => resolve()));
    const parts: Buffer[] = [];
    let paused = false;
    for await (const part of streams[0] as IncomingStream) {
      parts.push(part as Buffer);
      if (!paused && parts.length * CHUNK >= SIZE / 2) {
        paused = true;
        silent = true;
        await sleep(1000); // more than three takeoverAfterMs of 300 ms
        silent = false;
      }
    }
    expect(sha256(Buffer.concat(parts))).toBe(sha256(data));
    expect((await sent).sha256).toBe(sha256(data));
    expect(takeoverOpens).toBeGreaterThan(0);
    expect(streams).toHaveLength(1);
  });
});

describe("partial files left behind", () => {
  test("saveTo removes other receivers' partial files older than partialTtlMs, keeps younger ones and its own", async () => {
    const old = new Date(Date.now() - 60_000);
    const stale = ".a.bin.3b0e4c8e-6f0a-4d7e-9a51-2f7c1e9d0b44.0badc0de.partial";
    const legacy = ".b.bin.deadbeef.partial";
    const fresh = ".c.bin.9b0e4c8e-6f0a-4d7e-9a51-2f7c1e9d0b44.0badc0de.partial";
    for (const name of [stale, legacy, fresh]) await writeFile(join(dir, name), "x");
    await utimes(join(dir, stale), old, old);
    await utimes(join(dir, legacy), old, old);
    const broker = new MemoryBroker();
    const second = await secondReceiver(broker, dir, { partialTtlMs: 30_000 });
    const data = randomBytes(10_000);
    const sent = startSend(broker, data, { name: "d.bin" });
    await second.saved;
    await sent;
    expect((await readdir(dir)).sort()).toEqual([fresh, "d.bin"].sort());
  });

  test("keepPartial: true keeps them whatever their age", async () => {
    const old = new Date(Date.now() - 3_600_000);
    const stale = ".a.bin.3b0e4c8e-6f0a-4d7e-9a51-2f7c1e9d0b44.0badc0de.partial";
    await writeFile(join(dir, stale), "x");
    await utimes(join(dir, stale), old, old);
    const broker = new MemoryBroker();
    const second = await secondReceiver(broker, dir, { keepPartial: true });
    const sent = startSend(broker, randomBytes(10_000), { name: "d.bin" });
    await second.saved;
    await sent;
    expect((await readdir(dir)).sort()).toEqual([stale, "d.bin"].sort());
  });

  test("a send that fails leaves no partial file of its own", async () => {
    const broker = new MemoryBroker();
    const second = await secondReceiver(broker, dir);
    const controller = new AbortController();
    const sent = startSend(broker, Readable.from((async function* () {
      yield randomBytes(CHUNK * 2);
      await sleep(200);
      controller.abort();
      yield randomBytes(CHUNK);
    })()), { signal: controller.signal });
    await expect(sent).rejects.toThrow();
    await expect(second.saved).rejects.toThrow();
    expect(await partials(dir)).toEqual([]);
  });
});

describe("pull resumed from a chunk other than 0", () => {
  test.each([
    ["bytes in memory", (data: Uint8Array) => data],
    ["a Readable (read forward, the chunks before hashed only)", (data: Uint8Array) => Readable.from([data])],
  ])("%s: the sender sends from the chunk asked for, and its End covers the whole", async (_, source) => {
    const broker = new MemoryBroker();
    const raw = createMemoryTransport({ broker });
    const data = randomBytes(SIZE);
    const sequences: number[] = [];
    let end: { sha256: Uint8Array; byteCount: number; chunkCount: number } | undefined;
    let replyTo = "";
    const reply = (frame: Parameters<typeof encodeFrame>[0]) => void raw.publish(replyTo, encodeFrame(frame), { key: frame.streamId, kind: "inbox" });
    await raw.subscribe(
      "files",
      async (bytes) => {
        const frame = decodeFrame(bytes);
        if (frame.type === FrameType.Open) {
          replyTo = frame.manifest.replyTo;
          reply({ type: FrameType.Request, streamId: frame.streamId, sequence: 5, offset: 5 * CHUNK });
        } else if (frame.type === FrameType.Data) {
          sequences.push(frame.sequence);
          reply({ type: FrameType.Ack, streamId: frame.streamId, nextSequence: frame.sequence + 1, offset: frame.offset + frame.payload.byteLength, windowChunks: 8, complete: false });
        } else if (frame.type === FrameType.End) {
          end = frame;
          reply({ type: FrameType.Ack, streamId: frame.streamId, nextSequence: frame.chunkCount, offset: frame.byteCount, windowChunks: 8, complete: true });
        }
      },
      { kind: "stream" },
    );
    const result = await startSend(broker, source(data), { model: "pull" });
    expect(Math.min(...sequences)).toBe(5);
    expect(result.sha256).toBe(sha256(data));
    expect(Buffer.from(end?.sha256 ?? []).toString("hex")).toBe(sha256(data));
    expect(end?.byteCount).toBe(SIZE);
    await raw.close();
  });
});
