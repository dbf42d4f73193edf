import { DATA_HEADER_BYTES } from "./protocol/frame-codec";
import type { TransportCapabilities } from "./transport";

/** Tuning shared by senders and receivers; every field has a default chosen from the transport. */
export interface FlowOptions {
  /**
   * Payload bytes per data frame. Larger chunks mean fewer messages and more throughput, up to
   * the broker's limit.
   * @default the largest multiple of 4 KiB that fits `capabilities.maxFrameBytes`, at most 1 MiB
   */
  readonly chunkBytes?: number;
  /**
   * Most chunks in flight (sent, not yet acknowledged by the receiver) per stream: the memory a
   * sender holds and the burst a broker must absorb.
   * @default 16
   */
  readonly windowChunks?: number;
  /**
   * Most payload bytes in flight per stream.
   * @default min(16 MiB, windowChunks × chunkBytes)
   */
  readonly windowBytes?: number;
}

/** {@link FlowOptions} with every default applied. */
export interface ResolvedFlow {
  readonly chunkBytes: number;
  readonly windowChunks: number;
  readonly windowBytes: number;
}

const MiB = 1024 * 1024;

/** Applies the defaults of {@link FlowOptions} for a transport with these capabilities. */
export function resolveFlow(capabilities: TransportCapabilities, options: FlowOptions = {}): ResolvedFlow {
  const fits = capabilities.maxFrameBytes - DATA_HEADER_BYTES;
  if (fits < 1) {
    throw new RangeError(`[stream] transport maxFrameBytes ${capabilities.maxFrameBytes} leaves no room for a chunk`);
  }
  const chunkBytes = options.chunkBytes ?? Math.max(Math.min(MiB, Math.floor(fits / 4096) * 4096), Math.min(fits, 4096));
  if (!Number.isSafeInteger(chunkBytes) || chunkBytes < 1 || chunkBytes > fits) {
    throw new RangeError(
      `[stream] chunkBytes ${chunkBytes} does not fit: this transport carries frames of at most ` +
        `${capabilities.maxFrameBytes} bytes, so chunks of 1 to ${fits} bytes. Lower chunkBytes or raise the broker limit.`,
    );
  }
  const windowChunks = options.windowChunks ?? 16;
  if (!Number.isSafeInteger(windowChunks) || windowChunks < 1) throw new RangeError("[stream] windowChunks must be a positive integer");
  const windowBytes = options.windowBytes ?? Math.min(16 * MiB, windowChunks * chunkBytes);
  if (!Number.isSafeInteger(windowBytes) || windowBytes < chunkBytes) {
    throw new RangeError(`[stream] windowBytes must be at least one chunk (${chunkBytes} bytes)`);
  }
  return { chunkBytes, windowChunks, windowBytes };
}
