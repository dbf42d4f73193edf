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

/** Size and name of a source, where they can be known without reading it. */
export async function describeSource(source: StreamSource): Promise<SourceInfo> {
  if (typeof source === "string") {
    const stats = await stat(source);
    const name = source.split(/[\\/]/).pop();
    return { sizeBytes: stats.size, ...(name ? { name } : {}) };
  }
  if (source instanceof Uint8Array) return { sizeBytes: source.byteLength };
  return {};
}

/**
 * Reads `source` as buffers of `headroom + chunkBytes` bytes whose last `chunkBytes` hold the
 * next chunk (the final one may be shorter). The headroom is where the sender writes the frame
 * header, so a chunk is copied once at most (zero times from a file). Buffers come from
 * `allocate` (a pool, in the sender) and must be `headroom + chunkBytes` long.
 */
export async function* readChunks(
  source: StreamSource,
  chunkBytes: number,
  headroom: number,
  allocate: () => Uint8Array = () => Buffer.allocUnsafe(headroom + chunkBytes),
): AsyncGenerator<Uint8Array> {
  if (typeof source === "string") {
    yield* readFileChunks(source, chunkBytes, headroom, allocate);
    return;
  }
  if (source instanceof Uint8Array) {
    for (let at = 0; at < source.byteLength; at += chunkBytes) {
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
): AsyncGenerator<Uint8Array> {
  const handle = await open(path, "r");
  try {
    let position = 0;
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
