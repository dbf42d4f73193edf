import * as zlib from "node:zlib";
import { DATA_HEADER_BYTES } from "./protocol/frame-codec";
import type { Compression } from "./protocol/frames";

/**
 * Per-chunk compression (`SendOptions.compression`, `manifest.compression`). When a stream is
 * compressed, each chunk travels behind a one-byte marker: {@link Marker.Raw} and the chunk as
 * it is (it did not shrink), or {@link Marker.Compressed} and the chunk compressed with the
 * manifest's algorithm. Compression comes before end-to-end encryption (the marker is sealed
 * with the chunk), decompression after it; offsets, sizes, the CRC of the plain chunk and the
 * SHA-256 all stay in plaintext terms, except the CRC-32, which covers what travels.
 */

/** The algorithms, by their manifest names. */
export const COMPRESSIONS: readonly Compression[] = ["zstd", "brotli", "deflate"];
/** Bytes a compressed stream's chunk carries besides its (compressed or raw) bytes. */
export const COMPRESSION_MARKER_BYTES = 1;
const Marker = { Raw: 0, Compressed: 1 } as const;

interface Codec {
  readonly compress: (chunk: Uint8Array) => Buffer;
  readonly decompress: (bytes: Uint8Array, maxOutputLength: number) => Buffer;
}

// zstd is in node:zlib from Node 22.15 (and 23.8); looked up by name, so older Nodes load this module.
const zstdCompress = (zlib as Partial<typeof zlib>).zstdCompressSync;
const zstdDecompress = (zlib as Partial<typeof zlib>).zstdDecompressSync;

const CODECS: Readonly<Record<Compression, Codec | undefined>> = {
  zstd:
    zstdCompress && zstdDecompress
      ? { compress: (chunk) => zstdCompress(chunk), decompress: (bytes, maxOutputLength) => zstdDecompress(bytes, { maxOutputLength }) }
      : undefined,
  brotli: {
    compress: (chunk) =>
      zlib.brotliCompressSync(chunk, {
        params: { [zlib.constants.BROTLI_PARAM_QUALITY]: 4, [zlib.constants.BROTLI_PARAM_SIZE_HINT]: chunk.byteLength },
      }),
    decompress: (bytes, maxOutputLength) => zlib.brotliDecompressSync(bytes, { maxOutputLength }),
  },
  deflate: {
    compress: (chunk) => zlib.deflateRawSync(chunk),
    decompress: (bytes, maxOutputLength) => zlib.inflateRawSync(bytes, { maxOutputLength }),
  },
};

function codec(algorithm: Compression): Codec {
  const found = CODECS[algorithm];
  if (!found) throw new TypeError(`[stream] compression "${algorithm}" is not available: zstd needs Node 22.15 or later (this is ${process.version})`);
  return found;
}

/**
 * Checks `SendOptions.compression` (and that this Node has it). Throws `TypeError`.
 */
export function checkCompression(value: unknown): Compression | undefined {
  if (value === undefined) return undefined;
  if (!COMPRESSIONS.includes(value as Compression)) {
    throw new TypeError(`[stream] compression must be one of ${COMPRESSIONS.map((name) => `"${name}"`).join(", ")}; got ${JSON.stringify(value)}`);
  }
  codec(value as Compression);
  return value as Compression;
}

/**
 * A Data frame (room for its header first) for `chunk` of a compressed stream: the marker and the
 * chunk compressed, or the marker and the chunk as it is when compressing did not make it smaller.
 */
export function compressChunk(algorithm: Compression, chunk: Uint8Array): Uint8Array {
  const compressed = codec(algorithm).compress(chunk);
  const body = compressed.byteLength < chunk.byteLength ? compressed : chunk;
  const frame = Buffer.allocUnsafe(DATA_HEADER_BYTES + COMPRESSION_MARKER_BYTES + body.byteLength);
  frame[DATA_HEADER_BYTES] = body === compressed ? Marker.Compressed : Marker.Raw;
  frame.set(body, DATA_HEADER_BYTES + COMPRESSION_MARKER_BYTES);
  return frame;
}

/**
 * The plain chunk of a compressed stream's chunk (`marked`: marker and bytes), never longer than
 * `maxBytes`: a chunk that would inflate past it (a decompression bomb), is corrupt or has an
 * unknown marker gives a string saying why, and nothing is inflated beyond `maxBytes`.
 */
export function decompressChunk(algorithm: Compression, marked: Uint8Array, maxBytes: number): Uint8Array | string {
  const bytes = marked.subarray(COMPRESSION_MARKER_BYTES);
  switch (marked[0]) {
    case Marker.Raw:
      return bytes.byteLength > maxBytes ? `is ${bytes.byteLength} bytes, past the ${maxBytes} it may have` : bytes;
    case Marker.Compressed:
      try {
        return codec(algorithm).decompress(bytes, maxBytes);
      } catch (error) {
        const code = (error as { code?: unknown }).code;
        return code === "ERR_BUFFER_TOO_LARGE"
          ? `inflates past the ${maxBytes} bytes it may have (a decompression bomb)`
          : `does not decompress with ${algorithm}: ${String(error)}`;
      }
    default:
      return `has compression marker ${String(marked[0])}; this @stream/core knows 0 (raw) and 1 (compressed)`;
  }
}
