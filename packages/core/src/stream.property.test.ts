import { createHash } from "node:crypto";
import fc from "fast-check";
import { describe, expect, test } from "vitest";
import { createStreamClient } from "./client";
import { createMemoryTransport, MemoryBroker } from "./testing/memory-transport";
import { withFaults } from "./testing/fault-injecting-transport";

const sha256 = (bytes: Uint8Array) => createHash("sha256").update(bytes).digest("hex");

describe("property: what arrives is what was sent", () => {
  test("for random payloads, chunk sizes, windows, and any duplication and reordering within the window", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.uint8Array({ maxLength: 96 * 1024, size: "large" }),
        fc.integer({ min: 1, max: 16 * 1024 }),
        fc.integer({ min: 1, max: 12 }),
        fc.double({ min: 0, max: 0.5, noNaN: true }),
        fc.double({ min: 0, max: 0.5, noNaN: true }),
        fc.integer({ min: 1, max: 2 ** 31 }),
        fc.array(fc.integer({ min: 1, max: 4096 }), { minLength: 1, maxLength: 8 }),
        async (payload, chunkBytes, windowChunks, duplicateRate, reorderRate, seed, pieceSizes) => {
          const broker = new MemoryBroker();
          const sender = createStreamClient({
            transport: withFaults(createMemoryTransport({ broker }), { seed, duplicateRate, reorderRate }),
          });
          const receiver = createStreamClient({ transport: createMemoryTransport({ broker }) });
          try {
            const streams = receiver.receive("property");
            await streams.ready;
            // The source arrives in pieces of arbitrary sizes, as a network or pipe would give them.
            const pieces: Uint8Array[] = [];
            for (let at = 0, i = 0; at < payload.byteLength; i++) {
              const size = pieceSizes[i % pieceSizes.length] as number;
              pieces.push(payload.subarray(at, at + size));
              at += size;
            }
            const received = (async () => {
              for await (const stream of streams) {
                const parts: Buffer[] = [];
                for await (const part of stream) parts.push(part as Buffer);
                return Buffer.concat(parts);
              }
              throw new Error("no stream");
            })();
            const result = await sender.send(pieces, { destination: "property", chunkBytes, windowChunks });
            const bytes = await received;
            expect(bytes.byteLength).toBe(payload.byteLength);
            expect(sha256(bytes)).toBe(sha256(payload));
            expect(result.sha256).toBe(sha256(payload));
            expect(result.chunkCount).toBe(Math.ceil(payload.byteLength / chunkBytes));
          } finally {
            await Promise.all([sender.close(), receiver.close()]);
          }
        },
      ),
      { numRuns: 100 },
    );
  }, 120_000);
});
