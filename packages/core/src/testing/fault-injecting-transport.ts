import { DATA_HEADER_BYTES, readFrameType } from "../protocol/frame-codec";
import { FrameType } from "../protocol/frames";
import type { PublishOptions, Transport } from "../transport";

/** Faults to inject into what a transport publishes. Rates are probabilities per data frame. */
export interface FaultOptions {
  /** Seed of the pseudo-random choices, for a reproducible run. @default 1 */
  readonly seed?: number;
  /** Publish a data frame twice. */
  readonly duplicateRate?: number;
  /** Swap a data frame with the one published after it. */
  readonly reorderRate?: number;
  /** Drop a data frame (publish reports success anyway, as a lossy broker would). */
  readonly lossRate?: number;
  /** Flip a payload byte of the data frames whose sequence this returns true for. */
  readonly corrupt?: (sequence: number) => boolean;
  /** Delay every publish by this much. */
  readonly delayMs?: number;
}

/** A pseudo-random generator (mulberry32): the same seed gives the same faults. */
function random(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const isDataFrame = (frame: Uint8Array): boolean => frame.byteLength >= DATA_HEADER_BYTES && readFrameType(frame) === FrameType.Data;
const sequenceOf = (frame: Uint8Array): number => new DataView(frame.buffer, frame.byteOffset).getUint32(20);

/**
 * Wraps any transport (in-memory or a real broker's) so that what it publishes arrives
 * duplicated, reordered, lost, corrupted or late. The conformance suite uses it to prove core
 * survives what brokers do on a bad day. Only data frames are touched.
 */
export function withFaults(transport: Transport, faults: FaultOptions): Transport {
  const next = random(faults.seed ?? 1);
  const held = new Map<string, { frame: Uint8Array; options: PublishOptions; timer: NodeJS.Timeout }>();
  const send = (channel: string, frame: Uint8Array, options: PublishOptions) => transport.publish(channel, frame, options);
  const release = (channel: string): Promise<void> | undefined => {
    const waiting = held.get(channel);
    if (!waiting) return undefined;
    held.delete(channel);
    clearTimeout(waiting.timer);
    return send(channel, waiting.frame, waiting.options);
  };
  return {
    specificationVersion: transport.specificationVersion,
    name: transport.name,
    // A getter on the adapter's class: read through, never copied (a copy would freeze it).
    get connection() {
      return transport.connection;
    },
    capabilities: {
      ...transport.capabilities,
      redelivery: transport.capabilities.redelivery && !faults.lossRate,
    },
    async publish(channel, frame, options) {
      if (faults.delayMs) await new Promise((resolve) => setTimeout(resolve, faults.delayMs));
      if (!isDataFrame(frame)) {
        await release(channel);
        return send(channel, frame, options);
      }
      let bytes = frame;
      if (faults.corrupt?.(sequenceOf(frame))) {
        bytes = new Uint8Array(frame); // a copy: Buffer#slice would share the sender's bytes
        const at = DATA_HEADER_BYTES + Math.floor(next() * (bytes.byteLength - DATA_HEADER_BYTES));
        bytes[at] = (bytes[at] as number) ^ 0xff;
      }
      if (faults.lossRate && next() < faults.lossRate) return undefined;
      if (faults.reorderRate && !held.has(channel) && next() < faults.reorderRate) {
        const timer = setTimeout(() => void release(channel)?.catch(() => {}), 20);
        // Held past this publish's resolution, when the sender may reuse the buffer: keep a copy.
        held.set(channel, { frame: bytes === frame ? new Uint8Array(frame) : bytes, options, timer });
        return undefined;
      }
      await send(channel, bytes, options);
      await release(channel);
      if (faults.duplicateRate && next() < faults.duplicateRate) await send(channel, bytes, options);
      return undefined;
    },
    subscribe: (channel, handler, options) => transport.subscribe(channel, handler, options),
    close: () => transport.close(),
  };
}
