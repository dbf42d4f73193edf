import { createHash, randomBytes, randomUUID } from "node:crypto";
import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, test } from "vitest";
import { createStreamClient, type StreamClient } from "./client";
import { StreamAbortedError } from "./errors/stream-aborted-error";
import { decodeFrame } from "./protocol/frame-codec";
import { FrameType } from "./protocol/frames";
import type { SaveResult } from "./save-to";
import type { IncomingStream } from "./incoming-stream";
import { createMemoryTransport, MemoryBroker, type MemoryTransport } from "./testing/memory-transport";
import { until } from "./test-support";

const sha256 = (bytes: Uint8Array) => createHash("sha256").update(bytes).digest("hex");
const CHUNK = 64 * 1024;
const SIZE = 64 * CHUNK + 999;
const WINDOW = 4;

let dir: string;
let clients: StreamClient[] = [];
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "stream-resume-"));
});
afterEach(async () => {
  await Promise.all(clients.map((client) => client.close()));
  clients = [];
  await rm(dir, { recursive: true, force: true });
});

/** A client whose data frames are counted (payload bytes published). */
function countingClient(broker: MemoryBroker) {
  const transport = createMemoryTransport({ broker });
  const counted = { dataBytes: 0 };
  const publish = transport.publish.bind(transport);
  transport.publish = (channel, frame, options) => {
    const decoded = decodeFrame(frame);
    if (decoded.type === FrameType.Data) counted.dataBytes += decoded.payload.byteLength;
    return publish(channel, frame, options);
  };
  const client = createStreamClient({ transport, retry: false });
  clients.push(client);
  return { client, transport: transport as MemoryTransport, counted };
}

/** A receiver saving every stream into `folder`, reporting each outcome in order. */
async function savingReceiver(broker: MemoryBroker, folder: string, producerTimeoutMs: number) {
  const client = createStreamClient({ transport: createMemoryTransport({ broker }) });
  clients.push(client);
  const receiver = client.receive("files", { producerTimeoutMs });
  await receiver.ready;
  const outcomes: Array<SaveResult | Error> = [];
  let progress = 0;
  receiver.on("stream", (stream: IncomingStream) => {
    stream.saveTo(folder, { onProgress: ({ bytesReceived }) => void (progress = bytesReceived) }).then(
      (saved) => outcomes.push(saved),
      (error: Error) => outcomes.push(error),
    );
  });
  return { outcomes, progress: () => progress };
}

/** A broker, a source file of SIZE random bytes and a receiver saving into `inbox` (see {@link savingReceiver}). */
async function fileAndReceiver(producerTimeoutMs: number, fileName = "source.bin") {
  const broker = new MemoryBroker();
  const folder = join(dir, "inbox");
  const source = join(dir, fileName);
  const bytes = randomBytes(SIZE);
  await writeFile(source, bytes);
  const receiving = await savingReceiver(broker, folder, producerTimeoutMs);
  return { broker, folder, source, bytes, receiving };
}


// The receiver's producerTimeoutMs of 300 ms covers the resumed attempt too, which is silent until
// the receiver has placed it (claimed and hashed its partial file) and asked for the rest: the
// resumed sender's heartbeats (every 100 ms) keep it from being taken for dead meanwhile on a
// loaded machine, as a real sender's (every 5 s) do under the default 60 s.
describe("resume: a sender killed half way sends again with the same streamId and resume: true", () => {
  for (const when of ["after the receiver gave up on it (producerTimeoutMs)", "before the receiver noticed (it supersedes the old attempt)"] as const) {
    test(when, async () => {
      const patient = when.startsWith("before");
      const { broker, folder, source, bytes, receiving } = await fileAndReceiver(patient ? 60_000 : 300);
      const streamId = randomUUID();
      const first = countingClient(broker);
      const doomed = first.client.send(source, { destination: "files", streamId, chunkBytes: CHUNK, windowChunks: WINDOW });
      doomed.catch(() => {});
      await until(() => receiving.progress() >= SIZE / 2);
      first.transport.crash(); // SIGKILL: not a word more
      if (!patient) {
        await until(() => receiving.outcomes.length === 1);
        expect((receiving.outcomes[0] as Error).message).toMatch(/presumed dead/);
        expect((await readdir(folder)).filter((name) => name.endsWith(".partial"))).toHaveLength(1); // kept for the resume
      }
      const second = countingClient(broker);
      const resumed = await second.client.send(source, { destination: "files", streamId, chunkBytes: CHUNK, windowChunks: WINDOW, resume: true, heartbeatMs: 100 });
      expect(resumed.sha256).toBe(sha256(bytes));
      await until(() => receiving.outcomes.some((outcome) => !(outcome instanceof Error)));
      const saved = receiving.outcomes.find((outcome): outcome is SaveResult => !(outcome instanceof Error)) as SaveResult;
      expect(saved.sha256).toBe(sha256(bytes));
      expect((await readFile(saved.path)).equals(bytes)).toBe(true);
      expect(saved.startOffset).toBeGreaterThan(0);
      expect(resumed.startOffset).toBe(saved.startOffset); // the sender knows where the receiver took up
      // Resuming sends again at most what the first attempt had in flight: one window.
      expect(second.counted.dataBytes).toBeLessThanOrEqual(SIZE - saved.startOffset + WINDOW * CHUNK);
      expect(second.counted.dataBytes).toBeLessThan(SIZE);
      expect(resumed.bytesPublished).toBe(second.counted.dataBytes); // what the CLI reports, counted at the transport
      expect((await readdir(folder)).filter((name) => name.endsWith(".partial"))).toEqual([]);
    }, 20_000);
  }

  test("a client closed mid-send stops it at once, resumable: the receiver keeps what it saved and the resume continues it", async () => {
    const { broker, folder, source, bytes, receiving } = await fileAndReceiver(60_000);
    const streamId = randomUUID();
    const first = countingClient(broker);
    const interrupted = first.client.send(source, { destination: "files", streamId, chunkBytes: CHUNK, windowChunks: WINDOW });
    const outcome = interrupted.then(
      () => undefined,
      (error: unknown) => error,
    );
    await until(() => receiving.progress() >= SIZE / 2);
    const closingAt = Date.now();
    await first.client.close();
    const error = await outcome;
    expect(Date.now() - closingAt).toBeLessThan(2000); // not its idle timeout (120 s)
    expect(StreamAbortedError.isInstance(error) && error.retryable).toBe(true);
    const second = countingClient(broker);
    const resumed = await second.client.send(source, { destination: "files", streamId, chunkBytes: CHUNK, windowChunks: WINDOW, resume: true });
    expect(resumed.sha256).toBe(sha256(bytes));
    expect(resumed.startOffset).toBeGreaterThan(0);
    await until(() => receiving.outcomes.some((saved) => !(saved instanceof Error)));
    const saved = receiving.outcomes.find((saved): saved is SaveResult => !(saved instanceof Error)) as SaveResult;
    expect((await readFile(saved.path)).equals(bytes)).toBe(true);
  }, 20_000);

  test("a resume of a stream its receiver already saved whole (from a new process, a new inbox) is answered at once; nothing is published", async () => {
    const { broker, folder, source, bytes, receiving } = await fileAndReceiver(60_000);
    const streamId = randomUUID();
    await countingClient(broker).client.send(source, { destination: "files", streamId, chunkBytes: CHUNK, windowChunks: WINDOW });
    await until(() => receiving.outcomes.length === 1);
    const again = countingClient(broker);
    const startedAt = Date.now();
    const resumed = await again.client.send(source, { destination: "files", streamId, chunkBytes: CHUNK, windowChunks: WINDOW, resume: true });
    expect(Date.now() - startedAt).toBeLessThan(5000); // not the idle timeout (120 s)
    expect(resumed).toMatchObject({ sha256: sha256(bytes), byteCount: SIZE, startOffset: SIZE, bytesPublished: 0 });
    expect(again.counted.dataBytes).toBe(0);
    expect(receiving.outcomes).toHaveLength(1); // saved once
  }, 20_000);

  test("resume needs the streamId of the attempt it continues", async () => {
    const { client } = countingClient(new MemoryBroker());
    await expect(client.send(randomBytes(10), { destination: "files", resume: true })).rejects.toThrow(TypeError);
  });
});

describe("the journal: unfinished sends survive the process and are resumed by id", () => {
  test("a send killed half way is listed by unfinishedTransfers and resumeSend completes it; a changed file is refused", async () => {
    const { TransferJournal } = await import("./journal");
    const { SourceChangedError } = await import("./errors/source-changed-error");
    const journal = new TransferJournal({ dir: join(dir, "state") });
    const { broker, source, bytes, receiving } = await fileAndReceiver(300, "movie.bin");
    const doomedTransport = createMemoryTransport({ broker });
    const first = createStreamClient({ transport: doomedTransport, retry: false, journal, brokerLabel: "memory://test" });
    clients.push(first);
    const streamId = randomUUID();
    const doomed = first.send(source, { destination: "files", streamId, chunkBytes: CHUNK, windowChunks: WINDOW });
    doomed.catch(() => {});
    await until(() => receiving.progress() >= SIZE / 2);
    doomedTransport.crash();
    await until(() => receiving.outcomes.length === 1); // the receiver gave up on it, keeping its partial file
    // A new process: a new client on the same journal.
    const restarted = createStreamClient({ transport: createMemoryTransport({ broker }), journal });
    clients.push(restarted);
    const [entry] = await restarted.unfinishedTransfers();
    expect(entry).toMatchObject({ id: streamId, direction: "send", name: "movie.bin", destination: "files", broker: "memory://test", sizeBytes: SIZE, chunkBytes: CHUNK });
    expect(entry?.bytesDone).toBeGreaterThanOrEqual(0);
    expect(JSON.stringify(entry)).not.toMatch(/password/i);
    const resumed = await restarted.resumeSend(streamId, { heartbeatMs: 100 });
    expect(resumed.sha256).toBe(sha256(bytes));
    expect(await restarted.unfinishedTransfers()).toEqual([]);
    await until(() => receiving.outcomes.some((outcome) => !(outcome instanceof Error)));

    // A file changed between the crash and the resume is refused, typed.
    await journal.write({ ...(entry as NonNullable<typeof entry>), id: randomUUID() });
    const [stale] = await restarted.unfinishedTransfers();
    await writeFile(source, randomBytes(SIZE + 1));
    await expect(restarted.resumeSend((stale as NonNullable<typeof stale>).id)).rejects.toSatisfy((error) => SourceChangedError.isInstance(error));
  }, 30_000);

  test("entries not updated for expireAfterMs are removed when listed", async () => {
    const { TransferJournal } = await import("./journal");
    const journal = new TransferJournal({ dir: join(dir, "state"), expireAfterMs: 1000 });
    const old = new Date(Date.now() - 5000).toISOString();
    await journal.write({ id: randomUUID(), direction: "send", name: "a", destination: "d", bytesDone: 0, startedAt: old, updatedAt: old });
    expect(await journal.list()).toEqual([]);
    expect(await readdir(join(dir, "state"))).toEqual([]);
  });
});
