import { open, readdir, readFile, rename, rm, mkdir } from "node:fs/promises";
import { homedir } from "node:os";
import { join } from "node:path";

/** One unfinished transfer, as the journal keeps it. Never holds credentials. */
export interface TransferRecord {
  /** The stream id: what `resumeSend` and `stream resume <id>` take. */
  readonly id: string;
  readonly direction: "send" | "receive";
  /** The stream's name (a file name). */
  readonly name: string;
  readonly destination: string;
  /** Where the broker is, as the application describes it (no password), e.g. `amqp://127.0.0.1:5672`. */
  readonly broker?: string;
  readonly sizeBytes?: number;
  /** Bytes acknowledged by the receiver (a send) or saved (a receive). */
  readonly bytesDone: number;
  readonly startedAt: string;
  readonly updatedAt: string;
  /** A send of a file: what the file was, so a resume can check it has not changed. */
  readonly source?: { readonly path: string; readonly sizeBytes: number; readonly mtimeMs: number };
  /** The send's chunk size: a resume uses the same. */
  readonly chunkBytes?: number;
  /** An end-to-end encrypted send: the id of its key (never the key), which a resume must be given again. */
  readonly e2eKeyId?: string;
  /** A receive: the folder it saves into (its partial file carries the stream id). */
  readonly folder?: string;
  /** A receive: its partial file, removed with the entry when it expires. */
  readonly partial?: string;
  /** A receive saved under a name of the application's (`SaveOptions.fileName`), not the sender's. */
  readonly fileName?: string;
  /**
   * A receive: SHA-256s of the partial file's prefix at a few chunk boundaries, oldest first
   * (dense lately, sparser further back). Before a partial file is continued its prefix is checked
   * against them; see `PartialFileMismatchError`.
   */
  readonly checkpoints?: readonly PrefixCheckpoint[];
  /** Why it stopped, when it failed. */
  readonly error?: string;
}

/** The SHA-256 (lower-case hex) of the first `offset` bytes of a partial file. */
export interface PrefixCheckpoint {
  readonly offset: number;
  readonly sha256: string;
}

/** How often a running transfer's journal entry is brought up to date, at most. */
export const JOURNAL_EVERY_MS = 1000;

/** Where transfers are journaled unless told otherwise: `$STREAM_STATE_DIR`, else `$XDG_STATE_HOME/stream`, else `~/.local/state/stream`. */
export function defaultStateDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.STREAM_STATE_DIR) return env.STREAM_STATE_DIR;
  return join(env.XDG_STATE_HOME || join(homedir(), ".local", "state"), "stream");
}

/** Journal entries not updated for this long are abandoned and removed by {@link TransferJournal.list}. @default 7 days */
const DEFAULT_EXPIRE_AFTER_MS = 7 * 24 * 3_600_000;

const fileOf = (dir: string, id: string, direction: TransferRecord["direction"]): string => join(dir, `${id}.${direction}.json`);

/**
 * A crash-safe record of unfinished transfers, one small JSON file each in a state folder: what a
 * process needs after a restart (even a SIGKILL) to list them and resume each. Every write goes
 * to a temporary file that is fsynced and then renamed over the entry, so an entry is always
 * either the old one or the new one, never half written. Entries untouched for `expireAfterMs`
 * are removed when listed: nothing abandoned grows forever.
 */
export class TransferJournal {
  readonly dir: string;
  readonly expireAfterMs: number;

  constructor({ dir = defaultStateDir(), expireAfterMs = DEFAULT_EXPIRE_AFTER_MS }: { dir?: string; expireAfterMs?: number } = {}) {
    this.dir = dir;
    this.expireAfterMs = expireAfterMs;
  }

  /** Per entry, the last change under way in this process: {@link update}s of one entry take turns. */
  private readonly changes = new Map<string, Promise<unknown>>();

  /**
   * Replaces the entry of `id` and `direction` with what `change` makes of it (`undefined`: no
   * entry; `null`: removed; the same object: left alone). Changes of one entry made through this
   * journal object take turns, so two attempts at one stream never interleave a read and a write.
   */
  update(
    id: string,
    direction: TransferRecord["direction"],
    change: (current: TransferRecord | undefined) => TransferRecord | null | undefined,
  ): Promise<void> {
    const key = `${id}.${direction}`;
    const next = (this.changes.get(key) ?? Promise.resolve())
      .catch(() => {})
      .then(async () => {
        const current = await this.get(id, direction);
        const changed = change(current);
        if (changed === null) await this.remove(id, direction);
        else if (changed !== undefined && changed !== current) await this.write(changed);
      });
    this.changes.set(key, next);
    void next.finally(() => {
      if (this.changes.get(key) === next) this.changes.delete(key);
    }).catch(() => {});
    return next;
  }

  /** Writes `record` (replacing the entry of its id and direction). */
  async write(record: TransferRecord): Promise<void> {
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    const path = fileOf(this.dir, record.id, record.direction);
    const temporary = `${path}.${process.pid}.tmp`;
    const handle = await open(temporary, "w", 0o600);
    try {
      await handle.writeFile(`${JSON.stringify(record)}\n`);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temporary, path);
    const folder = await open(this.dir, "r");
    try {
      await folder.sync(); // the rename itself survives a power loss
    } finally {
      await folder.close();
    }
  }

  /** Removes the entry: the transfer completed, or was given up. */
  async remove(id: string, direction: TransferRecord["direction"]): Promise<void> {
    await rm(fileOf(this.dir, id, direction), { force: true });
  }

  /** The partial files of the unfinished receives (absolute paths): a sweep of old partial files spares them. */
  async partialFiles(): Promise<string[]> {
    return (await this.list()).flatMap((record) => (record.direction === "receive" && record.partial ? [record.partial] : []));
  }

  /** The entry of `id`, or undefined. */
  async get(id: string, direction: TransferRecord["direction"]): Promise<TransferRecord | undefined> {
    return readRecord(fileOf(this.dir, id, direction));
  }

  /**
   * Every unfinished transfer, oldest first; abandoned ones (and unreadable files) are removed,
   * an abandoned receive with its partial file.
   */
  async list(now = Date.now()): Promise<TransferRecord[]> {
    let names: string[];
    try {
      names = await readdir(this.dir);
    } catch {
      return [];
    }
    const records: TransferRecord[] = [];
    for (const name of names) {
      if (!name.endsWith(".json")) continue;
      const path = join(this.dir, name);
      const record = await readRecord(path);
      if (!record || now - Date.parse(record.updatedAt) > this.expireAfterMs) {
        if (record?.direction === "receive" && record.partial) await rm(record.partial, { force: true });
        await rm(path, { force: true });
        continue;
      }
      records.push(record);
    }
    return records.sort((a, b) => a.startedAt.localeCompare(b.startedAt));
  }
}

async function readRecord(path: string): Promise<TransferRecord | undefined> {
  try {
    const record = JSON.parse(await readFile(path, "utf8")) as TransferRecord;
    return typeof record.id === "string" && (record.direction === "send" || record.direction === "receive") ? record : undefined;
  } catch {
    return undefined;
  }
}
