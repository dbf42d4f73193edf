import { createHash, randomBytes } from "node:crypto";
import { chmod, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, test } from "vitest";
import { createStreamClient, type StreamClient } from "./client";
import { IntegrityError } from "./errors/integrity-error";
import { StreamRefusedError } from "./errors/stream-refused-error";
import type { IncomingStream } from "./incoming-stream";
import { createMemoryTransport, MemoryBroker } from "./testing/memory-transport";
import { withFaults } from "./testing/fault-injecting-transport";

const sha256 = (bytes: Uint8Array) => createHash("sha256").update(bytes).digest("hex");
const CHUNK = 16 * 1024;

let dir: string;
let spoolDir: string;
let clients: StreamClient[] = [];
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "stream-delivery-"));
  spoolDir = join(dir, "spool");
});
afterEach(async () => {
  await Promise.all(clients.map((client) => client.close()));
  clients = [];
  await chmod(dir, 0o700).catch(() => {});
  await rm(dir, { recursive: true, force: true });
});

function client(broker: MemoryBroker, transport = createMemoryTransport({ broker })): StreamClient {
  const made = createStreamClient({ transport, retry: false });
  clients.push(made);
  return made;
}

const read = async (stream: IncomingStream): Promise<Buffer> => {
  const parts: Buffer[] = [];
  for await (const part of stream) parts.push(part as Buffer);
  return Buffer.concat(parts);
};

describe('delivery "transactional": the application sees a stream only once all of it is verified', () => {
  test("the stream is handed over only after its last byte arrived and its SHA-256 matched; read back from the spool, which is then removed", async () => {
    const broker = new MemoryBroker();
    const receiver = client(broker).receive("files", { spoolDir });
    await receiver.ready;
    const bytes = randomBytes(40 * CHUNK + 5);
    let sent = false;
    const sending = client(broker)
      .send(bytes, { destination: "files", name: "all-or-nothing.bin", chunkBytes: CHUNK, windowChunks: 8, delivery: "transactional" })
      .then((result) => {
        sent = true;
        return result;
      });
    const stream = await new Promise<IncomingStream>((resolve) => receiver.once("stream", resolve));
    // Handed over verified: its result is already there, before a byte is read.
    const verified = await Promise.race([stream.result, new Promise((resolve) => setTimeout(() => resolve("pending"), 0))]);
    expect(verified).toMatchObject({ sha256: sha256(bytes), byteCount: bytes.byteLength });
    expect(stream.spooled).toBe(true);
    expect(stream.manifest.delivery).toBe("transactional");
    expect(sent).toBe(false); // the sender hears "complete" once the application has taken it
    expect((await read(stream)).equals(bytes)).toBe(true);
    expect((await sending).sha256).toBe(sha256(bytes));
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(await readdir(spoolDir)).toEqual([]);
  });

  test("saveTo moves the spool file into the folder: the file is byte-exact and the spool is left empty", async () => {
    const broker = new MemoryBroker();
    const receiver = client(broker).receive("files", { spoolDir });
    await receiver.ready;
    const bytes = randomBytes(25 * CHUNK);
    const sending = client(broker).send(bytes, { destination: "files", name: "moved.bin", chunkBytes: CHUNK, delivery: "transactional" });
    const stream = await new Promise<IncomingStream>((resolve) => receiver.once("stream", resolve));
    const saved = await stream.saveTo(join(dir, "inbox"));
    expect(saved).toMatchObject({ path: join(dir, "inbox", "moved.bin"), byteCount: bytes.byteLength, sha256: sha256(bytes) });
    expect((await readFile(saved.path)).equals(bytes)).toBe(true);
    await sending;
    expect(await readdir(spoolDir)).toEqual([]);
  });

  test("a stream corrupted on the way is never handed over: its sender gets an IntegrityError and the spool is cleaned", async () => {
    const broker = new MemoryBroker();
    const receiver = client(broker).receive("files", { spoolDir });
    await receiver.ready;
    let handed = 0;
    receiver.on("stream", () => void (handed += 1));
    const corrupting = withFaults(createMemoryTransport({ broker }), { corrupt: (sequence) => sequence === 30 });
    const sending = client(broker, corrupting as ReturnType<typeof createMemoryTransport>).send(randomBytes(40 * CHUNK), {
      destination: "files",
      name: "bad.bin",
      chunkBytes: CHUNK,
      delivery: "transactional",
    });
    await expect(sending).rejects.toSatisfy((error) => IntegrityError.isInstance(error));
    // The spool file goes asynchronously: give a loaded machine time, then insist.
    await expect.poll(() => readdir(spoolDir), { timeout: 5000 }).toEqual([]);
    expect(handed).toBe(0);
  });

  test("a spool folder that cannot be made: the stream is refused, its sender told why", async () => {
    const broker = new MemoryBroker();
    const blocked = join(dir, "a-file");
    await writeFile(blocked, "in the way");
    const receiver = client(broker).receive("files", { spoolDir: join(blocked, "spool"), retry: false });
    await receiver.ready;
    const sending = client(broker).send(randomBytes(4 * CHUNK), { destination: "files", chunkBytes: CHUNK, delivery: "transactional" });
    await expect(sending).rejects.toSatisfy((error) => StreamRefusedError.isInstance(error) && /ENOTDIR|EEXIST/.test((error as Error).message));
  });

  test("a pull stream cannot be transactional", async () => {
    const sending = client(new MemoryBroker()).send(randomBytes(10), { destination: "files", model: "pull", delivery: "transactional" });
    await expect(sending).rejects.toThrow(TypeError);
  });
});

describe("store-and-forward streams and one at a time", () => {
  test('streams sent with flowControl "broker" while the receiver is busy are spooled, then handed over one at a time, none lost', async () => {
    const broker = new MemoryBroker();
    const payloads = Array.from({ length: 4 }, (_, i) => randomBytes(20 * CHUNK + i));
    // All four go into the broker before any receiver exists; their senders are gone.
    for (const [i, bytes] of payloads.entries()) {
      const sender = createStreamClient({ transport: createMemoryTransport({ broker }) });
      await sender.send(bytes, { destination: "files", name: `f${i}`, chunkBytes: CHUNK, flowControl: "broker" });
      await sender.close();
    }
    const receiver = client(broker).receive("files", { spoolDir });
    const got = new Map<string, Buffer>();
    let mostOpen = 0;
    let spooled = 0;
    for await (const stream of receiver) {
      mostOpen = Math.max(mostOpen, receiver.activeStreams);
      if (stream.spooled) spooled += 1;
      got.set(stream.manifest.name, await read(stream)); // each read whole before the next is taken
      if (got.size === payloads.length) break;
    }
    for (const [i, bytes] of payloads.entries()) expect(got.get(`f${i}`)?.equals(bytes)).toBe(true);
    expect(mostOpen).toBe(1);
    expect(spooled).toBeGreaterThan(0); // those that came while another was open waited in the spool
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(await readdir(spoolDir)).toEqual([]);
  });
});
