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
import { commitWithoutOverwrite, numberedName, safeFileName, splitExtension } from "./save-to";
import { withFaults } from "./testing/fault-injecting-transport";
import { createMemoryTransport, MemoryBroker } from "./testing/memory-transport";

const sha256 = (bytes: Uint8Array) => createHash("sha256").update(bytes).digest("hex");

describe("safeFileName", () => {
  test.each([
    ["report.csv", "report.csv"],
    ["reports/q3.csv", "q3.csv"],
    ["a\\b\\c.txt", "c.txt"],
    ["./a.txt", "a.txt"],
    ["dir/sub/", "sub"],
    ["dir/.", "dir"],
    ["bell\u0007.txt", "bell_.txt"],
    ["evil\u001b[31mred.txt", "evil_[31mred.txt"],
    ["invoice\u202efdp.exe", "invoicefdp.exe"],
    ["zero\u200bwidth\ufeff.txt", "zerowidth.txt"],
    ["what?<>|*.txt", "what_____.txt"],
    ["file.txt:stream", "file.txt_stream"],
    ["trailing dots...", "trailing dots"],
    ["name.txt. . ", "name.txt"],
    ["  spaced.txt  ", "spaced.txt"],
    ["CON", "_CON"],
    ["nul.txt", "_nul.txt"],
    ["com1.tar.gz", "_com1.tar.gz"],
    ["console.log", "console.log"],
    [".env", ".env"],
    ["..hidden", "..hidden"],
    ["re\u0301sume\u0301.txt", "r\u00e9sum\u00e9.txt"],
  ])("%j becomes %j", (name, safe) => expect(safeFileName(name)).toBe(safe));

  test.each([
    // Names that try to leave the folder: refused, never rewritten.
    "../../etc/passwd",
    "..",
    "../..",
    "a/../b",
    "a\\..\\b.txt",
    "x/.. /y.txt",
    "x/.../y.txt",
    "..\u200b/x.txt",
    "/etc/passwd",
    "/",
    "\\",
    "\\\\server\\share\\x.txt",
    " /etc/passwd",
    "C:\\Windows\\x",
    "c:x.txt",
    "a:b.txt",
    "nul\u0000byte",
    "\u0000",
    // Names with nothing usable left.
    "",
    ".",
    " . ",
    "\u200b\u200f",
  ])("%j is refused with UnsafePathError", (name) => {
    let error: unknown;
    try {
      safeFileName(name);
    } catch (caught) {
      error = caught;
    }
    expect(UnsafePathError.isInstance(error)).toBe(true);
    expect((error as Error).message).toContain(JSON.stringify(name));
  });

  test("a long name is cut to 255 bytes of UTF-8, never inside a character, keeping a compound extension", () => {
    const name = safeFileName(`${"é".repeat(300)}.tar.gz`);
    expect(Buffer.byteLength(name)).toBeLessThanOrEqual(255);
    expect(name.endsWith("é.tar.gz")).toBe(true);
    expect(name).not.toContain("\ufffd");
    expect(safeFileName(`${"x".repeat(400)}.tar.gz`)).toBe(`${"x".repeat(248)}.tar.gz`);
    expect(Buffer.byteLength(safeFileName("😀".repeat(100)))).toBe(252);
  });
});

describe("numberedName", () => {
  test("numbers before the extension, keeping .tar.* whole", () => {
    expect(numberedName("report.pdf", 0)).toBe("report.pdf");
    expect(numberedName("report.pdf", 1)).toBe("report (1).pdf");
    expect(numberedName("backup.tar.gz", 2)).toBe("backup (2).tar.gz");
    expect(numberedName("README", 3)).toBe("README (3)");
    expect(numberedName(".env", 1)).toBe(".env (1)");
  });

  test("stays within 255 bytes", () => {
    const numbered = numberedName(safeFileName(`${"x".repeat(400)}.bin`), 12);
    expect(Buffer.byteLength(numbered)).toBeLessThanOrEqual(255);
    expect(numbered.endsWith(" (12).bin")).toBe(true);
  });

  test("splits extensions sensibly", () => {
    expect(splitExtension("a.b.c")).toEqual({ stem: "a.b", extension: ".c" });
    expect(splitExtension("backup.TAR.GZ")).toEqual({ stem: "backup", extension: ".TAR.GZ" });
    expect(splitExtension("noext")).toEqual({ stem: "noext", extension: "" });
    expect(splitExtension("..hidden")).toEqual({ stem: "..hidden", extension: "" });
  });
});

describe("commitWithoutOverwrite", () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), "stream-commit-"));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  test("never replaces an existing file: it numbers the new one", async () => {
    await writeFile(join(dir, "a.tar.gz"), "original");
    await writeFile(join(dir, "a (1).tar.gz"), "first copy");
    await writeFile(join(dir, "tmp-1"), "new");
    const path = await commitWithoutOverwrite(join(dir, "tmp-1"), dir, "a.tar.gz");
    expect(path).toBe(join(dir, "a (2).tar.gz"));
    expect(await readFile(join(dir, "a.tar.gz"), "utf8")).toBe("original");
    expect(await readFile(join(dir, "a (1).tar.gz"), "utf8")).toBe("first copy");
    expect(await readFile(path, "utf8")).toBe("new");
    expect((await readdir(dir)).sort()).toEqual(["a (1).tar.gz", "a (2).tar.gz", "a.tar.gz"]);
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

  test("drops a plain directory prefix, reports progress, and returns what was verified", async () => {
    const { sender, next, streams, close } = rig();
    await streams.ready;
    const data = randomBytes(300_000);
    const arriving = next();
    const sent = sender.send(data, { destination: "files", name: "reports/2024/data.bin", chunkBytes: 64 * 1024 });
    const progress: number[] = [];
    const saved = await (await arriving).saveTo(dir, { onProgress: ({ bytesReceived }) => progress.push(bytesReceived) });
    await sent;
    expect(saved).toEqual({ path: join(dir, "data.bin"), byteCount: data.byteLength, sha256: sha256(data), startOffset: 0 });
    expect(sha256(await readFile(saved.path))).toBe(sha256(data));
    expect(await readdir(dir)).toEqual(["data.bin"]);
    expect(progress.at(-1)).toBe(data.byteLength);
    expect(progress).toEqual([...progress].sort((a, b) => a - b));
    await close();
  });

  test("numbers copies before a compound extension, and replaces only when told to", async () => {
    const { sender, next, streams, close } = rig();
    await streams.ready;
    await writeFile(join(dir, "backup.tar.gz"), "existing");
    const save = async (options?: { overwrite: boolean }) => {
      const data = randomBytes(10_000);
      const arriving = next();
      const sent = sender.send(data, { destination: "files", name: "backup.tar.gz" });
      const saved = await (await arriving).saveTo(dir, options);
      await sent;
      expect(sha256(await readFile(saved.path))).toBe(sha256(data));
      return saved.path;
    };
    expect(await save()).toBe(join(dir, "backup (1).tar.gz"));
    expect(await readFile(join(dir, "backup.tar.gz"), "utf8")).toBe("existing");
    expect(await save({ overwrite: true })).toBe(join(dir, "backup.tar.gz"));
    expect((await readdir(dir)).sort()).toEqual(["backup (1).tar.gz", "backup.tar.gz"]);
    await close();
  });

  test("saves names at the 255-byte limit and names that merely start with two dots", async () => {
    const { sender, next, streams, close } = rig();
    await streams.ready;
    for (const name of [`${"é".repeat(200)}.bin`, "..hidden"]) {
      const arriving = next();
      const sent = sender.send(randomBytes(1000), { destination: "files", name });
      const saved = await (await arriving).saveTo(dir);
      await sent;
      expect(saved.path).toBe(join(dir, safeFileName(name)));
    }
    expect(await readdir(dir)).toHaveLength(2);
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
