import { createReadStream, createWriteStream, mkdirSync, utimes, type WriteStream } from "node:fs";
import { rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Readable } from "node:stream";
import { PARTIAL_TOUCH_MS, partialName, sweepPartials } from "./partial-files";

/** Where a receiver spools streams unless told otherwise (`ReceiveOptions.spoolDir`). */
export const defaultSpoolDir = (): string => join(tmpdir(), "stream-spool");

/** Bytes the spool writer buffers before it pushes back. */
const SPOOL_BUFFER_BYTES = 8 * 1024 * 1024;

/**
 * @internal The file a stream is spooled to before its application sees it (transactional
 * delivery, or a store-and-forward stream that must wait its turn): verified chunks are appended
 * as they come, and read back once the whole stream is verified. A hidden partial file of the
 * spool folder (`.spool.<streamId>.<hex>.partial`), touched while it lives, so the sweep of
 * partial files left by dead receivers removes it only once abandoned.
 */
export class Spool {
  readonly path: string;
  readonly #file: WriteStream;
  readonly #touch: NodeJS.Timeout;
  #failure: Error | undefined;

  /** Starts the file; `onError` hears a write that failed (a full disk), once. */
  constructor(folder: string, streamId: string, partialTtlMs: number, onError: (error: Error) => void) {
    mkdirSync(folder, { recursive: true });
    this.path = join(folder, partialName("spool", streamId));
    this.#file = createWriteStream(this.path, { flags: "wx", highWaterMark: SPOOL_BUFFER_BYTES });
    this.#file.once("error", (error) => {
      this.#failure = error;
      onError(error);
    });
    this.#touch = setInterval(() => {
      const now = new Date();
      utimes(this.path, now, now, () => {});
    }, PARTIAL_TOUCH_MS);
    this.#touch.unref();
    void sweepPartials(folder, partialTtlMs, this.path).catch(() => {});
  }

  /** Bytes on disk so far: the stream acknowledges only these. */
  get writtenBytes(): number {
    return this.#file.bytesWritten;
  }

  /** Appends `bytes`; `written` is called once they are on disk. Returns false when the buffer is full: wait for {@link drained}. */
  write(bytes: Uint8Array, written: () => void): boolean {
    return this.#file.write(bytes, (error) => {
      if (!error) written();
    });
  }

  /** Calls `then` once the buffer has room again. */
  drained(then: () => void): void {
    this.#file.once("drain", then);
  }

  /** Closes the file once everything is written. */
  finish(): Promise<void> {
    return new Promise((resolve, reject) => {
      if (this.#failure) return reject(this.#failure);
      this.#file.end(() => (this.#failure ? reject(this.#failure) : resolve()));
    });
  }

  /** The spooled bytes, read back in pieces of `chunkBytes`. */
  read(chunkBytes: number): Readable {
    return createReadStream(this.path, { highWaterMark: chunkBytes });
  }

  /** Lets go of the file: the stream was handed over (and the file moved), or failed. */
  async remove(): Promise<void> {
    clearInterval(this.#touch);
    this.#file.destroy();
    await rm(this.path, { force: true });
  }
}
