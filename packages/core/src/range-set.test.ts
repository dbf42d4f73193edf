import fc from "fast-check";
import { describe, expect, test } from "vitest";
import { RangeSet } from "./range-set";

describe("RangeSet", () => {
  test("in-order additions stay one range, whatever the count", () => {
    const set = new RangeSet();
    for (let i = 0; i < 100_000; i++) expect(set.add(i)).toBe(true);
    expect(set.rangeCount).toBe(1);
    expect(set.contiguousEnd).toBe(100_000);
  });

  test("a duplicate is reported as such", () => {
    const set = new RangeSet();
    expect(set.add(5)).toBe(true);
    expect(set.add(5)).toBe(false);
    expect(set.has(5)).toBe(true);
    expect(set.has(4)).toBe(false);
    expect(set.contiguousEnd).toBe(0);
  });

  test("behaves like a Set of numbers, and merges gaps as they fill", () => {
    fc.assert(
      fc.property(fc.array(fc.nat({ max: 300 }), { maxLength: 500 }), (values) => {
        const set = new RangeSet();
        const model = new Set<number>();
        for (const value of values) {
          expect(set.add(value)).toBe(!model.has(value));
          model.add(value);
        }
        for (let i = 0; i <= 301; i++) expect(set.has(i)).toBe(model.has(i));
        let end = 0;
        while (model.has(end)) end++;
        expect(set.contiguousEnd).toBe(end);
        const ranges = set.toJSON();
        for (let i = 1; i < ranges.length; i++) expect((ranges[i] as number[])[0]).toBeGreaterThan((ranges[i - 1] as number[])[1] as number);
      }),
    );
  });
});
