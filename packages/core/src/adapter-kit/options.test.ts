import { describe, expect, test } from "vitest";
import { integerOptions } from "./options";

describe("integerOptions", () => {
  const integer = integerOptions("fake");

  test("returns an integer within the range: 1 and up by default", () => {
    expect(integer("prefetchCount", 16)).toBe(16);
    expect(integer("delayMs", 0, { min: 0 })).toBe(0);
    expect(integer("qosFrames", 65_535, { max: 65_535 })).toBe(65_535);
  });

  test("throws a RangeError naming the adapter, the option and the value", () => {
    expect(() => integer("prefetchCount", 0)).toThrow(new RangeError("[stream] [fake] prefetchCount must be an integer of 1 or more, got 0"));
    expect(() => integer("delayMs", -1, { min: 0 })).toThrow(/delayMs must be an integer of 0 or more, got -1/);
    expect(() => integer("frames", 70_000, { max: 65_535 })).toThrow(/frames must be an integer from 1 to 65535, got 70000/);
    for (const bad of [1.5, Number.NaN, Number.POSITIVE_INFINITY]) expect(() => integer("n", bad)).toThrow(RangeError);
  });
});
