import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { RAW_HEADER_BYTES, readRawHeader, writeRawHeader } from "./raw-header";
import { RawSink } from "./raw-sink";

function message(sequence: number, chunkCount: number, payload: string): Buffer {
  const body = Buffer.alloc(RAW_HEADER_BYTES + payload.length);
  body.write(payload, RAW_HEADER_BYTES);
  writeRawHeader(body, { sequence, chunkCount, payloadBytes: payload.length });
  return body;
}

describe("raw header", () => {
  it("round-trips and refuses a message without one", () => {
    expect(readRawHeader(message(7, 9, "abc"))).toEqual({ sequence: 7, chunkCount: 9, payloadBytes: 3 });
    expect(() => readRawHeader(Buffer.from("not a bench message"))).toThrow(/no bench header/);
  });
});

describe("RawSink", () => {
  let dir: string | undefined;
  afterEach(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it("appends in arrival order and counts lost and duplicated chunks by sequence", async () => {
    dir = await mkdtemp(join(tmpdir(), "raw-sink-"));
    const file = join(dir, "out");
    const sink = new RawSink(file, 12, 4); // 3 chunks of 4 bytes
    await sink.accept(message(0, 3, "aaaa"));
    await sink.accept(message(2, 3, "cccc"));
    await sink.accept(message(2, 3, "cccc"));
    await sink.close();
    expect(sink).toMatchObject({ uniqueChunks: 2, uniqueBytes: 8, duplicated: 1, lost: 1 });
    expect(await readFile(file, "utf8")).toBe("aaaaccccccc".padEnd(12, "c"));
  });

  it("completes once every chunk has been written", async () => {
    dir = await mkdtemp(join(tmpdir(), "raw-sink-"));
    const sink = new RawSink(join(dir, "out"), 5, 4);
    const acked: number[] = [];
    sink.accept(message(1, 2, "e"), () => acked.push(1));
    sink.accept(message(0, 2, "abcd"), () => acked.push(0));
    await sink.completed;
    expect(acked).toEqual([1, 0]);
    expect(sink.lost).toBe(0);
    await sink.close();
  });
});
