/**
 * A set of non-negative integers kept as sorted, merged, half-open ranges `[start, end)`.
 *
 * The receiver records which chunk sequences it has seen here: a stream delivered in order is a
 * single range whatever its length, so duplicates are dropped with memory that grows with the
 * number of gaps, never with the number of chunks.
 */
export class RangeSet {
  private readonly ranges: Array<[start: number, end: number]> = [];

  /** Adds `value`; returns false when it was already present (a duplicate). */
  add(value: number): boolean {
    const { ranges } = this;
    let low = 0;
    let high = ranges.length;
    while (low < high) {
      const mid = (low + high) >>> 1;
      if ((ranges[mid] as [number, number])[1] < value) low = mid + 1;
      else high = mid;
    }
    // ranges[low] is the first range whose end >= value.
    const next = ranges[low];
    if (next && next[0] <= value && value < next[1]) return false;
    if (next && next[1] === value) {
      next[1] = value + 1;
      const after = ranges[low + 1];
      if (after && after[0] === next[1]) {
        next[1] = after[1];
        ranges.splice(low + 1, 1);
      }
      return true;
    }
    if (next && next[0] === value + 1) {
      next[0] = value;
      return true;
    }
    ranges.splice(low, 0, [value, value + 1]);
    return true;
  }

  /**
   * Adds every integer in `[start, end)`, e.g. the chunks a receiver took over from a partial
   * file, in one range whatever its length.
   */
  addRange(start: number, end: number): void {
    if (end <= start) return;
    const { ranges } = this;
    const kept: Array<[number, number]> = [];
    let merged: [number, number] = [start, end];
    for (const range of ranges) {
      if (range[1] < merged[0] || range[0] > merged[1]) kept.push(range);
      else merged = [Math.min(range[0], merged[0]), Math.max(range[1], merged[1])];
    }
    kept.push(merged);
    kept.sort((a, b) => a[0] - b[0]);
    ranges.splice(0, ranges.length, ...kept);
  }

  /** Whether `value` is in the set. */
  has(value: number): boolean {
    for (const [start, end] of this.ranges) {
      if (value < start) return false;
      if (value < end) return true;
    }
    return false;
  }

  /** The smallest integer not in the set: everything below it has been seen. */
  get contiguousEnd(): number {
    const first = this.ranges[0];
    return first && first[0] === 0 ? first[1] : 0;
  }

  /** How many ranges the set holds: a measure of its memory. */
  get rangeCount(): number {
    return this.ranges.length;
  }

  /** The ranges, for persisting a receiver's state. */
  toJSON(): Array<[number, number]> {
    return this.ranges.map(([start, end]) => [start, end]);
  }
}
