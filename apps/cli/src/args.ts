import { type ParseArgsConfig, parseArgs } from "node:util";
import { MAX_DESTINATION_CHARS, isDestinationName } from "@stream/core";
import { UsageError } from "./cli-errors";

const SIZE_UNITS: Readonly<Record<string, number>> = {
  "": 1,
  b: 1,
  k: 1024,
  kb: 1000,
  kib: 1024,
  m: 1024 ** 2,
  mb: 1000 ** 2,
  mib: 1024 ** 2,
  g: 1024 ** 3,
  gb: 1000 ** 3,
  gib: 1024 ** 3,
  t: 1024 ** 4,
  tb: 1000 ** 4,
  tib: 1024 ** 4,
};

/**
 * Parses a byte size: `1048576`, `256KiB`, `1.5 MiB`, `2GB` (KiB/MiB/GiB and bare K/M/G are
 * powers of 1024; KB/MB/GB powers of 1000).
 */
export function parseSize(text: string, option: string): number {
  const match = /^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$/i.exec(text);
  const factor = match ? SIZE_UNITS[(match[2] as string).toLowerCase()] : undefined;
  if (!match || factor === undefined) {
    throw new UsageError(`${option} "${text}" is not a size`, `give bytes, or a number with KiB, MiB, GiB (e.g. ${option} 256MiB)`);
  }
  const bytes = Math.round(Number(match[1]) * factor);
  if (!Number.isSafeInteger(bytes) || bytes < 1) throw new UsageError(`${option} ${text} must be at least 1 byte`);
  return bytes;
}

/** Parses a positive whole number. */
export function parseCount(text: string, option: string): number {
  const value = Number(text);
  if (!/^\s*\d+\s*$/.test(text) || !Number.isSafeInteger(value) || value < 1) {
    throw new UsageError(`${option} "${text}" must be a whole number of 1 or more`);
  }
  return value;
}

/** Parses a positive number of seconds (fractions allowed) into milliseconds. */
export function parseSeconds(text: string, option: string): number {
  const value = Number(text);
  if (!/^\s*\d+(\.\d+)?\s*$/.test(text) || !(value > 0)) throw new UsageError(`${option} "${text}" must be a number of seconds above 0`);
  return Math.round(value * 1000);
}

const DURATION_UNITS_MS: Readonly<Record<string, number>> = { "": 1000, ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** Parses a positive duration into milliseconds: `90` or `90s` (seconds), `500ms`, `15m`, `1.5h`, `7d`. */
export function parseDuration(text: string, option: string): number {
  const match = /^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$/i.exec(text);
  const factor = match ? DURATION_UNITS_MS[(match[2] as string).toLowerCase()] : undefined;
  const ms = match && factor !== undefined ? Math.round(Number(match[1]) * factor) : Number.NaN;
  if (!Number.isSafeInteger(ms) || ms < 1) {
    throw new UsageError(`${option} "${text}" is not a duration`, `give seconds, or a number with ms, s, m, h or d (e.g. ${option} 15m)`);
  }
  return ms;
}

/** Checks `--dest` before connecting, with a message that says what is allowed. */
export function checkDestination(destination: string | undefined): string {
  if (destination === undefined) throw new UsageError("--dest <name> is required", "name the queue / topic, e.g. --dest files");
  // What core accepts as a destination (`send` would refuse anything else, after connecting).
  if (!isDestinationName(destination)) {
    throw new UsageError(
      `--dest "${destination}" is not a valid destination name`,
      `use 1-${MAX_DESTINATION_CHARS} characters of A-Z a-z 0-9 . _ -`,
    );
  }
  return destination;
}

/** `parseArgs`, strict, with its errors turned into usage errors that point at the command's help. */
export function parseCommandArgs<T extends NonNullable<ParseArgsConfig["options"]>>(
  command: string,
  args: string[],
  options: T,
  allowPositionals: boolean,
) {
  try {
    return parseArgs({ args, options, allowPositionals, strict: true });
  } catch (error) {
    const message = error instanceof Error ? error.message.replace(/\. To specify a positional argument.*$/s, "") : String(error);
    throw new UsageError(message, `run \`stream ${command} --help\` for its options`);
  }
}
