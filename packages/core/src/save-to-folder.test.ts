import { createHash, randomBytes } from "node:crypto";
import * as fs from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, test, vi } from "vitest";
import { createStreamClient } from "./client";
import { StreamRefusedError } from "./errors/stream-refused-error";
import { TargetFolderError } from "./errors/target-folder-error";
import type { IncomingStream } from "./incoming-stream";
import type { ReceiveOptions } from "./stream-receiver";
import { createMemoryTransport, MemoryBroker } from "./testing/memory-transport";

// Errors root cannot meet for real (EACCES, EROFS) are injected: `mkdir` of a folder whose name
// holds `inject-<CODE>` fails with that code, and every call is counted.
const mkdirCalls: string[] = [];
vi.mock("node:fs/promises", async (importOriginal) => {
  const original = await importOriginal<typeof import("node:fs/promises")>();
  return {
    ...original,
    mkdir: (async (path: string, options?: unknown) => {
      mkdirCalls.push(String(path));
      const code = /inject-([A-Z]+)/.exec(String(path))?.[1];
      if (code) throw Object.assign(new Error(`${code}: injected, mkdir '${path}'`), { code, syscall: "mkdir", path });
      return original.mkdir(path, options as Parameters<typeof original.mkdir>[1]);
    }) as typeof original.mkdir,
  };
});

const sha256 = (bytes: Uint8Array) => createHash("sha256").update(bytes).digest("hex");
const isRoot = process.getuid?.() === 0;

let dir: string;
beforeEach(async () => {
  dir = await fs.mkdtemp(join(tmpdir(), "stream-folder-"));
  mkdirCalls.length = 0;
});
afterEach(async () => {
  await fs.chmod(dir, 0o700).catch(() => {});
  await fs.rm(dir, { recursive: true, force: true });
});

function rig(receiveOptions: ReceiveOptions = { retry: { initialDelayMs: 50 } }) {
  const broker = new MemoryBroker();
  const sender = createStreamClient({ transport: createMemoryTransport({ broker }) });
  const receiver = createStreamClient({ transport: createMemoryTransport({ broker }) });
  const frameErrors: Error[] = [];
  const streams = receiver.receive("files", { ...receiveOptions, onFrameError: (error) => frameErrors.push(error) });
  const iterator = streams[Symbol.asyncIterator]();
  const next = async (): Promise<IncomingStream> => (await iterator.next()).value as IncomingStream;
  return { sender, streams, next, frameErrors, close: () => Promise.all([sender.close(), receiver.close()]) };
}

/** Sends `data` and saves it into `folder`; returns both outcomes, settled. */
async function sendAndSave(r: ReturnType<typeof rig>, folder: string, data: Uint8Array, name = "video.mp4") {
  await r.streams.ready;
  const arriving = r.next();
  const sent = r.sender.send(data, { destination: "files", name, chunkBytes: 8192 });
  const incoming = await arriving;
  const [send, save] = await Promise.allSettled([sent, incoming.saveTo(folder)]);
  return { send, save };
}

const reasonOf = (outcome: PromiseSettledResult<unknown>): unknown => (outcome.status === "rejected" ? outcome.reason : undefined);

describe("saveTo's folder", () => {
  test("a missing folder is created, parents included (the README's ./inbox)", async () => {
    const r = rig();
    const data = randomBytes(40_000);
    const folder = join(dir, "inbox", "2026", "12");
    const { send, save } = await sendAndSave(r, folder, data);
    expect(send.status).toBe("fulfilled");
    expect(save.status === "fulfilled" && save.value.path).toBe(join(folder, "video.mp4"));
    expect(sha256(await fs.readFile(join(folder, "video.mp4")))).toBe(sha256(data));
    await r.close();
  });

  test.each([
    ["ENOTDIR", "a path under a file", async () => {
      await fs.writeFile(join(dir, "file"), "x");
      return join(dir, "file", "inbox");
    }],
    ["EEXIST", "a path that is a file", async () => {
      await fs.writeFile(join(dir, "inbox"), "x");
      return join(dir, "inbox");
    }],
    ["EACCES", "a folder it may not create (injected)", async () => join(dir, "inject-EACCES")],
    ["EROFS", "a read-only file system (injected)", async () => join(dir, "inject-EROFS")],
  ])("%s (%s): the stream is refused, the sender told which folder and why, and the receiver takes the next stream", async (code, _, makeFolder) => {
    const r = rig();
    const folder = await makeFolder();
    const started = Date.now();
    const { send, save } = await sendAndSave(r, folder, randomBytes(40_000));
    const sendError = reasonOf(send);
    expect(StreamRefusedError.isInstance(sendError)).toBe(true);
    expect((sendError as StreamRefusedError).code).toBe("STREAM_REFUSED");
    expect(String(sendError)).toContain(`the receiver cannot write to its folder ${folder}: ${code}`);
    expect(String(sendError)).not.toMatch(/send again|no receiver/);
    const saveError = reasonOf(save) as TargetFolderError;
    expect(TargetFolderError.isInstance(saveError)).toBe(true);
    expect(saveError).toMatchObject({ folder, fsCode: code, code: "STREAM_TARGET_FOLDER", retryable: false });
    expect(saveError.message).toMatch(new RegExp(`^\\[stream\\] cannot write to the folder .*: ${code} `));
    expect(Date.now() - started).toBeLessThan(3000);
    // Nothing half-written is left, and the same receiver goes on with the next stream.
    const good = join(dir, "good");
    const data = randomBytes(20_000);
    const next = await sendAndSave(r, good, data, "next.bin");
    expect(next.send.status).toBe("fulfilled");
    expect(sha256(await fs.readFile(join(good, "next.bin")))).toBe(sha256(data));
    await r.close();
  });

  test.skipIf(isRoot)("EACCES for real: a folder without write permission (skipped as root)", async () => {
    const r = rig();
    const folder = join(dir, "locked");
    await fs.mkdir(folder);
    await fs.chmod(folder, 0o500);
    const { send, save } = await sendAndSave(r, folder, randomBytes(10_000));
    expect(String(reasonOf(send))).toContain(`the receiver cannot write to its folder ${folder}: EACCES`);
    expect((reasonOf(save) as TargetFolderError).fsCode).toBe("EACCES");
    await r.close();
  });

  test("ENOSPC: a declared size larger than the folder's free space is refused before a byte is written", async () => {
    const r = rig();
    await r.streams.ready;
    const arriving = r.next();
    // A source that never ends: the refusal, not the stream's end, must finish this.
    const source = (async function* () {
      yield randomBytes(8192);
      await new Promise((resolve) => setTimeout(resolve, 30_000));
    })();
    const sent = r.sender.send(source, { destination: "files", name: "huge.iso", sizeBytes: 2 ** 52, chunkBytes: 8192 });
    const [send, save] = await Promise.allSettled([sent, (await arriving).saveTo(join(dir, "inbox"))]);
    expect(String(reasonOf(send))).toContain(`the receiver cannot write to its folder ${join(dir, "inbox")}: ENOSPC`);
    expect(reasonOf(save)).toMatchObject({ fsCode: "ENOSPC", retryable: true });
    expect(await fs.readdir(join(dir, "inbox"))).toEqual([]);
    await r.close();
  });

  test("by default the folder is tried 3 times, 1 s then 2 s apart, with the CPU idle, then the stream is refused", async () => {
    const r = rig({});
    const folder = join(dir, "inject-EACCES");
    const started = Date.now();
    const cpuBefore = process.cpuUsage();
    const { send } = await sendAndSave(r, folder, randomBytes(10_000));
    const elapsedMs = Date.now() - started;
    const cpu = process.cpuUsage(cpuBefore);
    expect(StreamRefusedError.isInstance(reasonOf(send))).toBe(true);
    expect(mkdirCalls.filter((path) => path === folder)).toHaveLength(3);
    expect(elapsedMs).toBeGreaterThanOrEqual(2900);
    expect(elapsedMs).toBeLessThan(4500);
    // Waiting 3 s costs next to nothing: timers, keepalive acks; no redelivery spinning.
    expect((cpu.user + cpu.system) / 1000).toBeLessThan(300);
    await r.close();
  }, 10_000);

  test("retry: false refuses at the first failure", async () => {
    const r = rig({ retry: false });
    const folder = join(dir, "inject-EACCES");
    const { send } = await sendAndSave(r, folder, randomBytes(10_000));
    expect(StreamRefusedError.isInstance(reasonOf(send))).toBe(true);
    expect(mkdirCalls.filter((path) => path === folder)).toHaveLength(1);
    await r.close();
  });
});
