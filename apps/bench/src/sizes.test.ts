import { describe, expect, it } from "vitest";
import { formatSize, GiB, KiB, MiB, parseSize, parseSizeList } from "./sizes";

describe("parseSize", () => {
  it.each([
    ["64KiB", 64 * KiB],
    ["256 KiB", 256 * KiB],
    ["1MiB", MiB],
    ["1mb", MiB],
    ["1.5GiB", 1.5 * GiB],
    ["10GiB", 10 * GiB],
    ["4096", 4096],
    ["512B", 512],
  ])("reads %s", (text, bytes) => {
    expect(parseSize(text)).toBe(bytes);
  });

  it.each(["", "KiB", "-1MiB", "1 TiB", "0", "one MiB"])("refuses %j with a hint", (text) => {
    expect(() => parseSize(text)).toThrow(/\[stream\] \[bench\]/);
  });
});

describe("parseSizeList", () => {
  it("keeps order and the max keyword", () => {
    expect(parseSizeList("64KiB, 1MiB,max")).toEqual([64 * KiB, MiB, "max"]);
  });

  it("refuses an empty list", () => {
    expect(() => parseSizeList(" , ")).toThrow(/empty/);
  });
});

describe("formatSize", () => {
  it.each([
    [64 * KiB, "64 KiB"],
    [MiB, "1 MiB"],
    [8 * MiB, "8 MiB"],
    [1.5 * GiB, "1.5 GiB"],
    [16 * MiB, "16 MiB"],
    [100, "100 B"],
  ])("formats %d as %s", (bytes, text) => {
    expect(formatSize(bytes)).toBe(text);
  });

  it("round-trips what parseSize reads", () => {
    for (const text of ["64 KiB", "256 KiB", "1 MiB", "4 GiB"]) expect(formatSize(parseSize(text))).toBe(text);
  });
});
