import { describe, expect, test } from "vitest";
import { resolveFlow } from "./flow-options";
import type { TransportCapabilities } from "./transport";

const capabilities = (maxFrameBytes: number): TransportCapabilities => ({
  maxFrameBytes,
  ordering: "per-key",
  redelivery: true,
  retention: "until-consumed",
  exclusiveConsumer: true,
  brokerAcks: true,
});
const MiB = 1024 * 1024;

describe("resolveFlow", () => {
  test.each([
    [64 * 1024, 256, 16 * MiB],
    [MiB, 16, 16 * MiB],
    [8 * MiB, 4, 32 * MiB],
  ])("chunks of %i bytes keep 16 MiB (at least 4 chunks) in flight: %i chunks, %i bytes", (chunkBytes, windowChunks, windowBytes) => {
    expect(resolveFlow(capabilities(100 * MiB), { chunkBytes })).toEqual({ chunkBytes, windowChunks, windowBytes });
  });

  test("the chunk size defaults to the largest 4 KiB multiple that fits the broker's frame, at most 1 MiB", () => {
    expect(resolveFlow(capabilities(1_000_000)).chunkBytes).toBe(999_424);
    expect(resolveFlow(capabilities(100 * MiB)).chunkBytes).toBe(MiB);
  });

  test("an explicit window in chunks sets the bytes too, and the reverse", () => {
    expect(resolveFlow(capabilities(100 * MiB), { chunkBytes: 1000, windowChunks: 3 })).toEqual({ chunkBytes: 1000, windowChunks: 3, windowBytes: 3000 });
    expect(resolveFlow(capabilities(100 * MiB), { chunkBytes: 1000, windowBytes: 10_000 })).toEqual({ chunkBytes: 1000, windowChunks: 10, windowBytes: 10_000 });
  });

  test("a chunk that does not fit the broker is refused with what would", () => {
    expect(() => resolveFlow(capabilities(1000), { chunkBytes: 2000 })).toThrow(/chunks of 1 to 960 bytes/);
  });
});
