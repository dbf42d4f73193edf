import { createHash, randomBytes } from "node:crypto";
import { describe, expect, test } from "vitest";
import { createStreamClient } from "./client";
import { FrameType } from "./protocol/frames";
import { createMemoryTransport, MemoryBroker } from "./testing/memory-transport";
import type { Transport } from "./transport";

const sha256 = (bytes: Uint8Array) => createHash("sha256").update(bytes).digest("hex");
const lossy = { retention: "none", redelivery: false } as const;

/** Drops, once each, the frames `drop` picks: a lossy broker on a bad day. */
function dropping(transport: Transport, drop: (type: number, sequence: number) => boolean): Transport {
  const dropped = new Set<string>();
  return {
    ...transport,
    async publish(channel, frame, options) {
      const type = frame[3] as number;
      const sequence = type === FrameType.Data ? new DataView(frame.buffer, frame.byteOffset).getUint32(20) : -1;
      const key = `${type}:${sequence}`;
      if (drop(type, sequence) && !dropped.has(key)) {
        dropped.add(key);
        return;
      }
      return transport.publish(channel, frame, options);
    },
  };
}

describe("sender on a lossy transport", () => {
  test.each([
    ["the last chunk and the end frame", (type: number, sequence: number) => type === FrameType.End || (type === FrameType.Data && sequence === 5)],
    ["the open frame", (type: number) => type === FrameType.Open],
    ["every chunk once", (type: number) => type === FrameType.Data],
  ])("loses %s once, and still delivers byte-exact", async (_, drop) => {
    const broker = new MemoryBroker();
    const sender = createStreamClient({ transport: dropping(createMemoryTransport({ broker, capabilities: lossy }), drop), retry: false });
    const receiver = createStreamClient({ transport: createMemoryTransport({ broker, capabilities: lossy }) });
    const streams = receiver.receive("lossy");
    await streams.ready;
    const data = randomBytes(6 * 64 * 1024 - 100);
    const received = (async () => {
      for await (const stream of streams) {
        const parts: Buffer[] = [];
        for await (const part of stream) parts.push(part as Buffer);
        return Buffer.concat(parts);
      }
      throw new Error("closed");
    })();
    const sent = await sender.send(data, { destination: "lossy", chunkBytes: 64 * 1024, retransmitAfterMs: 300 });
    expect(sha256(await received)).toBe(sha256(data));
    expect(sent.sha256).toBe(sha256(data));
    await Promise.all([sender.close(), receiver.close()]);
  }, 20_000);
});
