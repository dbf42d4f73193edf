import { randomBytes } from "node:crypto";
import { createWriteStream } from "node:fs";
import { link, rename, rm } from "node:fs/promises";
import { basename, extname, isAbsolute, join, relative, resolve } from "node:path";
import type { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { UnsafePathError } from "./errors/unsafe-path-error";

/** Options of `IncomingStream.saveTo`. */
export interface SaveOptions {
  /** The file name to use instead of the sender's (it is made safe the same way). */
  readonly fileName?: string;
  /**
   * Replace a file of the same name. Off by default: the stream is saved as `name (1).ext`,
   * `name (2).ext`, ... so nothing is overwritten silently.
   * @default false
   */
  readonly overwrite?: boolean;
}

/** Where a stream was saved. */
export interface SaveResult {
  /** Absolute path of the saved file. */
  readonly path: string;
  readonly byteCount: number;
  /** SHA-256 of the file, lower-case hex, as verified against the sender's. */
  readonly sha256: string;
}

const CONTROL = /[\u0000-\u001f\u007f]/g;
const MAX_NAME_BYTES = 255;

/**
 * A sender's name for a stream made safe to use as a file name in a folder of ours: directories
 * are dropped (`reports/q3.csv` is `q3.csv`), control characters become `_`, and it is cut to
 * 255 bytes keeping its extension. A name that tries to climb out of the folder (`..`, an
 * absolute path) or has nothing left is refused with {@link UnsafePathError}.
 */
export function safeFileName(name: string): string {
  const segments = name.split(/[\\/]+/);
  if (name.includes("\u0000") || isAbsolute(name) || /^[a-zA-Z]:/.test(name) || segments.includes("..")) {
    throw new UnsafePathError({
      message: `[stream] the stream name ${JSON.stringify(name)} would write outside the target folder; it was refused. Ask the sender to send a plain file name, or pass saveTo a fileName.`,
    });
  }
  let safe = (segments.pop() ?? "").replace(CONTROL, "_").trim();
  if (safe === "" || safe === ".") {
    throw new UnsafePathError({ message: `[stream] the stream name ${JSON.stringify(name)} has no usable file name; pass saveTo a fileName.` });
  }
  while (Buffer.byteLength(safe) > MAX_NAME_BYTES) {
    const extension = extname(safe).slice(0, 32);
    safe = `${safe.slice(0, Math.max(1, safe.length - extension.length - 1))}${extension}`;
  }
  return safe;
}

/** `name`, `name (1)`, `name (2)`, ... keeping the extension. */
function candidateName(name: string, attempt: number): string {
  if (attempt === 0) return name;
  const extension = extname(name);
  return `${basename(name, extension)} (${attempt})${extension}`;
}

/**
 * Writes `stream` into `directory` under a safe name. The bytes go to a hidden temporary file
 * first; only once the stream has ended verified is it given its final name, so a failed or
 * lying stream never leaves a half file under that name. `verified` is the stream's result.
 */
export async function saveStream(
  stream: Readable,
  verified: Promise<{ sha256: string; byteCount: number }>,
  directory: string,
  name: string,
  options: SaveOptions = {},
): Promise<SaveResult> {
  const folder = resolve(directory);
  let fileName: string;
  try {
    fileName = safeFileName(options.fileName ?? name);
  } catch (error) {
    stream.once("error", () => {}); // The caller gets the error from this promise.
    stream.destroy(error as Error);
    throw error;
  }
  const temporary = join(folder, `.${fileName}.${randomBytes(4).toString("hex")}.partial`);
  try {
    await pipeline(stream, createWriteStream(temporary, { highWaterMark: 1024 * 1024, flags: "wx" }));
    const result = await verified;
    for (let attempt = 0; ; attempt++) {
      const path = join(folder, candidateName(fileName, attempt));
      if (relative(folder, path).startsWith("..")) throw new UnsafePathError({ message: `[stream] ${path} is outside ${folder}` });
      try {
        if (options.overwrite) {
          await rename(temporary, path);
        } else {
          await link(temporary, path); // Fails if the name exists: never overwrites.
          await rm(temporary, { force: true });
        }
        return { path, byteCount: result.byteCount, sha256: result.sha256 };
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== "EEXIST" || attempt > 10_000) throw error;
      }
    }
  } catch (error) {
    await rm(temporary, { force: true });
    stream.destroy();
    throw error;
  }
}
