/** Byte counts as people write them: `64KiB`, `1 MiB`, `1.5GiB`, `4096`. */

export const KiB = 1024;
export const MiB = 1024 * KiB;
export const GiB = 1024 * MiB;

const UNITS: Readonly<Record<string, number>> = { b: 1, kib: KiB, k: KiB, kb: KiB, mib: MiB, m: MiB, mb: MiB, gib: GiB, g: GiB, gb: GiB };

/**
 * Parses a size such as `256KiB`, `1 MiB` or `1.5GiB` into bytes. Units are binary whatever their
 * spelling (`MB` is read as MiB: a chunk or file size is always meant in powers of two here).
 */
export function parseSize(text: string): number {
  const match = /^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$/i.exec(text);
  const unit = match ? UNITS[(match[2] || "b").toLowerCase()] : undefined;
  if (!match || unit === undefined) {
    throw new RangeError(`[stream] [bench] "${text}" is not a size; write e.g. 64KiB, 1MiB or 1GiB`);
  }
  const bytes = Math.round(Number(match[1]) * unit);
  if (!Number.isSafeInteger(bytes) || bytes < 1) throw new RangeError(`[stream] [bench] "${text}" must be at least 1 byte`);
  return bytes;
}

/** Parses a comma-separated list of sizes; `max` stands for each broker's practical maximum and is kept as is. */
export function parseSizeList(text: string): Array<number | "max"> {
  const items = text.split(",").map((item) => item.trim()).filter(Boolean);
  if (items.length === 0) throw new RangeError("[stream] [bench] the list of chunk sizes is empty; write e.g. 64KiB,1MiB");
  return items.map((item) => (item.toLowerCase() === "max" ? "max" : parseSize(item)));
}

/** Formats bytes with the largest binary unit that keeps it whole, or one decimal: `64 KiB`, `1 MiB`, `1.5 GiB`. */
export function formatSize(bytes: number): string {
  for (const [unit, size] of [["GiB", GiB], ["MiB", MiB], ["KiB", KiB]] as const) {
    if (bytes >= size) {
      const value = bytes / size;
      return `${Number.isInteger(value) ? value : value.toFixed(1)} ${unit}`;
    }
  }
  return `${bytes} B`;
}
