import { createHash } from "node:crypto";
import { resolve } from "node:path";
import { PartialFileMismatchError } from "./errors/partial-file-mismatch-error";
import type { StreamError } from "./errors/stream-error";
import { JOURNAL_EVERY_MS, type PrefixCheckpoint, type TransferJournal, type TransferRecord } from "./journal";
import type { Manifest } from "./protocol/frames";
import { readPrefix } from "./partial-files";

/** Checkpoints an entry keeps at most: the latest ones dense, older ones thinned out. */
const MAX_CHECKPOINTS = 16;

/**
 * @internal What `saveTo` tells the journal of a save, and asks of it. Every call but
 * {@link check} is fire-and-forget for the save: a journal that cannot be written never fails it.
 */
export interface SaveJournal {
  /**
   * Checks the partial file `path` just claimed (`claimedBytes`, whole chunks) against the
   * checkpoints journaled for it, hashing only up to the last one it reaches. Returns the bytes
   * to keep: `claimedBytes` when every checkpoint matches (or there is none to check), else up to
   * the last matching checkpoint (0 when none does), having reported a {@link PartialFileMismatchError}.
   */
  check(path: string, claimedBytes: number, chunkBytes: number): Promise<number>;
  /** The save writes into `path`, its first `startOffset` bytes already there. */
  started(path: string, startOffset: number): void;
  /** The file holds `writtenBytes` now; the entry and its checkpoint follow once a second at most. */
  written(writtenBytes: number): void;
  /** The partial files of the journal's unfinished receives: spared by the sweep of old ones until their entry expires. */
  journaled(): Promise<string[]>;
  /** The save ended: `"completed"` and `"failed"` remove the entry, `"kept"` (the partial file stays, to be continued) records why. */
  ended(outcome: "completed" | "kept" | "failed", error?: unknown): Promise<void>;
}

/** @internal What {@link journalReceive} needs to know of the stream being saved and its receiver. */
export interface ReceiveJournalContext {
  readonly journal: TransferJournal;
  readonly stream: {
    readonly manifest: Manifest;
    /** The SHA-256 of the stream's verified prefix so far, at a chunk boundary, or `undefined` when it is not receiving. */
    checkpoint(): Promise<PrefixCheckpoint | undefined>;
  };
  /** The folder saved into, as the application named it. */
  readonly folder: string;
  readonly destination: string;
  readonly broker?: string | undefined;
  readonly fileName?: string | undefined;
  /** Where a partial file that does not match its journal is reported (`ReceiveOptions.onFrameError`). */
  readonly report: (error: StreamError) => void;
}

/**
 * @internal Keeps a `direction: "receive"` journal entry for one `saveTo` while it runs: written
 * once the save knows where it starts, brought up to date once a second at most with the bytes
 * written and a checkpoint (the SHA-256 of the verified prefix), removed when the file is saved or
 * the save fails for good, kept with the error when the partial file is kept to be continued.
 *
 * A checkpoint costs no hashing: it is the stream's own running SHA-256 (the one its End is
 * checked against) copied at the offset reached, so the bytes are hashed once as ever. A check
 * before continuing re-reads and hashes the partial file's prefix up to the last checkpoint it
 * holds, once (continuing then reads it again into the stream's SHA-256, as without a journal).
 */
export function journalReceive(context: ReceiveJournalContext): SaveJournal {
  const { journal, stream } = context;
  const { manifest } = stream;
  const id = manifest.streamId;
  const folder = resolve(context.folder);
  const startedAt = new Date().toISOString();
  let partial: string | undefined;
  let checkpoints: PrefixCheckpoint[] = [];
  let bytesDone = 0;
  let lastWrite = 0;
  let writing: Promise<void> = Promise.resolve();
  let over = false;
  const entry = (error?: string): TransferRecord => ({
    id,
    direction: "receive",
    name: manifest.name,
    destination: context.destination,
    ...(context.broker === undefined ? {} : { broker: context.broker }),
    ...(manifest.sizeBytes === undefined ? {} : { sizeBytes: manifest.sizeBytes }),
    bytesDone,
    startedAt,
    updatedAt: new Date().toISOString(),
    chunkBytes: manifest.chunkBytes,
    folder,
    ...(partial === undefined ? {} : { partial }),
    ...(context.fileName === undefined ? {} : { fileName: context.fileName }),
    checkpoints,
    ...(error === undefined ? {} : { error }),
  });
  // Only this attempt's entry is changed: a receiver that took the stream over since has claimed
  // the partial file (a rename) and journals it under its own name.
  const ours = (current: TransferRecord | undefined): boolean => partial !== undefined && (current === undefined || current.partial === partial);
  return {
    async check(path, claimedBytes, chunkBytes) {
      const recorded = await journal.get(id, "receive").catch(() => undefined);
      if (!recorded?.folder || resolve(recorded.folder) !== folder) return claimedBytes;
      const usable = usableCheckpoints(recorded.checkpoints ?? [], claimedBytes);
      if (usable.length === 0) return claimedBytes;
      const matched = await matchingPrefix(path, usable);
      checkpoints = usable.filter((checkpoint) => checkpoint.offset <= matched);
      if (matched === (usable.at(-1) as PrefixCheckpoint).offset) return claimedBytes;
      const kept = Math.floor(matched / chunkBytes) * chunkBytes;
      checkpoints = checkpoints.filter((checkpoint) => checkpoint.offset <= kept);
      context.report(
        new PartialFileMismatchError({
          message:
            `[stream] the partial file ${path} of ${id} (${manifest.name}) does not match its journal: its first ` +
            `${(usable.find((checkpoint) => checkpoint.offset > matched) as PrefixCheckpoint).offset} bytes hash otherwise than when they were written. ` +
            (kept > 0 ? `Only its first ${kept} bytes, which match, are continued` : "It is not continued: the stream is saved from byte 0") +
            "; the rest is asked for again and the file is verified whole as ever. Something other than this receiver wrote to it.",
          path,
          keptBytes: kept,
          claimedBytes,
        }),
      );
      return kept;
    },
    started(path, startOffset) {
      partial = path;
      bytesDone = startOffset;
      lastWrite = Date.now();
      writing = journal.update(id, "receive", () => entry()).catch(() => {});
    },
    written(writtenBytes) {
      bytesDone = writtenBytes;
      if (over || partial === undefined || Date.now() - lastWrite < JOURNAL_EVERY_MS) return;
      lastWrite = Date.now();
      writing = writing
        .then(async () => {
          const checkpoint = await stream.checkpoint();
          if (checkpoint && checkpoint.offset > (checkpoints.at(-1)?.offset ?? 0)) checkpoints = thin([...checkpoints, checkpoint]);
          await journal.update(id, "receive", (current) => (!over && ours(current) ? entry() : undefined));
        })
        .catch(() => {});
    },
    journaled: () => journal.partialFiles(),
    async ended(outcome, error) {
      over = true;
      await writing;
      const message = error instanceof Error ? error.message : error === undefined ? undefined : String(error);
      await journal
        .update(id, "receive", (current) => {
          if (!ours(current)) return undefined;
          if (outcome === "kept") return entry(message);
          return current === undefined ? undefined : null;
        })
        .catch(() => {});
    },
  };
}

/** The checkpoints within the first `bytes`, by offset, without repeats. */
function usableCheckpoints(checkpoints: readonly PrefixCheckpoint[], bytes: number): PrefixCheckpoint[] {
  const usable: PrefixCheckpoint[] = [];
  for (const checkpoint of [...checkpoints].sort((a, b) => a.offset - b.offset)) {
    if (checkpoint.offset > 0 && checkpoint.offset <= bytes && checkpoint.offset > (usable.at(-1)?.offset ?? 0)) usable.push(checkpoint);
  }
  return usable;
}

/** Hashes the file `path` up to the last of `checkpoints`; returns the offset of the last one its prefix matches (0: none). */
async function matchingPrefix(path: string, checkpoints: readonly PrefixCheckpoint[]): Promise<number> {
  const hash = createHash("sha256");
  let at = 0;
  let index = 0;
  let matched = 0;
  for await (const bytes of readPrefix(path, (checkpoints.at(-1) as PrefixCheckpoint).offset)) {
    let rest = bytes;
    while (rest.byteLength > 0 && index < checkpoints.length) {
      const next = checkpoints[index] as PrefixCheckpoint;
      const take = Math.min(rest.byteLength, next.offset - at);
      hash.update(rest.subarray(0, take));
      at += take;
      rest = rest.subarray(take);
      if (at < next.offset) continue;
      if (hash.copy().digest("hex") !== next.sha256) return matched;
      matched = at;
      index += 1;
    }
  }
  return matched;
}

/** Keeps at most {@link MAX_CHECKPOINTS}: the latest half as they are, every other one of the older ones. */
function thin(checkpoints: PrefixCheckpoint[]): PrefixCheckpoint[] {
  if (checkpoints.length <= MAX_CHECKPOINTS) return checkpoints;
  const recent = MAX_CHECKPOINTS / 2;
  return [...checkpoints.slice(0, -recent).filter((_, index) => index % 2 === 1), ...checkpoints.slice(-recent)];
}
