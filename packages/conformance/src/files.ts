import { createHash, randomBytes } from "node:crypto";
import { createReadStream, createWriteStream } from "node:fs";

/** Writes `sizeBytes` of random bytes to `path`; resolves with their SHA-256, lower-case hex. */
export async function writeRandomFile(path: string, sizeBytes: number): Promise<string> {
  const hash = createHash("sha256");
  const out = createWriteStream(path);
  for (let written = 0; written < sizeBytes; ) {
    const piece = randomBytes(Math.min(1024 * 1024, sizeBytes - written));
    hash.update(piece);
    written += piece.byteLength;
    if (!out.write(piece)) await new Promise<void>((resolve) => out.once("drain", () => resolve()));
  }
  await new Promise<void>((resolve, reject) => out.end((error?: Error | null) => (error ? reject(error) : resolve())));
  return hash.digest("hex");
}

/** The SHA-256 of the file at `path`, lower-case hex. */
export async function hashFile(path: string): Promise<string> {
  const hash = createHash("sha256");
  for await (const piece of createReadStream(path, { highWaterMark: 1024 * 1024 })) hash.update(piece as Buffer);
  return hash.digest("hex");
}
