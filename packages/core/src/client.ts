import { Inbox } from "./inbox";
import { createRetryingTransport, type RetryOptions } from "./retrying-transport";
import { OutgoingStream } from "./outgoing-stream";
import type { SendOptions, SendResult } from "./sender";
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
  /** Receives the streams sent to `destination`; see {@link StreamReceiver}. */
  receive(destination: string, options?: ReceiveOptions): StreamReceiver;
  /** Closes receivers, the inboxes and (unless `closeTransport: false`) the transport. */
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
  const { closeTransport = true, retry = {} } = options;
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
  const startSend = (source: StreamSource, options: SendOptions): OutgoingStream =>
    new OutgoingStream(source, options, {
      transport,
      openInbox: () => openInbox(options.destination),
      ...(retrying?.connection ? { connection: retrying.connection } : {}),
    });
  return {
    transport,
    async send(source, options) {
      // A promise of its own: one nobody awaits still reports its rejection, as it always did.
      return await startSend(source, options).result;
    },
    startSend,
    receive(destination, options) {
      const receiver = new StreamReceiver(transport, destination, options);
      receivers.add(receiver);
      return receiver;
    },
    async close() {
      await Promise.allSettled([...receivers].map((receiver) => receiver.close()));
      await Promise.allSettled([...inboxes.values()].map(async (inbox) => (await inbox).close()));
      if (closeTransport) await transport.close();
    },
  };
}
