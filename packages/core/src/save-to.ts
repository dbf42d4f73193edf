import { type FileHandle, link, mkdir, open, rename, rm, statfs, truncate, utimes } from "node:fs/promises";
import { dirname, join, resolve } from "node:path";
import { type Readable, Writable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { type RetryPolicy, withRetries } from "./backoff";
import { TargetFolderError } from "./errors/target-folder-error";
import type { ReceivePhase } from "./incoming-stream";
import type { TransferStatus } from "./transfer-status";
import { UnsafePathError } from "./errors/unsafe-path-error";
import type { SaveJournal } from "./journaled-receive";
import {
  claimPartial,
  DEFAULT_PARTIAL_TTL_MS,
  PARTIAL_SUFFIX_BYTES,
  PARTIAL_TOUCH_MS,
  partialName,
  readPrefix,
  removePartials,
  sweepPartials,
} from "./partial-files";

/** How far {@link IncomingStream.saveTo} has got. */
export interface SaveProgress {
  /** Verified bytes taken from the stream and handed to the temporary file so far. */
  readonly bytesReceived: number;
}

/** Options of `IncomingStream.saveTo`. */
export interface SaveOptions {
  /** The file name to use instead of the sender's (it is made safe the same way, see {@link safeFileName}). */
  readonly fileName?: string;
  /**
   * Replace a file of the same name. Off by default: the stream is saved as `name (1).ext`,
   * `name (2).ext`, ... (`backup (1).tar.gz`) so nothing is overwritten silently.
   * @default false
   */
  readonly overwrite?: boolean;
  /** Called as bytes arrive, e.g. for a progress bar. */
  readonly onProgress?: (progress: SaveProgress) => void;
  /**
   * Called with the stream's {@link TransferStatus} (bytes, chunks, rate, ETA, phase) every
   * `statusIntervalMs`, at once on each phase change, and a last time when it ends (with
   * `failure` if it failed): a listener of the stream's `'status'` event.
   */
  readonly onStatus?: (status: TransferStatus<ReceivePhase>) => void;
  /** How often, in ms, `'status'` is emitted from now on (see `ReceiveOptions.statusIntervalMs`). @default 1000 */
  readonly statusIntervalMs?: number;
}

/** Where a stream was saved. */
export interface SaveResult {
  /** Absolute path of the saved file. */
  readonly path: string;
  readonly byteCount: number;
  /**
   * Bytes of the file that came from a partial file left by an earlier attempt (a stream taken
   * over with `takeover: "continue"`, or resumed: `resumeSaveTo`, a sender's `resume`); the
   * stream's bytes were written from there on. 0 otherwise.
   */
  readonly startOffset: number;
  /** SHA-256 of the file, lower-case hex, as verified against the sender's. */
  readonly sha256: string;
}

/** Most bytes of a file name on common file systems (ext4, APFS; NTFS counts UTF-16 units, fewer). */
const MAX_NAME_BYTES = 255;
/** Most `name (n).ext` alternatives tried before giving up. */
const MAX_ALTERNATIVES = 10_000;

// C0 and C1 controls: a name must not move a terminal's cursor or colour its output.
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/g;
// Invisible characters that let a name pose as another (`invoice\u202Efdp.exe` shows as
// `invoiceexe.pdf`): soft hyphen, zero-width marks, bidirectional marks, overrides and isolates,
// word joiners, the byte-order mark. Removed, not replaced: they were never meant to be seen.
const INVISIBLE = /[\u00ad\u061c\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff]/g;
// Characters Windows refuses in a name; replaced so a folder synced to Windows still works.
const RESERVED_CHARACTERS = /[<>:"|?*]/g;
// Device names Windows reserves whatever their extension (`nul.txt` is the device too).
const RESERVED_NAMES = /^(con|prn|aux|nul|com[0-9¹²³]|lpt[0-9¹²³])(\..*)?$/i;
// `..`, or what Windows reads as it (trailing dots and spaces are dropped there: `.. `, `...`).
const CLIMBING_SEGMENT = /^\s*\.\.[.\s]*$/;

function utf8Length(text: string): number {
  return Buffer.byteLength(text, "utf8");
}

/** Cuts `text` to at most `maxBytes` of UTF-8 without splitting a character. */
function truncateUtf8(text: string, maxBytes: number): string {
  if (utf8Length(text) <= maxBytes) return text;
  let bytes = 0;
  let end = 0;
  for (const character of text) {
    bytes += utf8Length(character);
    if (bytes > maxBytes) break;
    end += character.length;
  }
  return text.slice(0, end);
}

/**
 * @internal Splits `name` into stem and extension, keeping a compound `.tar.*` extension whole so that
 * copies are `backup (1).tar.gz`, not `backup.tar (1).gz`. A leading dot is part of the stem
 * (`.env` has no extension).
 */
export function splitExtension(name: string): { stem: string; extension: string } {
  const match = /^(.+?)((?:\.tar)?\.[^.\s]{1,16})$/i.exec(name);
  if (!match || /^\.+$/.test(match[1] as string)) return { stem: name, extension: "" };
  return { stem: match[1] as string, extension: match[2] as string };
}

/** `stem + extension`, the stem shortened so the whole fits {@link MAX_NAME_BYTES}. */
function fit(stem: string, extension: string): string {
  const room = MAX_NAME_BYTES - utf8Length(extension);
  if (room < 1) return truncateUtf8(stem + extension, MAX_NAME_BYTES);
  return truncateUtf8(stem, room) + extension;
}

function refuse(name: string, why: string, what: string): never {
  throw new UnsafePathError({
    message: `[stream] the stream name ${JSON.stringify(name)} ${why}; it was refused and nothing was written. ${what}`,
  });
}

/**
 * A sender's name for a stream made safe to use as a file name in a folder of ours:
 * - a plain directory prefix is dropped (`reports/q3.csv` is `q3.csv`, `a\b\c.txt` is `c.txt`);
 * - the name is NFC-normalised; control characters become `_`; invisible characters (zero-width,
 *   bidirectional overrides, the BOM) are removed;
 * - characters Windows forbids (`<>:"|?*`) become `_`, Windows device names get a `_` prefix
 *   (`CON` is `_CON`), leading spaces and trailing dots and spaces go;
 * - it is cut to 255 bytes of UTF-8, never inside a character, keeping its extension (a whole
 *   `.tar.gz`).
 *
 * A name that tries to leave the folder is refused, never rewritten, so the sender hears of it:
 * a `..` segment, an absolute path (`/etc/passwd`, `\\server\share`), a drive (`C:`), a NUL.
 *
 * @throws {UnsafePathError} for such a name, or one with nothing usable left (`""`, `.`, `dir/.`).
 */
export function safeFileName(name: string): string {
  const plainTo = "Ask the sender to send a plain file name, or pass saveTo a fileName.";
  if (name.includes("\u0000")) refuse(name, "contains a NUL character", plainTo);
  const cleaned = name.normalize("NFC").replace(INVISIBLE, "");
  const segments = cleaned.split(/[\\/]/);
  if (/^\s*[\\/]/.test(cleaned)) refuse(name, "is an absolute path, outside the target folder", plainTo);
  if (/^\s*[a-z]:/i.test(cleaned)) refuse(name, "names a drive, outside the target folder", plainTo);
  if (segments.some((segment) => CLIMBING_SEGMENT.test(segment))) refuse(name, "climbs out of the target folder (`..`)", plainTo);
  const base = segments.findLast((segment) => segment.trim() !== "" && segment.trim() !== ".") ?? "";
  let safe = base
    .replace(CONTROL, "_")
    .replace(RESERVED_CHARACTERS, "_")
    .trim()
    .replace(/[. ]+$/, "");
  if (safe === "") refuse(name, "has no part usable as a file name", "Pass saveTo a fileName.");
  if (RESERVED_NAMES.test(safe)) safe = `_${safe}`;
  const { stem, extension } = splitExtension(safe);
  return extension === "" ? fit(stem, "").replace(/[. ]+$/, "") || "_" : fit(stem, extension);
}

/** @internal The `n`th alternative to a taken name: `report (1).pdf`, `backup (2).tar.gz`, ..., within 255 bytes. */
export function numberedName(name: string, n: number): string {
  if (n === 0) return name;
  const { stem, extension } = splitExtension(name);
  const suffix = ` (${n})`;
  return fit(truncateUtf8(stem, MAX_NAME_BYTES - utf8Length(extension) - utf8Length(suffix)) + suffix, extension);
}

function errorCode(error: unknown): unknown {
  return (error as { code?: unknown } | null)?.code;
}

/** Errors of `link` where the file system has no hard links (FAT, exFAT, some network shares). */
const NO_HARD_LINKS = new Set(["EPERM", "ENOTSUP", "EOPNOTSUPP", "ENOSYS", "EMLINK"]);

/**
 * @internal Moves the finished file `temporary` into `folder` under `name`, or `name (1)`, `name (2)`, ...
 * if that is taken: never over an existing file. A hard link claims the name atomically (it
 * fails if the name exists, even against another process racing for it); where the file system
 * has no hard links, an exclusive create claims it and a rename fills it.
 */
export async function commitWithoutOverwrite(temporary: string, folder: string, name: string): Promise<string> {
  for (let n = 0; n < MAX_ALTERNATIVES; n++) {
    const target = checkedPath(folder, numberedName(name, n));
    try {
      await link(temporary, target);
      await rm(temporary, { force: true });
      return target;
    } catch (error) {
      const code = errorCode(error);
      if (code === "EEXIST") continue;
      if (!NO_HARD_LINKS.has(code as string)) throw error;
    }
    try {
      await (await open(target, "wx")).close();
    } catch (error) {
      if (errorCode(error) === "EEXIST") continue;
      throw error;
    }
    await rename(temporary, target);
    return target;
  }
  throw new Error(`[stream] ${name} and ${MAX_ALTERNATIVES - 1} numbered alternatives all exist in ${folder}; clean up the folder`);
}

/** `folder/name`, checked to be directly inside `folder` (a second lock behind {@link safeFileName}). */
function checkedPath(folder: string, name: string): string {
  const path = join(folder, name);
  if (dirname(path) !== folder) throw new UnsafePathError({ message: `[stream] ${path} is not inside ${folder}; nothing was written` });
  return path;
}

/** What each file system error means for the folder, and what the receiver's operator can do. */
const FOLDER_PROBLEMS: Readonly<Record<string, readonly [what: string, todo: string]>> = {
  EACCES: ["permission denied", "Make it writable by this process, or save elsewhere."],
  EPERM: ["operation not permitted", "Make it writable by this process, or save elsewhere."],
  EROFS: ["read-only file system", "Save to a writable file system."],
  ENOSPC: ["no space left on the device", "Free some space, or save elsewhere."],
  EDQUOT: ["disk quota exceeded", "Free some space, or save elsewhere."],
  ENOTDIR: ["a file is in the way of that path", "Remove that file, or save elsewhere."],
  EEXIST: ["it exists and is not a folder", "Remove that file, or save elsewhere."],
  EISDIR: ["a folder is in the way of the file", "Remove that folder, or save elsewhere."],
  ENAMETOOLONG: ["the path is too long", "Save to a shorter path."],
  EMFILE: ["too many open files", "Raise this process's open-file limit."],
  ENFILE: ["too many open files on the system", "Raise the system's open-file limit."],
};

/** Codes that may clear without anyone acting on the folder: space freed, files closed. */
const TRANSIENT = new Set(["ENOSPC", "EDQUOT", "EMFILE", "ENFILE", "EBUSY", "EAGAIN"]);

/** Whether `error` comes from the file system (`EACCES`, ...), not from the stream. */
function isFileSystemError(error: unknown): error is NodeJS.ErrnoException & { code: string } {
  return error instanceof Error && typeof errorCode(error) === "string" && /^E[A-Z]+$/.test(errorCode(error) as string);
}

/**
 * @internal A file system error met while saving into `folder` (as the application named it),
 * as a {@link TargetFolderError}; any other error unchanged.
 */
export function folderError(folder: string, error: unknown): unknown {
  if (TargetFolderError.isInstance(error) || !isFileSystemError(error)) return error;
  const [what, todo] = FOLDER_PROBLEMS[error.code] ?? [error.message, "Check the folder, or save elsewhere."];
  return new TargetFolderError({
    message: `[stream] cannot write to the folder ${folder}: ${error.code} (${what}); the stream was refused and its sender told. ${todo}`,
    folder,
    fsCode: error.code,
    retryable: TRANSIENT.has(error.code),
    cause: error,
  });
}

/**
 * Creates `folder` (and its parents) if need be, checks it has room for `sizeBytes` when the
 * sender declared it, and creates the temporary file exclusively: everything that can fail
 * before a byte of the stream is taken, so it can be tried again.
 */
async function prepare(folder: string, temporary: string, context: SaveContext): Promise<{ handle: FileHandle; kept: number | undefined }> {
  const { sizeBytes, streamId, takeover, chunkBytes = 1 } = context;
  await mkdir(folder, { recursive: true });
  // A stream taken over: the dead receiver's partial file is continued (claimed, cut to whole
  // chunks), or removed.
  let kept: number | undefined;
  if (streamId !== undefined && takeover === "continue") {
    kept = await claimPartial(folder, streamId, temporary, chunkBytes, sizeBytes);
    // Journaled: only what still matches the journal's checkpoints is continued.
    const checked = kept && context.journal ? await context.journal.check(temporary, kept, chunkBytes) : kept;
    if (checked !== kept) await truncate(temporary, (kept = checked));
  } else if (streamId !== undefined && takeover === "restart") await removePartials(folder, streamId);
  if (sizeBytes !== undefined) {
    const { bavail, bsize } = await statfs(folder);
    if (bavail * bsize < sizeBytes - (kept ?? 0)) {
      throw Object.assign(new Error(`ENOSPC: ${bavail * bsize} bytes free in ${folder}, the stream declares ${sizeBytes}`), { code: "ENOSPC" });
    }
  }
  return { handle: await open(temporary, kept === undefined ? "wx" : "a"), kept };
}

/**
 * A `Writable` into `handle` that buffers `highWaterMark` bytes, so disk writes overlap with
 * receiving instead of alternating with it (Node's 16 KiB default halves the rate), and fails
 * with `toError(error)`: a full disk reaches the stream, and so the sender, as a folder error.
 */
function fileWriter(handle: FileHandle, highWaterMark: number, toError: (error: unknown) => unknown, onWritten?: (bytes: number) => void): Writable {
  const fail = (callback: (error?: Error | null) => void) => (error: unknown) => callback(toError(error) as Error);
  return new Writable({
    highWaterMark,
    writev(chunks, callback) {
      const buffers = chunks.map(({ chunk }) => chunk as Buffer);
      writeAll(handle, buffers).then(() => {
        onWritten?.(buffers.reduce((sum, buffer) => sum + buffer.byteLength, 0));
        callback();
      }, fail(callback));
    },
    final(callback) {
      handle.close().then(() => callback(), fail(callback));
    },
    destroy(error, callback) {
      handle.close().then(
        () => callback(error),
        () => callback(error),
      );
    },
  });
}

/** Writes every byte of `buffers`, going on after a partial write. */
async function writeAll(handle: FileHandle, buffers: Buffer[]): Promise<void> {
  let rest = buffers;
  while (rest.length > 0) {
    let { bytesWritten } = await handle.writev(rest);
    while (rest.length > 0 && bytesWritten >= (rest[0] as Buffer).byteLength) {
      bytesWritten -= (rest[0] as Buffer).byteLength;
      rest = rest.slice(1);
    }
    if (bytesWritten > 0) rest = [(rest[0] as Buffer).subarray(bytesWritten), ...rest.slice(1)];
  }
}

/** Bytes the file writer buffers before it pushes back: a couple of chunks. */
function writeBufferBytes(stream: Readable): number {
  return Math.min(8 * 1024 * 1024, Math.max(1024 * 1024, 2 * stream.readableHighWaterMark));
}

/** Counts the bytes passing, for {@link SaveOptions.onProgress}. */
function counter(onProgress: (progress: SaveProgress) => void) {
  return async function* count(source: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
    let bytesReceived = 0;
    for await (const chunk of source) {
      bytesReceived += chunk.byteLength;
      onProgress({ bytesReceived });
      yield chunk;
    }
  };
}

/** @internal What {@link saveStream} needs to know of the stream besides its bytes. */
export interface SaveContext {
  /** The stream's result: resolves once the whole stream is verified. */
  readonly verified: Promise<{ sha256: string; byteCount: number }>;
  /** The sender's name for the stream. */
  readonly name: string;
  /** The size the sender declared, if any: checked against the folder's free space first. */
  readonly sizeBytes?: number | undefined;
  /** How often, and how far apart, preparing the folder is tried. */
  readonly retry: RetryPolicy;
  /** The stream's id: the partial file's name carries it, so a receiver taking over finds it. */
  readonly streamId?: string;
  readonly chunkBytes?: number;
  /** Set for a stream taken over: continue the dead receiver's partial file, or remove it. */
  readonly takeover?: "continue" | "restart" | undefined;
  /** Other receivers' partial files older than this (ms) are removed. @default 10 minutes */
  readonly partialTtlMs?: number;
  /** Tells a stream taken over where it starts, the bytes before hashed from `prefix`. */
  readonly startFrom?: (sequence: number, prefix?: AsyncIterable<Uint8Array>) => Promise<void>;
  /** Where the stream's bytes start in the file. */
  readonly startOffset?: () => number;
  /** Whether a failure keeps the partial file (the sender vanished or restarted: its next attempt continues it). */
  readonly keepPartial?: () => boolean;
  /** Makes the stream acknowledge only what is written; returns what to call with each write's bytes. */
  readonly ackOnlyWritten?: () => (bytes: number) => void;
  /** Set when the receiver keeps a journal: the save is recorded there, and a partial file checked against it. */
  readonly journal?: SaveJournal | undefined;
}

/**
 * @internal Writes `stream` into `directory` under a safe name. The folder is created if need be;
 * the bytes go to a hidden temporary file first; only once the stream has ended verified is it
 * given its final name, so a failed or lying stream never leaves a half file under that name.
 * Preparing the folder is retried per `context.retry` (no byte has been taken yet); past that,
 * and for a write that fails later, the stream is destroyed with a {@link TargetFolderError}.
 */
export async function saveStream(stream: Readable, directory: string, context: SaveContext, options: SaveOptions = {}): Promise<SaveResult> {
  const folder = resolve(directory);
  if (context.streamId === undefined) return save(stream, folder, directory, context, options);
  // A new attempt at a stream (its sender resumed or restarted) continues the partial file of
  // the attempt before it. If that attempt has failed here, in this process, it may still be
  // letting go of the file: continue only once its last write has landed and the file is closed,
  // or a late write would land after the file was cut back, and the saved file would not be
  // what was verified. (One still alive is another receiver's, taking it over: not waited for.)
  const key = `${folder}\0${context.streamId}`;
  const before = savesInProgress.get(key);
  const saving = (async () => {
    if (before?.stream.destroyed) await before.settled;
    return save(stream, folder, directory, context, options);
  })();
  const settled = saving.then(
    () => {},
    () => {},
  );
  savesInProgress.set(key, { stream, settled });
  void settled.then(() => {
    if (savesInProgress.get(key)?.settled === settled) savesInProgress.delete(key);
  });
  return saving;
}

/** Saves of this process in progress, by folder and stream id; `settled` once the file is closed. */
const savesInProgress = new Map<string, { readonly stream: Readable; readonly settled: Promise<void> }>();

async function save(stream: Readable, folder: string, directory: string, context: SaveContext, options: SaveOptions): Promise<SaveResult> {
  const toError = (error: unknown): unknown => folderError(directory, error);
  let fileName: string;
  try {
    fileName = safeFileName(options.fileName ?? context.name);
  } catch (error) {
    stream.once("error", () => {}); // The caller gets the error from this promise.
    stream.destroy(error as Error);
    throw error;
  }
  // `.` + name + `.<stream id>.xxxxxxxx.partial` must itself fit in 255 bytes.
  const streamId = context.streamId ?? "00000000-0000-0000-0000-000000000000";
  const temporary = join(folder, partialName(truncateUtf8(fileName, MAX_NAME_BYTES - 1 - PARTIAL_SUFFIX_BYTES), streamId));
  // Stop retrying once the stream has ended otherwise (its sender aborted, the app destroyed it).
  const gone = new AbortController();
  const onClose = (): void => gone.abort();
  stream.once("close", onClose);
  let handle: FileHandle | undefined;
  // A live partial file is touched now and then, so no receiver's sweep takes it for a dead one's.
  const touch = setInterval(() => {
    const now = new Date();
    utimes(temporary, now, now).catch(() => {});
  }, PARTIAL_TOUCH_MS);
  touch.unref();
  try {
    const prepared = await withRetries(() => prepare(folder, temporary, context), context.retry, {
      shouldRetry: isFileSystemError,
      signal: gone.signal,
    });
    handle = prepared.handle;
    const kept = prepared.kept ?? 0;
    if (context.takeover !== undefined && context.startFrom) {
      const chunkBytes = context.chunkBytes ?? 1;
      await context.startFrom(kept / chunkBytes, kept > 0 ? readPrefix(temporary, kept) : undefined);
    }
    const { journal } = context;
    journal?.started(temporary, kept);
    // Partial files a dead receiver left, whose sender has given up by now, go (unless a journal may resume them).
    await sweepPartials(folder, context.partialTtlMs ?? DEFAULT_PARTIAL_TTL_MS, temporary, { journaled: journal && (() => journal.journaled()) });
    // Acks then cover only what is in the file: what a receiver taking over after a crash finds.
    const acked = context.ackOnlyWritten?.();
    let written = kept;
    const onWritten = journal
      ? (bytes: number) => {
          acked?.(bytes);
          journal.written((written += bytes));
        }
      : acked;
    const file = fileWriter(handle, writeBufferBytes(stream), toError, onWritten);
    await (options.onProgress ? pipeline(stream, counter(options.onProgress), file) : pipeline(stream, file));
    const result = await context.verified;
    let path: string;
    if (options.overwrite) {
      path = checkedPath(folder, fileName);
      await rename(temporary, path);
    } else {
      path = await commitWithoutOverwrite(temporary, folder, fileName);
    }
    await journal?.ended("completed");
    return { path, byteCount: result.byteCount, sha256: result.sha256, startOffset: context.startOffset?.() ?? 0 };
  } catch (caught) {
    // The stream ended otherwise while the folder was being retried: that is the news.
    const error = gone.signal.aborted && stream.errored ? stream.errored : toError(caught);
    // The writer closes the file when the pipeline is torn down; wait for it (its last write too).
    await handle?.close().catch(() => {});
    const keep = context.keepPartial?.() ?? false;
    if (handle && !keep) await rm(temporary, { force: true });
    await context.journal?.ended(handle && keep ? "kept" : "failed", error);
    stream.once("error", () => {}); // The caller gets the error from this promise.
    stream.destroy(TargetFolderError.isInstance(error) ? error : undefined);
    throw error;
  } finally {
    clearInterval(touch);
    stream.off("close", onClose);
  }
}
