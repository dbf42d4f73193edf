import { createHash, randomBytes } from "node:crypto";
import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, test } from "vitest";
import { createStreamClient } from "./client";
import { IntegrityError } from "./errors/integrity-error";
import { StreamAbortedError } from "./errors/stream-aborted-error";
import { UnsafePathError } from "./errors/unsafe-path-error";
import type { IncomingStream } from "./incoming-stream";
import { safeFileName } from "./save-to";
import { withFaults } from "./testing/fault-injecting-transport";
import { createMemoryTransport, MemoryBroker } from "./testing/memory-transport";

const sha256 = (bytes: Uint8Array) => createHash("sha256").update(bytes).digest("hex");

describe("safeFileName", () => {
  test.each([
    ["report.csv", "report.csv"],
    ["reports/q3.csv", "q3.csv"],
    ["a\\b\\c.txt", "c.txt"],
    ["bell\u0007.txt", "bell_.txt"],
  ])("%j becomes %j", (name, safe) => expect(safeFileName(name)).toBe(safe));

  test.each(["../../etc/passwd", "/etc/passwd", "C:\\Windows\\x", "a/../b", "nul\u0000byte", "", "dir/", "."])(
    "%j is refused with UnsafePathError",
    (name) => {
      let error: unknown;
      try {
        safeFileName(name);
      } catch (caught) {
        error = caught;
      }
      expect(UnsafePathError.isInstance(error)).toBe(true);
    },
  );

  test("a long name is cut to 255 bytes keeping its extension", () => {
    const name = safeFileName(`${"x".repeat(400)}.tar.gz`);
    expect(Buffer.byteLength(name)).toBeLessThanOrEqual(255);
    expect(name.endsWith(".gz")).toBe(true);
  });
});

describe("IncomingStream.saveTo", () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), "stream-save-"));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const rig = (faulty = false) => {
    const broker = new MemoryBroker();
    const senderTransport = createMemoryTransport({ broker });
    const sender = createStreamClient({ transport: faulty ? withFaults(senderTransport, { corrupt: (s) => s === 1 }) : senderTransport });
    const receiver = createStreamClient({ transport: createMemoryTransport({ broker }) });
    const streams = receiver.receive("files");
    const next = async (): Promise<IncomingStream> => {
      for await (const stream of streams) return stream;
      throw new Error("closed");
    };
    return { sender, receiver, streams, next, close: () => Promise.all([sender.close(), receiver.close()]) };
  };

  test("saves a verified file under the sender's name, and never overwrites: the next is name (1)", async () => {
    const { sender, next, streams, close } = rig();
    await streams.ready;
    await writeFile(join(dir, "data.bin"), "existing");
    const data = randomBytes(50_000);
    const arriving = next();
    const sent = sender.send(data, { destination: "files", name: "../data.bin".slice(3), chunkBytes: 8192 });
    const saved = await (await arriving).saveTo(dir);
    await sent;
    expect(saved.path).toBe(join(dir, "data (1).bin"));
    expect(sha256(await readFile(saved.path))).toBe(sha256(data));
    expect(await readFile(join(dir, "data.bin"), "utf8")).toBe("existing");
    expect((await readdir(dir)).sort()).toEqual(["data (1).bin", "data.bin"]);
    await close();
  });

  test("the sender hears success only once the file has its final name", async () => {
    const { sender, next, streams, close } = rig();
    await streams.ready;
    const data = randomBytes(200_000);
    const arriving = next();
    const sent = sender.send(data, { destination: "files", name: "stored.bin", chunkBytes: 8192 });
    const saving = (await arriving).saveTo(dir);
    await sent;
    expect(await readdir(dir)).toEqual(["stored.bin"]);
    expect(sha256(await readFile(join(dir, "stored.bin")))).toBe(sha256(data));
    await saving;
    await close();
  });

  test("a name that escapes the folder is refused, nothing is written, and the sender is told", async () => {
    const { sender, next, streams, close } = rig();
    await streams.ready;
    const arriving = next();
    const sent = sender.send(randomBytes(100_000), { destination: "files", name: "../../escape.bin", chunkBytes: 8192, windowChunks: 2 });
    await Promise.all([
      expect((await arriving).saveTo(dir)).rejects.toSatisfy(UnsafePathError.isInstance),
      expect(sent).rejects.toSatisfy(StreamAbortedError.isInstance),
    ]);
    expect(await readdir(dir)).toEqual([]);
    await close();
  });

  test("a corrupt stream leaves no file behind, not even a partial one", async () => {
    const { sender, next, streams, close } = rig(true);
    await streams.ready;
    const arriving = next();
    const sent = sender.send(randomBytes(100_000), { destination: "files", name: "bad.bin", chunkBytes: 8192 });
    await Promise.all([
      expect((await arriving).saveTo(dir)).rejects.toSatisfy(IntegrityError.isInstance),
      expect(sent).rejects.toSatisfy(IntegrityError.isInstance),
    ]);
    expect(await readdir(dir)).toEqual([]);
    await close();
  });
});
