/** The bounds {@link integerOptions} checks, inclusive. */
export interface IntegerRange {
  /** @default 1 */
  readonly min?: number;
  /** @default Number.MAX_SAFE_INTEGER */
  readonly max?: number;
}

/**
 * A checker for an adapter's count, size and duration options (all whole numbers: frames, bytes,
 * milliseconds), so that a bad value fails at creation with a `RangeError` that names the option,
 * not later on the network.
 *
 * @param adapterName the transport's `name`, for the `[stream] [<adapterName>]` prefix.
 * @returns `check(name, value, range?)`: `value` when it is an integer within `range` (1 and up
 *   by default), else throws a `RangeError`.
 *
 * @example
 * const integer = integerOptions("kafka");
 * const numPartitions = integer("numPartitions", options.numPartitions ?? 4);
 * const delayMs = integer("redeliveryDelayMs", options.redeliveryDelayMs ?? 100, { min: 0 });
 */
export function integerOptions(adapterName: string): (name: string, value: number, range?: IntegerRange) => number {
  return (name, value, { min = 1, max = Number.MAX_SAFE_INTEGER } = {}) => {
    if (Number.isSafeInteger(value) && value >= min && value <= max) return value;
    const wanted = max === Number.MAX_SAFE_INTEGER ? `an integer of ${min} or more` : `an integer from ${min} to ${max}`;
    throw new RangeError(`[stream] [${adapterName}] ${name} must be ${wanted}, got ${value}`);
  };
}
