import { createHash, randomBytes, randomUUID } from "node:crypto";
import { mkdir, mkdtemp, readdir, readFile, rm, stat, utimes, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { afterEach, beforeEach, describe, expect, test } from "vitest";
import { createStreamClient, type StreamClient } from "./client";
import { PartialFileMismatchError } from "./errors/partial-file-mismatch-error";
import type { StreamError } from "./errors/stream-error";
import { StreamTimeoutError } from "./errors/stream-timeout-error";
import type { IncomingStream } from "./incoming-stream";
import { TransferJournal, type TransferRecord } from "./journal";
import { decodeFrame } from "./protocol/frame-codec";
import { FrameType } from "./protocol/frames";
import { createMemoryTransport, MemoryBroker } from "./testing/memory-transport";
import { until } from "./test-support";

const sha256 = (bytes: Uint8Array) => createHash("sha256").update(bytes).digest("hex");
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const CHUNK = 64 * 1024;
const SIZE = 64 * CHUNK + 999; // 65 chunks, the last one short

let dir: string;
let clients: StreamClient[] = [];
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "stream-resume-receive-"));
});
afterEach(async () => {
  await Promise.all(clients.map((client) => client.close()));
  clients = [];
  await rm(dir, { recursive: true, force: true });
});


const partials = async (folder: string) => (await readdir(folder)).filter((name) => name.endsWith(".partial"));

/**
 * A sender of a file on `broker` (alive throughout: it offers the stream again once its receiver
 * falls silent), and a journaled receiver that saves it slowly (50 ms a chunk) into `folder` and is
 * killed (its transport crashed: no word more, as a SIGKILL) once half is written and the journal
 * holds `checkpoints` checkpoints. Returns once its last writes have landed.
 */
async function receiverKilledHalfWay(broker: MemoryBroker, journal: TransferJournal, folder: string, checkpoints: number) {
  const bytes = randomBytes(SIZE);
  const source = join(dir, "movie.bin");
  await writeFile(source, bytes);
  const transport = createMemoryTransport({ broker });
  const subscribe = transport.subscribe.bind(transport);
  transport.subscribe = (channel, handler, options) =>
    subscribe(channel, async (frame) => {
      if (decodeFrame(frame).type === FrameType.Data) await sleep(50);
      return handler(frame);
    }, options);
  const doomed = createStreamClient({ transport, retry: false, journal, brokerLabel: "memory://test" });
  clients.push(doomed);
  const receiver = doomed.receive("files");
  await receiver.ready;
  let written = 0;
  receiver.once("stream", (stream: IncomingStream) => {
    stream.saveTo(folder, { onProgress: ({ bytesReceived }) => void (written = bytesReceived) }).catch(() => {});
  });
  const sender = createStreamClient({ transport: createMemoryTransport({ broker }) });
  clients.push(sender);
  const streamId = randomUUID();
  const sent = sender.send(source, { destination: "files", streamId, chunkBytes: CHUNK, windowChunks: 4, takeoverAfterMs: 300 });
  sent.catch(() => {});
  const entry = () => journal.get(streamId, "receive");
  await until(async () => written >= SIZE / 2 && ((await entry())?.checkpoints?.length ?? 0) >= checkpoints);
  transport.crash();
  // Its last writes land (a killed process's are in the page cache); then nothing moves.
  let last = -1;
  await until(async () => {
    const [partial] = await partials(folder);
    const size = partial ? (await stat(join(folder, partial))).size : 0;
    const still = size === last;
    last = size;
    await sleep(100);
    return still;
  });
  return { bytes, streamId, sent, entry };
}

/** A new process: a client on a new transport with the same journal; frame errors collected. */
function restartedClient(broker: MemoryBroker, journal: TransferJournal) {
  const client = createStreamClient({ transport: createMemoryTransport({ broker }), journal });
  clients.push(client);
  const reported: StreamError[] = [];
  return { client, reported, onFrameError: (error: StreamError) => void reported.push(error) };
}

describe("resume on startup: a receiver killed half way is continued from its journaled partial file", () => {
  test("unfinishedTransfers lists the receive; resumeSaveTo continues it from its partial file, byte-exact; the entry is gone", async () => {
    const broker = new MemoryBroker();
    const journal = new TransferJournal({ dir: join(dir, "state") });
    const folder = join(dir, "inbox");
    const killed = await receiverKilledHalfWay(broker, journal, folder, 1);
    const { client, reported, onFrameError } = restartedClient(broker, journal);
    const [entry] = await client.unfinishedTransfers();
    expect(entry).toMatchObject({ id: killed.streamId, direction: "receive", name: "movie.bin", destination: "files", broker: "memory://test", sizeBytes: SIZE, chunkBytes: CHUNK, folder });
    expect(entry?.bytesDone).toBeGreaterThan(0); // as of its last update (once a second at most)
    expect(entry?.partial).toMatch(/\.movie\.bin\.[0-9a-f-]{36}\.[0-9a-f]{8}\.partial$/);
    expect(entry?.checkpoints?.[0]?.offset).toBeGreaterThan(0);

    const saved = await client.resumeSaveTo(killed.streamId, { onFrameError });
    expect(saved.sha256).toBe(sha256(killed.bytes));
    expect((await readFile(saved.path)).equals(killed.bytes)).toBe(true);
    expect(saved.startOffset).toBeGreaterThan(0);
    expect(saved.startOffset % CHUNK).toBe(0);
    expect((await killed.sent).sha256).toBe(sha256(killed.bytes));
    expect(reported).toEqual([]);
    expect(await client.unfinishedTransfers()).toEqual([]);
    expect(await partials(folder)).toEqual([]);
  }, 30_000);

  test("a byte flipped in the journaled prefix: the partial file is not continued, the mismatch is reported typed, the file is still exact", async () => {
    const broker = new MemoryBroker();
    const journal = new TransferJournal({ dir: join(dir, "state") });
    const folder = join(dir, "inbox");
    const killed = await receiverKilledHalfWay(broker, journal, folder, 1);
    const partial = (await killed.entry())?.partial as string;
    const altered = await readFile(partial);
    altered[10] = (altered[10] as number) ^ 0xff; // before the first checkpoint: no checkpoint matches
    await writeFile(partial, altered);
    const { client, reported, onFrameError } = restartedClient(broker, journal);
    const saved = await client.resumeSaveTo(killed.streamId, { onFrameError });
    expect(saved.startOffset).toBe(0);
    expect(saved.sha256).toBe(sha256(killed.bytes));
    expect((await readFile(saved.path)).equals(killed.bytes)).toBe(true);
    expect(reported).toHaveLength(1);
    const [mismatch] = reported;
    expect(PartialFileMismatchError.isInstance(mismatch)).toBe(true);
    expect(mismatch).toMatchObject({ code: "STREAM_PARTIAL_FILE_MISMATCH", keptBytes: 0 });
    expect((mismatch as PartialFileMismatchError).claimedBytes).toBeGreaterThan(0);
    expect(await client.unfinishedTransfers()).toEqual([]);
  }, 30_000);

  test("a byte flipped past the first checkpoint: continued from the last checkpoint that matches", async () => {
    const broker = new MemoryBroker();
    const journal = new TransferJournal({ dir: join(dir, "state") });
    const folder = join(dir, "inbox");
    const killed = await receiverKilledHalfWay(broker, journal, folder, 2);
    const entry = (await killed.entry()) as TransferRecord;
    const [first, second] = entry.checkpoints ?? [];
    const partial = entry.partial as string;
    const altered = await readFile(partial);
    const at = (first?.offset as number) + 5; // after the first checkpoint, before the second
    expect(at).toBeLessThan(second?.offset as number);
    altered[at] = (altered[at] as number) ^ 0xff;
    await writeFile(partial, altered);
    const { client, reported, onFrameError } = restartedClient(broker, journal);
    const saved = await client.resumeSaveTo(killed.streamId, { onFrameError });
    expect(saved.startOffset).toBe(Math.floor((first?.offset as number) / CHUNK) * CHUNK);
    expect((await readFile(saved.path)).equals(killed.bytes)).toBe(true);
    expect(reported.map((error) => PartialFileMismatchError.isInstance(error) && error.keptBytes)).toEqual([saved.startOffset]);
  }, 30_000);

  test("resumeSaveTo fails typed when no sender offers the stream in time; the entry is kept", async () => {
    const journal = new TransferJournal({ dir: join(dir, "state") });
    const now = new Date().toISOString();
    const id = randomUUID();
    await journal.write({ id, direction: "receive", name: "a.bin", destination: "files", bytesDone: 0, startedAt: now, updatedAt: now, folder: dir });
    const { client } = restartedClient(new MemoryBroker(), journal);
    const error = await client.resumeSaveTo(id, { timeoutMs: 300 }).catch((caught: unknown) => caught);
    expect(StreamTimeoutError.isInstance(error)).toBe(true);
    expect((error as Error).message).toMatch(/nobody offered stream/);
    expect((await client.unfinishedTransfers()).map((record) => record.id)).toEqual([id]);
    await expect(client.resumeSaveTo(randomUUID())).rejects.toThrow(TypeError);
  });

  test("saveTo's sweep of old partial files spares those the journal may still resume", async () => {
    const journal = new TransferJournal({ dir: join(dir, "state") });
    const folder = join(dir, "inbox");
    await mkdir(folder);
    const id = randomUUID();
    const journaled = join(folder, `.a.bin.${id}.0badc0de.partial`);
    const abandoned = join(folder, `.b.bin.${randomUUID()}.0badc0de.partial`);
    const old = new Date(Date.now() - 3_600_000);
    for (const path of [journaled, abandoned]) {
      await writeFile(path, "x");
      await utimes(path, old, old);
    }
    const now = new Date().toISOString();
    await journal.write({ id, direction: "receive", name: "a.bin", destination: "files", bytesDone: 1, startedAt: now, updatedAt: now, folder, partial: journaled });
    const broker = new MemoryBroker();
    const { client } = restartedClient(broker, journal);
    const receiver = client.receive("files", { partialTtlMs: 30_000 });
    await receiver.ready;
    const saved = new Promise((resolve, reject) => receiver.once("stream", (stream) => stream.saveTo(folder).then(resolve, reject)));
    const sender = createStreamClient({ transport: createMemoryTransport({ broker }) });
    clients.push(sender);
    await sender.send(randomBytes(10_000), { destination: "files", name: "c.bin" });
    await saved;
    expect((await readdir(folder)).sort()).toEqual([basename(journaled), "c.bin"].sort());
  });

  test("expiry removes a receive's entry and its partial file", async () => {
    const journal = new TransferJournal({ dir: join(dir, "state"), expireAfterMs: 1000 });
    const old = new Date(Date.now() - 5000).toISOString();
    const id = randomUUID();
    const partial = join(dir, `.a.bin.${id}.0badc0de.partial`);
    await writeFile(partial, "half");
    await journal.write({ id, direction: "receive", name: "a.bin", destination: "d", bytesDone: 4, startedAt: old, updatedAt: old, folder: dir, partial });
    expect(await journal.list()).toEqual([]);
    expect(await readdir(join(dir, "state"))).toEqual([]);
    expect(await partials(dir)).toEqual([]);
  });
});
