import { randomBytes } from "node:crypto";
import { createReadStream } from "node:fs";
import { readdir, rename, rm, stat, truncate } from "node:fs/promises";
import { join } from "node:path";

/**
 * `saveTo` writes into a hidden partial file, `.<name>.<streamId>.<8 hex>.partial`, and gives it
 * its final name once verified. The stream id in the name is what lets another receiver find a
 * dead receiver's partial file of a stream it takes over; the random part keeps two receivers of
 * one stream apart. Files of the form before takeover (`.<name>.<8 hex>.partial`) are only
 * swept.
 */
const PARTIAL = /^\..*\.([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})\.[0-9a-f]{8}\.partial$/;
const OLD_PARTIAL = /^\..*\.[0-9a-f]{8}\.partial$/;

/** Bytes the stream id and the random part add to a partial file's name, besides the file name. */
export const PARTIAL_SUFFIX_BYTES = 1 + 36 + 1 + 8 + ".partial".length;

/** A live partial file's modification time is refreshed this often, so no sweep takes it for dead. */
export const PARTIAL_TOUCH_MS = 30_000;

/**
 * Partial files of other receivers older than this are removed by `saveTo` (see
 * `ReceiveOptions.partialTtlMs`): by then their sender has given up (its `idleTimeoutMs`, 120 s
 * by default, without a receiver), so nobody can take them over.
 */
export const DEFAULT_PARTIAL_TTL_MS = 10 * 60_000;

/** @internal The name of a new partial file for `fileName` (already cut to fit) of stream `streamId`. */
export function partialName(fileName: string, streamId: string): string {
  return `.${fileName}.${streamId}.${randomBytes(4).toString("hex")}.partial`;
}

/** @internal The partial files of `streamId` in `folder`, largest first. */
export async function findPartials(folder: string, streamId: string): Promise<Array<{ path: string; sizeBytes: number }>> {
  let names: string[];
  try {
    names = await readdir(folder);
  } catch {
    return [];
  }
  const found: Array<{ path: string; sizeBytes: number }> = [];
  for (const name of names) {
    if (PARTIAL.exec(name)?.[1] !== streamId) continue;
    const path = join(folder, name);
    const stats = await stat(path).catch(() => undefined);
    if (stats?.isFile()) found.push({ path, sizeBytes: stats.size });
  }
  return found.sort((a, b) => b.sizeBytes - a.sizeBytes);
}

/**
 * @internal Takes over the largest partial file of `streamId` in `folder` as `temporary` (a rename:
 * of two receivers racing for it, one wins), cut to whole chunks; other partial files of the
 * stream go. Returns the bytes kept, or `undefined` when there was none to claim.
 */
export async function claimPartial(
  folder: string,
  streamId: string,
  temporary: string,
  chunkBytes: number,
  sizeBytes: number | undefined,
): Promise<number | undefined> {
  let kept: number | undefined;
  for (const partial of await findPartials(folder, streamId)) {
    if (kept !== undefined) {
      await rm(partial.path, { force: true });
      continue;
    }
    if (partial.path !== temporary) {
      try {
        await rename(partial.path, temporary);
      } catch {
        continue; // another receiver claimed it first
      }
    }
    kept = Math.floor(Math.min(partial.sizeBytes, sizeBytes ?? Number.POSITIVE_INFINITY) / chunkBytes) * chunkBytes;
    await truncate(temporary, kept);
  }
  return kept;
}

/** @internal Removes every partial file of `streamId` in `folder` (`takeover: "restart"`). */
export async function removePartials(folder: string, streamId: string): Promise<void> {
  for (const { path } of await findPartials(folder, streamId)) await rm(path, { force: true });
}

/** @internal The first `bytes` of the file at `path`, in 1 MiB pieces. */
export function readPrefix(path: string, bytes: number): AsyncIterable<Uint8Array> {
  return createReadStream(path, { start: 0, end: bytes - 1, highWaterMark: 1024 * 1024 });
}

/** Folders swept lately, and when: a sweep costs a directory listing, so one a minute at most. */
const swept = new Map<string, number>();
const SWEEP_EVERY_MS = 60_000;

/**
 * @internal Removes partial files in `folder` not modified for `ttlMs`, except `keep`: left by a
 * receiver that died, whose sender has given up by now. A live one is touched every
 * {@link PARTIAL_TOUCH_MS}, so it never looks that old. `journaled` names more to keep (partial
 * files a journal may resume; they go when their entry expires), asked for only when a sweep runs.
 * At most once a minute per folder; never throws.
 */
export async function sweepPartials(
  folder: string,
  ttlMs: number,
  keep: string,
  { now = Date.now(), journaled }: { now?: number; journaled?: (() => Promise<Iterable<string>>) | undefined } = {},
): Promise<string[]> {
  if (!Number.isFinite(ttlMs)) return [];
  const last = swept.get(folder);
  if (last !== undefined && now - last < Math.min(SWEEP_EVERY_MS, ttlMs)) return [];
  swept.set(folder, now);
  if (swept.size > 1024) swept.delete(swept.keys().next().value as string);
  const spared = journaled ? [keep, ...(await journaled().catch(() => []))] : keep;
  return (await sweepPartialFiles(folder, { olderThanMs: ttlMs, keep: spared, now })).removed;
}

/** What {@link sweepPartialFiles} found. */
export interface PartialFilesSwept {
  /** Partial files removed: untouched for `olderThanMs`, so their receiver and sender are gone. */
  readonly removed: string[];
  /** Partial files kept: recent enough that their stream may still be taken over and continued. */
  readonly kept: string[];
}

/**
 * Looks for the hidden partial files (`.<name>.<streamId>.<hex>.partial`) that receivers which
 * died left in `folder`, and removes those untouched for `olderThanMs` (by then their sender has
 * given up, so nobody can take them over); younger ones are kept for a takeover to continue. What
 * a receiving application calls on start (`stream receive` does). A folder that cannot be listed
 * has nothing swept.
 */
export async function sweepPartialFiles(
  folder: string,
  { olderThanMs = DEFAULT_PARTIAL_TTL_MS, keep, now = Date.now() }: { olderThanMs?: number; keep?: string | Iterable<string> | undefined; now?: number } = {},
): Promise<PartialFilesSwept> {
  const removed: string[] = [];
  const kept: string[] = [];
  const spared = new Set(typeof keep === "string" ? [keep] : (keep ?? []));
  try {
    for (const name of await readdir(folder)) {
      if (!PARTIAL.test(name) && !OLD_PARTIAL.test(name)) continue;
      const path = join(folder, name);
      if (spared.has(path)) continue;
      const stats = await stat(path).catch(() => undefined);
      if (!stats?.isFile()) continue;
      if (now - stats.mtimeMs < olderThanMs) {
        kept.push(path);
        continue;
      }
      await rm(path, { force: true });
      removed.push(path);
    }
  } catch {
    // A sweep is housekeeping: a folder it cannot list is saveTo's business, not its.
  }
  return { removed, kept };
}
