import { E2eKeyError } from "./errors/e2e-key-error";
import { StreamTimeoutError } from "./errors/stream-timeout-error";
import type { IncomingStream } from "./incoming-stream";
import { Inbox } from "./inbox";
import { createRetryingTransport, type RetryOptions } from "./retrying-transport";
import { OutgoingStream } from "./outgoing-stream";
import { journalSend, resumeOptions } from "./journaled-send";
import type { TransferJournal, TransferRecord } from "./journal";
import type { SendOptions, SendResult } from "./sender";
import type { SaveOptions, SaveResult } from "./save-to";
import { type ReceiveOptions, StreamReceiver } from "./stream-receiver";
import type { StreamSource } from "./stream-source";
import { assertTransport, type Transport } from "./transport";

/** Options of {@link createStreamClient}. */
export interface StreamClientOptions {
  /** The broker adapter, e.g. `createRabbitmqTransport({ url })`. */
  readonly transport: Transport;
  /**
   * Whether {@link StreamClient.close} also closes the transport.
   * @default true
   */
  readonly closeTransport?: boolean;
  /**
   * Retrying of publishes that fail with a retryable error (a connection being re-established),
   * or `false` to fail at once. Publishes are retried until the outage has lasted `deadlineMs`,
   * then fail with `BrokerUnreachableError`; see {@link RetryOptions.deadlineMs} for why minutes.
   * @default { deadlineMs: 300000, initialDelayMs: 100, maxDelayMs: 5000 } (no cap on the count)
   */
  readonly retry?: RetryOptions | false;
  /**
   * Journal sends of files, and `saveTo`s of the streams received, here: after a failure or a
   * crash (even a SIGKILL) {@link StreamClient.unfinishedTransfers} lists them,
   * {@link StreamClient.resumeSend} continues a send where the receiver's partial file ends and
   * {@link StreamClient.resumeSaveTo} a receive from its partial file, checked against the
   * journal first. Off by default.
   */
  readonly journal?: TransferJournal;
  /** How journal entries name the broker (never with a password), e.g. `amqp://127.0.0.1:5672`. */
  readonly brokerLabel?: string;
}

/** Options of {@link StreamClient.resumeSaveTo}: the receiver's and `saveTo`'s (`fileName` defaults to the one the journal recorded). */
export interface ResumeSaveOptions extends ReceiveOptions, SaveOptions {
  /**
   * How long to wait for the stream's sender to offer it again.
   * @default 120000 (a sender's default `idleTimeoutMs`: a live sender offers it well within that)
   */
  readonly timeoutMs?: number;
}

/** Sends and receives streams over one transport. */
export interface StreamClient {
  /** The transport in use (wrapped for retries unless `retry: false`). */
  readonly transport: Transport;
  /**
   * Streams `source` to `options.destination`: in chunks no larger than the broker allows, never
   * more than the window ahead of the acknowledgements, each chunk with a CRC-32 and the whole
   * with a SHA-256. Resolves once the receiver (or, with `flowControl: "broker"`, the broker)
   * has all of it; rejects with a typed `StreamError`. The same as `startSend(source, options).result`.
   */
  send(source: StreamSource, options: SendOptions): Promise<SendResult>;
  /**
   * Starts sending `source` as {@link send} does and returns the {@link OutgoingStream} at once:
   * its `phase` (`'phase'` events), `bytesSent`, `bytesAcknowledged`, `'progress'` events,
   * `cancel()`, and `result`, which settles as `send` would. Throws a `TypeError` or `RangeError`
   * for options that cannot work (where `send` rejects).
   */
  startSend(source: StreamSource, options: SendOptions): OutgoingStream;
  /** The journal's unfinished transfers (see {@link StreamClientOptions.journal}); `[]` without one. */
  unfinishedTransfers(): Promise<TransferRecord[]>;
  /**
   * Resumes the journaled send `id` (a failed or interrupted send of a file): the same stream id,
   * destination and chunk size, from where the receiver's partial file ends; at most one window is
   * sent again. Rejects with {@link SourceChangedError} when the file changed since, and with a
   * `TypeError` when the journal has no such send. `options` may change e.g. `onProgress`.
   */
  resumeSend(id: string, options?: Partial<SendOptions>): Promise<SendResult>;
  /**
   * Continues the journaled receive `id` (a `saveTo` that failed resumably or whose process died)
   * in the folder it was saving into: receives on the destination it recorded, takes that stream
   * only (others are left for the destination's other receivers) and saves it, continuing the
   * partial file from what still matches the journal (`SaveResult.startOffset`). The stream has to
   * be offered again by its sender: a live sender does so by itself (takeover, every
   * `takeoverAfterMs` until its `idleTimeoutMs`); a sender that died does when it is resumed
   * (`resumeSend`, `stream resume`). Rejects with a {@link StreamTimeoutError} when nobody offers
   * it within `timeoutMs` (the entry and partial file are kept), with a `TypeError` when the
   * journal has no such receive, and as `saveTo` does.
   */
  resumeSaveTo(id: string, options?: ResumeSaveOptions): Promise<SaveResult>;
  /** Receives the streams sent to `destination`; see {@link StreamReceiver}. */
  receive(destination: string, options?: ReceiveOptions): StreamReceiver;
  /**
   * Closes receivers, the inboxes and (unless `closeTransport: false`) the transport. Sends still
   * going are stopped as if their process had ended: they reject with a retryable
   * `StreamAbortedError`, their receivers keep what they saved, and a resume continues them.
   */
  close(): Promise<void>;
}

/**
 * Creates a client that streams through `transport`.
 *
 * @example
 * const client = createStreamClient({ transport: createRabbitmqTransport({ url }) });
 * await client.send("./video.mp4", { destination: "files" });
 */
export function createStreamClient(options: StreamClientOptions): StreamClient {
  const { closeTransport = true, retry = {}, journal, brokerLabel } = options;
  assertTransport(options.transport);
  const retrying = retry === false ? undefined : createRetryingTransport(options.transport, retry);
  const transport: Transport = retrying ?? options.transport;
  const inboxes = new Map<string, Promise<Inbox>>();
  const receivers = new Set<StreamReceiver>();
  const openInbox = (destination: string): Promise<Inbox> => {
    let inbox = inboxes.get(destination);
    if (!inbox) {
      inbox = Inbox.open(transport, destination);
      inbox.catch(() => inboxes.delete(destination));
      inboxes.set(destination, inbox);
    }
    return inbox;
  };
  const receive = (destination: string, options: ReceiveOptions | undefined, onlyStreamId?: string): StreamReceiver => {
    const receiver = new StreamReceiver(transport, destination, options, { journal, brokerLabel, ...(onlyStreamId === undefined ? {} : { onlyStreamId }) });
    receivers.add(receiver);
    return receiver;
  };
  /** Sends going on, each with what `close` waits for once it has stopped them (the journal's last word too). */
  const sending = new Map<OutgoingStream, Promise<unknown>>();
  const track = (outgoing: OutgoingStream, done: Promise<unknown>): void => {
    const settled = done.then(
      () => {},
      () => {},
    );
    sending.set(outgoing, settled);
    void settled.then(() => {
      if (sending.get(outgoing) === settled) sending.delete(outgoing);
    });
  };
  const startSend = (source: StreamSource, options: SendOptions): OutgoingStream => {
    const outgoing = new OutgoingStream(source, options, {
      transport,
      openInbox: () => openInbox(options.destination),
      ...(retrying?.connection ? { connection: retrying.connection } : {}),
    });
    track(outgoing, outgoing.result);
    return outgoing;
  };
  const send = async (source: StreamSource, options: SendOptions): Promise<SendResult> => {
    const outgoing = startSend(source, options);
    if (journal && typeof source === "string") {
      const journaled = journalSend(journal, outgoing, source, options, brokerLabel);
      track(outgoing, journaled);
      return journaled;
    }
    // A promise of its own: one nobody awaits still reports its rejection, as it always did.
    return await outgoing.result;
  };
  return {
    transport,
    send,
    startSend,
    unfinishedTransfers: async () => (journal ? journal.list() : []),
    async resumeSend(id, overrides = {}) {
      const record = await journal?.get(id, "send");
      if (!record) throw new TypeError(`[stream] the journal${journal ? ` in ${journal.dir}` : " (none: pass createStreamClient({ journal }))"} has no unfinished send ${id}`);
      const { path, options: resumed } = await resumeOptions(record);
      if (record.e2eKeyId !== undefined && overrides.encryption === undefined) {
        // Never in the clear what was sealed: the journal keeps the key id, not the key.
        throw new E2eKeyError({
          message: `[stream] [e2e] send ${id} was encrypted end to end under key ${record.e2eKeyId}; resume it with that key (resumeSend(id, { encryption }), stream resume --e2e-key FILE)`,
          keyId: record.e2eKeyId,
        });
      }
      return send(path, { ...resumed, ...overrides });
    },
    async resumeSaveTo(id, options = {}) {
      const record = await journal?.get(id, "receive");
      if (!record?.folder) throw new TypeError(`[stream] the journal${journal ? ` in ${journal.dir}` : " (none: pass createStreamClient({ journal }))"} has no unfinished receive ${id}`);
      const { timeoutMs = 120_000, fileName = record.fileName, ...rest } = options;
      // Each of the two takes the options it knows of the options of both.
      const receiver = receive(record.destination, { ...rest, maxStreams: 1 }, id);
      try {
        const stream = await offered(receiver, timeoutMs, options.signal);
        return await stream.saveTo(record.folder, { ...rest, ...(fileName === undefined ? {} : { fileName }) });
      } catch (error) {
        if (error !== TIMED_OUT) throw error;
        throw new StreamTimeoutError({
          message:
            `[stream] nobody offered stream ${id} (${record.name}) on ${record.destination} within ${timeoutMs} ms. Its sender offers it again by itself ` +
            "only while it lives (until its idleTimeoutMs); resume the send on the sending side (resumeSend, `stream resume <id>`) and call resumeSaveTo again. " +
            `The journal entry and the partial file in ${record.folder} are kept.`,
          retryable: true,
        });
      } finally {
        await receiver.close();
        receivers.delete(receiver);
      }
    },
    receive: (destination, options) => receive(destination, options),
    async close() {
      // Sends still going stop as if their process ended (resumable), not waiting for their timeouts.
      for (const outgoing of sending.keys()) outgoing.interrupt();
      await Promise.all(sending.values());
      await Promise.allSettled([...receivers].map((receiver) => receiver.close()));
      await Promise.allSettled([...inboxes.values()].map(async (inbox) => (await inbox).close()));
      if (closeTransport) await transport.close();
    },
  };
}

const TIMED_OUT = Symbol("timed out");

/** The first stream `receiver` is offered; rejects with {@link TIMED_OUT} after `timeoutMs`, with the reason when `signal` aborts. */
async function offered(receiver: StreamReceiver, timeoutMs: number, signal: AbortSignal | undefined): Promise<IncomingStream> {
  await receiver.ready;
  let timer: NodeJS.Timeout | undefined;
  let onAbort: (() => void) | undefined;
  let onStream: ((stream: IncomingStream) => void) | undefined;
  try {
    return await new Promise<IncomingStream>((resolve, reject) => {
      onStream = resolve;
      receiver.once("stream", onStream);
      timer = setTimeout(() => reject(TIMED_OUT), timeoutMs);
      onAbort = () => reject(signal?.reason);
      if (signal?.aborted) onAbort();
      signal?.addEventListener("abort", onAbort, { once: true });
    });
  } finally {
    clearTimeout(timer);
    if (onStream) receiver.off("stream", onStream);
    if (onAbort) signal?.removeEventListener("abort", onAbort);
  }
}
