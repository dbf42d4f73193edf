import { createWriteStream, type WriteStream } from "node:fs";
import { now } from "../bench-run";
import { readRawHeader } from "./raw-header";

/**
 * The raw receiver's bookkeeping: appends each message's payload to the output file in arrival
 * order (as a hand-written consumer does; on a broker that loses or repeats messages the file is
 * then wrong) and counts, by sequence number, what was lost or duplicated.
 */
export class RawSink {
  readonly chunkCount: number;
  firstByteAt: number | undefined;
  lastWrittenAt = 0;
  uniqueChunks = 0;
  uniqueBytes = 0;
  duplicated = 0;
  private readonly seen: Uint8Array;
  private readonly out: WriteStream;
  private drain: Promise<void> | undefined;
  private closed = false;
  private complete!: () => void;
  /** Resolves once every chunk has arrived at least once. */
  readonly completed = new Promise<void>((resolve) => {
    this.complete = resolve;
  });

  constructor(outputFile: string, sizeBytes: number, chunkBytes: number) {
    this.chunkCount = Math.ceil(sizeBytes / chunkBytes);
    this.seen = new Uint8Array(this.chunkCount);
    this.out = createWriteStream(outputFile, { highWaterMark: 1024 * 1024 });
  }

  /**
   * Takes one message: `written` is called once its payload is written, and the promise returned
   * (when the file's buffer is full) resolves when the consumer should take more.
   */
  accept = (body: Buffer, written?: () => void): Promise<void> | undefined => {
    // Counted and closed: a late redelivery between close and disconnect is acknowledged, not written.
    if (this.closed) {
      written?.();
      return undefined;
    }
    this.firstByteAt ??= now();
    const header = readRawHeader(body);
    const fresh = header.sequence < this.chunkCount && this.seen[header.sequence] === 0;
    if (fresh) {
      this.seen[header.sequence] = 1;
      this.uniqueChunks += 1;
      this.uniqueBytes += header.payloadBytes;
    } else {
      this.duplicated += 1;
    }
    const room = this.out.write(body.subarray(body.byteLength - header.payloadBytes), () => {
      this.lastWrittenAt = now();
      written?.();
      if (fresh && this.uniqueChunks === this.chunkCount) this.complete();
    });
    if (room) return undefined;
    this.drain ??= new Promise<void>((resolve) =>
      this.out.once("drain", () => {
        this.drain = undefined;
        resolve();
      }),
    );
    return this.drain;
  };

  get lost(): number {
    return this.chunkCount - this.uniqueChunks;
  }

  /** Flushes and closes the file. */
  close(): Promise<void> {
    this.closed = true;
    return new Promise((resolve, reject) => this.out.end((error?: Error | null) => (error ? reject(error) : resolve())));
  }
}
