import { randomBytes, randomUUID } from "node:crypto";
import { mkdtemp, readdir, rm, utimes, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, test } from "vitest";
import { crc32 } from "./checksum";
import { createStreamClient, type StreamClient } from "./client";
import { sweepPartialFiles } from "./partial-files";
import { encodeFrame } from "./protocol/frame-codec";
import { FrameType } from "./protocol/frames";
import type { OrphanReport } from "./stream-receiver";
import { createMemoryTransport, MemoryBroker } from "./testing/memory-transport";

let clients: StreamClient[] = [];
afterEach(async () => {
  await Promise.all(clients.map((client) => client.close()));
  clients = [];
});

describe("orphan chunks: frames whose stream's Open never comes", () => {
  test("are held, never handed over, then dropped with an 'orphaned' event saying how many and how much", async () => {
    const broker = new MemoryBroker();
    const client = createStreamClient({ transport: createMemoryTransport({ broker }) });
    clients.push(client);
    const receiver = client.receive("files", { orphanTimeoutMs: 300 });
    await receiver.ready;
    let handed = 0;
    receiver.on("stream", () => void (handed += 1));
    const orphaned = new Promise<OrphanReport>((resolve) => receiver.once("orphaned", resolve));
    // Chunks 3 to 6 of a stream whose Open went elsewhere (a foreign consumer, a purge).
    const foreign = createMemoryTransport({ broker });
    const streamId = randomUUID();
    for (let sequence = 3; sequence < 7; sequence++) {
      const payload = randomBytes(1000);
      const frame = encodeFrame({ type: FrameType.Data, streamId, sequence, offset: sequence * 1000, crc32: crc32(payload), payload });
      await foreign.publish("files", frame, { key: streamId, kind: "stream" });
    }
    const report = await orphaned;
    expect(report).toMatchObject({ streamId, frames: 4, bytes: 4000 });
    expect(report.heldMs).toBeGreaterThanOrEqual(300);
    expect(handed).toBe(0);
    await foreign.close();
  });
});

describe("sweepPartialFiles: what dead receivers left in a folder", () => {
  test("removes partial files untouched for longer than olderThanMs, keeps recent ones and everything else", async () => {
    const dir = await mkdtemp(join(tmpdir(), "stream-sweep-"));
    try {
      const old = join(dir, `.video.mp4.${randomUUID()}.0a1b2c3d.partial`);
      const recent = join(dir, `.notes.txt.${randomUUID()}.4e5f6a7b.partial`);
      const file = join(dir, "video.mp4");
      for (const path of [old, recent, file]) await writeFile(path, "x");
      const longAgo = new Date(Date.now() - 20 * 60_000);
      await utimes(old, longAgo, longAgo);
      await utimes(file, longAgo, longAgo);
      const swept = await sweepPartialFiles(dir, { olderThanMs: 10 * 60_000 });
      expect(swept).toEqual({ removed: [old], kept: [recent] });
      expect((await readdir(dir)).sort()).toEqual([recent, file].map((path) => path.slice(dir.length + 1)).sort());
      expect(await sweepPartialFiles(join(dir, "missing"))).toEqual({ removed: [], kept: [] });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
