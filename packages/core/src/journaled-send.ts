import { stat } from "node:fs/promises";
import { basename } from "node:path";
import { SourceChangedError } from "./errors/source-changed-error";
import { JOURNAL_EVERY_MS, type TransferJournal, type TransferRecord } from "./journal";
import type { OutgoingStream } from "./outgoing-stream";
import type { SendOptions, SendResult } from "./sender";

/**
 * Keeps a journal entry for a send of the file `path` while it runs: written at the start,
 * brought up to date with the bytes acknowledged (once a second at most), removed once the
 * receiver has it all, and kept with the error when it fails, so it can be resumed.
 */
export async function journalSend(
  journal: TransferJournal,
  outgoing: OutgoingStream,
  path: string,
  options: SendOptions,
  broker: string | undefined,
): Promise<SendResult> {
  const file = await stat(path);
  const startedAt = new Date().toISOString();
  const entry = (bytesDone: number, error?: string): TransferRecord => ({
    id: outgoing.streamId,
    direction: "send",
    name: options.name ?? outgoing.manifest?.name ?? basename(path),
    destination: options.destination,
    ...(broker === undefined ? {} : { broker }),
    sizeBytes: file.size,
    bytesDone,
    startedAt,
    updatedAt: new Date().toISOString(),
    source: { path, sizeBytes: file.size, mtimeMs: file.mtimeMs },
    ...(outgoing.manifest ? { chunkBytes: outgoing.manifest.chunkBytes } : options.chunkBytes === undefined ? {} : { chunkBytes: options.chunkBytes }),
    ...(outgoing.manifest?.e2e ? { e2eKeyId: outgoing.manifest.e2e.keyId } : {}),
    ...(error === undefined ? {} : { error }),
  });
  let writing = journal.write(entry(0));
  let lastWrite = Date.now();
  const onProgress = ({ bytesAcknowledged }: { bytesAcknowledged: number }): void => {
    if (Date.now() - lastWrite < JOURNAL_EVERY_MS) return;
    lastWrite = Date.now();
    writing = writing.then(() => journal.write(entry(bytesAcknowledged))).catch(() => {});
  };
  outgoing.on("progress", onProgress);
  try {
    const result = await outgoing.result;
    await writing.catch(() => {});
    await journal.remove(outgoing.streamId, "send");
    return result;
  } catch (error) {
    await writing.catch(() => {});
    await journal.write(entry(outgoing.bytesAcknowledged, error instanceof Error ? error.message : String(error))).catch(() => {});
    throw error;
  } finally {
    outgoing.off("progress", onProgress);
  }
}

/**
 * The options to resume the journaled send `record`: the same stream id, destination, name and
 * chunk size, marked as a resume. Throws {@link SourceChangedError} when its file is not the one
 * the interrupted send was reading.
 */
export async function resumeOptions(record: TransferRecord): Promise<{ path: string; options: SendOptions }> {
  const { source } = record;
  if (record.direction !== "send" || !source) throw new TypeError(`[stream] ${record.id} is not a send of a file; only those can be resumed by the sender`);
  const file = await stat(source.path).catch(() => undefined);
  if (!file || file.size !== source.sizeBytes || file.mtimeMs !== source.mtimeMs) {
    throw new SourceChangedError({
      message:
        `[stream] cannot resume ${record.id}: ${source.path} ` +
        (file ? `changed since the send was interrupted (size ${file.size}, was ${source.sizeBytes}; modified ${new Date(file.mtimeMs).toISOString()}, was ${new Date(source.mtimeMs).toISOString()})` : "is gone") +
        "; continuing would splice two different files. Send it again as a new stream.",
      path: source.path,
    });
  }
  return {
    path: source.path,
    options: {
      destination: record.destination,
      streamId: record.id,
      name: record.name,
      ...(record.chunkBytes === undefined ? {} : { chunkBytes: record.chunkBytes }),
      resume: { acknowledgedBytes: record.bytesDone },
    },
  };
}
