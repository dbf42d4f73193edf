import { open, stat } from "node:fs/promises";
import { Readable } from "node:stream";

/**
 * What a sender can stream: a file path, bytes in memory, a Node `Readable`, or any (async)
 * iterable of byte chunks. A file path is read with 1 MiB reads straight into frame buffers.
 */
export type StreamSource = string | Uint8Array | Readable | AsyncIterable<Uint8Array> | Iterable<Uint8Array>;

/** What is known of a source before reading it. */
export interface SourceInfo {
  readonly name?: string;
  readonly sizeBytes?: number;
}

/**
 * Whether `source` can be read again from any offset (a file path, bytes in memory): such a
 * sender can serve a receiver that asks for chunks it has already let go of (a takeover, a
 * resumed pull). A `Readable` or an iterable is read once.
 */
export function isRereadable(source: StreamSource): source is string | Uint8Array {
  return typeof source === "string" || source instanceof Uint8Array;
}

/** Size and name of a source, where they can be known without reading it. */
export async function describeSource(source: StreamSource): Promise<SourceInfo> {
  if (typeof source === "string") {
    const stats = await stat(source);
    const name = sourceName(source);
    return { sizeBytes: stats.size, ...(name ? { name } : {}) };
  }
  if (source instanceof Uint8Array) return { sizeBytes: source.byteLength };
  return {};
}

/** A file path's base name; `undefined` for other sources, which carry no name. */
export function sourceName(source: StreamSource): string | undefined {
  return typeof source === "string" ? source.split(/[\\/]/).pop() || undefined : undefined;
}

/**
 * Reads `source` as buffers of `headroom + chunkBytes` bytes whose last `chunkBytes` hold the
 * next chunk (the final one may be shorter). The headroom is where the sender writes the frame
 * header, so a chunk is copied once at most (zero times from a file). Buffers come from
 * `allocate` (a pool, in the sender) and must be `headroom + chunkBytes` long. `fromOffset`
 * (bytes) starts a file or bytes in memory further on; a `Readable` or iterable is always read
 * from its start.
 */
export async function* readChunks(
  source: StreamSource,
  chunkBytes: number,
  headroom: number,
  allocate: () => Uint8Array = () => Buffer.allocUnsafe(headroom + chunkBytes),
  fromOffset = 0,
): AsyncGenerator<Uint8Array> {
  if (fromOffset !== 0 && !isRereadable(source)) throw new RangeError("[stream] only a file or bytes in memory can be read from an offset");
  if (typeof source === "string") {
    yield* readFileChunks(source, chunkBytes, headroom, allocate, fromOffset);
    return;
  }
  if (source instanceof Uint8Array) {
    for (let at = fromOffset; at < source.byteLength; at += chunkBytes) {
      const piece = source.subarray(at, at + chunkBytes);
      const frame = allocate().subarray(0, headroom + piece.byteLength);
      frame.set(piece, headroom);
      yield frame;
    }
    return;
  }
  yield* rechunk(source, chunkBytes, headroom, allocate);
}

async function* readFileChunks(
  path: string,
  chunkBytes: number,
  headroom: number,
  allocate: () => Uint8Array,
  fromOffset: number,
): AsyncGenerator<Uint8Array> {
  const handle = await open(path, "r");
  try {
    let position = fromOffset;
    for (;;) {
      const frame = allocate();
      let filled = 0;
      while (filled < chunkBytes) {
        const { bytesRead } = await handle.read(frame, headroom + filled, chunkBytes - filled, position);
        if (bytesRead === 0) break;
        filled += bytesRead;
        position += bytesRead;
      }
      if (filled > 0) yield filled === chunkBytes ? frame : frame.subarray(0, headroom + filled);
      if (filled < chunkBytes) return;
    }
  } finally {
    await handle.close();
  }
}

async function* rechunk(
  source: Readable | AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
  chunkBytes: number,
  headroom: number,
  allocate: () => Uint8Array,
): AsyncGenerator<Uint8Array> {
  let frame = allocate();
  let filled = 0;
  for await (const piece of source as AsyncIterable<Uint8Array | string>) {
    const bytes = typeof piece === "string" ? Buffer.from(piece) : piece;
    let at = 0;
    while (at < bytes.byteLength) {
      const take = Math.min(chunkBytes - filled, bytes.byteLength - at);
      frame.set(bytes.subarray(at, at + take), headroom + filled);
      filled += take;
      at += take;
      if (filled === chunkBytes) {
        yield frame;
        frame = allocate();
        filled = 0;
      }
    }
  }
  if (filled > 0) yield frame.subarray(0, headroom + filled);
}
