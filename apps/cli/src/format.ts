/** Human-readable sizes, rates and durations for progress lines and summaries. */

const UNITS = ["B", "KiB", "MiB", "GiB", "TiB"] as const;

/** `1536` → `"1.5 KiB"`. Binary units, as file sizes are usually shown. */
export function formatBytes(bytes: number): string {
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < UNITS.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return unit === 0 ? `${value} B` : `${value.toFixed(value < 10 ? 2 : 1)} ${UNITS[unit]}`;
}

/** Megabytes (10^6 bytes) per second, as network rates are usually given. */
export function megabytesPerSecond(bytes: number, seconds: number): number {
  return seconds > 0 ? bytes / 1e6 / seconds : 0;
}

/** `12_500_000` bytes/s → `"12.5 MB/s"`. */
export function formatRate(bytesPerSecond: number): string {
  return `${(bytesPerSecond / 1e6).toFixed(1)} MB/s`;
}

/** `75` → `"1m15s"`; `undefined` (unknown) → `"--"`. */
export function formatDuration(seconds: number | undefined): string {
  if (seconds === undefined || !Number.isFinite(seconds)) return "--";
  const whole = Math.max(0, Math.round(seconds));
  if (whole < 60) return `${whole}s`;
  const minutes = Math.floor(whole / 60);
  if (minutes < 60) return `${minutes}m${String(whole % 60).padStart(2, "0")}s`;
  return `${Math.floor(minutes / 60)}h${String(minutes % 60).padStart(2, "0")}m`;
}

/**
 * A name from the wire made fit for a terminal: control characters (escape sequences that could
 * rewrite the screen or the title) and invisible format characters are shown as `\u{..}`.
 */
export function printable(text: string): string {
  return text.replace(/[\u0000-\u001f\u007f-\u009f\u200b-\u200f\u202a-\u202e\u2066-\u2069\ufeff]/g, (c) => `\\u{${c.codePointAt(0)?.toString(16)}}`);
}
