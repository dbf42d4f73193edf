import { createHash, randomFillSync } from "node:crypto";
import { createReadStream, createWriteStream } from "node:fs";
import { mkdir, rename, stat } from "node:fs/promises";
import { join } from "node:path";

/**
 * A file of `sizeBytes` random bytes in `dir`, made once and reused (random, so no broker or
 * codec gets compressible data). Written under a temporary name, so a half file is never reused.
 */
export async function ensureInputFile(dir: string, sizeBytes: number, onProgress?: (written: number) => void): Promise<string> {
  await mkdir(dir, { recursive: true });
  const file = join(dir, `input-${sizeBytes}.bin`);
  const existing = await stat(file).catch(() => undefined);
  if (existing?.size === sizeBytes) return file;
  const partial = `${file}.partial`;
  const out = createWriteStream(partial);
  const block = Buffer.allocUnsafe(4 * 1024 * 1024);
  for (let written = 0; written < sizeBytes; ) {
    randomFillSync(block);
    const piece = Buffer.from(block.subarray(0, Math.min(block.byteLength, sizeBytes - written)));
    written += piece.byteLength;
    if (!out.write(piece)) await new Promise<void>((resolve) => out.once("drain", () => resolve()));
    if (written % (256 * 1024 * 1024) === 0) onProgress?.(written);
  }
  await new Promise<void>((resolve, reject) => out.end((error?: Error | null) => (error ? reject(error) : resolve())));
  await rename(partial, file);
  return file;
}

/** SHA-256 of `file`, lower-case hex. */
export async function sha256File(file: string): Promise<string> {
  const hash = createHash("sha256");
  for await (const piece of createReadStream(file)) hash.update(piece as Buffer);
  return hash.digest("hex");
}
