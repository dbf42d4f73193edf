import { createHash, randomBytes } from "node:crypto";
import { describe, expect, test } from "vitest";
import { createStreamHasher, MAX_BACKLOG_BYTES, WORKER_HASH_MIN_CHUNK_BYTES } from "./stream-hasher";

describe("stream hasher", () => {
  test.each([
    [1024, false],
    [WORKER_HASH_MIN_CHUNK_BYTES, false],
    [WORKER_HASH_MIN_CHUNK_BYTES, true],
  ])("chunks of %i bytes (thread %s): the digest equals SHA-256 of the whole", async (chunkBytes, onThread) => {
    const data = randomBytes(chunkBytes * 40 + 17);
    const hasher = createStreamHasher(chunkBytes, onThread);
    for (let at = 0; at < data.byteLength; at += chunkBytes) {
      hasher.update(data.subarray(at, at + chunkBytes));
      if (hasher.backlogBytes >= MAX_BACKLOG_BYTES) await hasher.drained();
    }
    expect((await hasher.digest()).toString("hex")).toBe(createHash("sha256").update(data).digest("hex"));
  });

  test("the worker's backlog drains, and the caller's buffers stay untouched", async () => {
    const hasher = createStreamHasher(1024 * 1024, true);
    const chunk = randomBytes(1024 * 1024);
    const before = Buffer.from(chunk);
    for (let i = 0; i < 12; i++) hasher.update(chunk);
    expect(hasher.backlogBytes).toBeGreaterThan(0);
    await hasher.drained();
    expect(hasher.backlogBytes).toBeLessThan(MAX_BACKLOG_BYTES);
    expect(chunk.equals(before)).toBe(true);
    const expected = createHash("sha256");
    for (let i = 0; i < 12; i++) expected.update(chunk);
    expect((await hasher.digest()).equals(expected.digest())).toBe(true);
  });

  test("concurrent hashers on the shared worker do not mix their streams", async () => {
    const a = randomBytes(300_000);
    const b = randomBytes(300_000);
    const [ha, hb] = [createStreamHasher(100_000, true), createStreamHasher(100_000, true)];
    for (let at = 0; at < 300_000; at += 100_000) {
      ha.update(a.subarray(at, at + 100_000));
      hb.update(b.subarray(at, at + 100_000));
    }
    const [da, db] = await Promise.all([ha.digest(), hb.digest()]);
    expect(da.toString("hex")).toBe(createHash("sha256").update(a).digest("hex"));
    expect(db.toString("hex")).toBe(createHash("sha256").update(b).digest("hex"));
  });

  test.each([false, true])("peek (thread %s): the digest of the prefix so far, the hasher going on; undefined once spent", async (onThread) => {
    const data = randomBytes(WORKER_HASH_MIN_CHUNK_BYTES * 5);
    const hasher = createStreamHasher(WORKER_HASH_MIN_CHUNK_BYTES, onThread);
    const prefix = (bytes: number) => createHash("sha256").update(data.subarray(0, bytes)).digest("hex");
    hasher.update(data.subarray(0, WORKER_HASH_MIN_CHUNK_BYTES * 2));
    const early = hasher.peek(); // asked before the next update: covers only what came before it
    hasher.update(data.subarray(WORKER_HASH_MIN_CHUNK_BYTES * 2, WORKER_HASH_MIN_CHUNK_BYTES * 3));
    const later = hasher.peek();
    hasher.update(data.subarray(WORKER_HASH_MIN_CHUNK_BYTES * 3));
    expect((await early)?.toString("hex")).toBe(prefix(WORKER_HASH_MIN_CHUNK_BYTES * 2));
    expect((await later)?.toString("hex")).toBe(prefix(WORKER_HASH_MIN_CHUNK_BYTES * 3));
    expect((await hasher.digest()).toString("hex")).toBe(prefix(data.byteLength));
    expect(await hasher.peek()).toBeUndefined();
  });
});
