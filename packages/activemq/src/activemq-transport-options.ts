import type { Readable, Writable } from "node:stream";
import type { TlsOptions } from "@stream/core/adapter-kit";

/**
 * The part of a STOMP client this adapter uses. A `stompit` `Client` (from `stompit.connect()`)
 * fits it; the adapter declares it itself so `@stream/activemq`'s types never need `@types/stompit`.
 */
export interface ActivemqStompClient {
  /** Starts a SEND frame; the adapter writes the body and ends it. */
  send(headers: Record<string, string | number>, options?: { onReceipt?: () => void }): Writable;
  /** Writes any frame; used for SUBSCRIBE with a receipt. */
  sendFrame(command: string, headers: Record<string, string | number>, options?: { onReceipt?: () => void }): Writable;
  /**
   * Registers a subscription id whose SUBSCRIBE frame the adapter sends itself (so it can ask for
   * a receipt). The adapter's ids are strings (`stream-<n>`), so they never collide with the numbers the client gives its own subscriptions.
   */
  setImplicitSubscription(
    id: string | number,
    ack: "auto" | "client" | "client-individual",
    listener: (error: Error | null, message: ActivemqStompMessage) => void,
  ): ActivemqStompSubscription;
  /** Acknowledges one message of a `client-individual` subscription. */
  ack(message: ActivemqStompMessage): void;
  /** Sends DISCONNECT and closes the socket once the broker's receipt arrives. */
  disconnect(callback?: (error: Error | null) => void): void;
  /** Closes the socket at once. */
  destroy(error?: Error): void;
  /** Listens for the connection failing (`"error"`) or ending (`"end"`). */
  on(event: "error" | "end", listener: (error?: Error) => void): unknown;
  /** Stops listening. */
  removeListener(event: "error" | "end", listener: (error?: Error) => void): unknown;
}

/**
 * A MESSAGE frame as the STOMP client hands it over: the body as a stream (the client keeps the
 * headers it needs to acknowledge it).
 */
export type ActivemqStompMessage = Readable;

/** A subscription of the STOMP client. */
export interface ActivemqStompSubscription {
  /** Sends UNSUBSCRIBE; the broker takes back the messages not yet acknowledged. */
  unsubscribe(headers?: Record<string, string>): void;
}

/**
 * Options of {@link createActivemqTransport}. Give either `client` or connection options
 * (`url`, `login`, `passcode`, ...); with neither, the adapter connects to `stomp://127.0.0.1:61613`.
 */
export interface ActivemqTransportOptions {
  /**
   * A STOMP client to use instead of connecting: either a connected `stompit` client, or a
   * function returning one (Kysely style).
   *
   * - A client is used as is and never closed by the transport; when its connection drops the
   *   transport cannot reconnect it, so its publishes and subscriptions fail from then on.
   * - A function is called for the first connection and again on each reconnect; the clients it
   *   returns belong to the transport, which disconnects them on {@link Transport.close}.
   *
   * When set, the connection options below are ignored.
   */
  readonly client?: ActivemqStompClient | (() => Promise<ActivemqStompClient>);
  /**
   * Where the broker's STOMP connector listens: `stomp://host:port`, or `stomp+ssl://host:port`
   * for TLS. User and password in the URL are used as `login` and `passcode`.
   * @default "stomp://127.0.0.1:61613"
   */
  readonly url?: string;
  /** STOMP `login` header; overrides a user in `url`. */
  readonly login?: string;
  /** STOMP `passcode` header; overrides a password in `url`. */
  readonly passcode?: string;
  /**
   * TLS for a `stomp+ssl://` URL: the CA to trust, a client certificate for mutual TLS; the
   * broker's certificate and name are checked unless `verify: false`.
   */
  readonly tls?: TlsOptions;
  /**
   * STOMP `host` header (the virtual host). ActiveMQ ignores it, but STOMP 1.1+ requires one.
   * @default the host of `url`
   */
  readonly virtualHost?: string;
  /**
   * How long to wait for a TCP connection and the broker's CONNECTED frame, in milliseconds.
   * @default 10_000
   */
  readonly connectTimeoutMs?: number;
  /**
   * STOMP heart-beat interval, both ways, in milliseconds; `0` turns heart-beats off. A connection
   * silent for longer than this (plus a margin) counts as dropped and is re-established, which is
   * how a half-open TCP connection is noticed.
   * @default 10_000
   */
  readonly heartbeatMs?: number;
  /**
   * Whether stream frames are sent `persistent: true`, so the broker stores them on disk before
   * its receipt. Non-persistent large frames can exhaust the broker's heap (seen with 1 MiB frames
   * and the default heap), so leave this on unless the broker is sized for it.
   * @default true
   */
  readonly persistent?: boolean;
  /**
   * Most messages the broker sends one subscription before it has acknowledged them
   * (`activemq.prefetchSize`). Bounds the adapter's memory: at most this many frames per
   * subscription wait in this process for their handler.
   * @default 16
   */
  readonly prefetchCount?: number;
  /**
   * The largest frame the broker accepts, in bytes: the STOMP connector's `transport.maxDataLength`
   * (ActiveMQ's default is 100 MiB). Declared to core as `capabilities.maxFrameBytes`; lower it
   * when the broker is configured lower.
   * @default 104_857_600
   */
  readonly maxFrameBytes?: number;
  /**
   * Whether a dropped connection is re-established (and the subscriptions re-subscribed). Needs
   * connection options or a `client` function; an injected client is never reconnected.
   * @default true
   */
  readonly reconnect?: boolean;
  /**
   * First wait before reconnecting, in milliseconds; doubles after each failed attempt, each wait
   * 50-100 % of that (core's backoff, with jitter).
   * @default 100
   */
  readonly reconnectInitialDelayMs?: number;
  /**
   * Longest wait between reconnect attempts, in milliseconds.
   * @default 5_000
   */
  readonly reconnectMaxDelayMs?: number;
  /**
   * How long a subscription whose handler rejected a frame pauses before subscribing again, in
   * milliseconds. ActiveMQ's STOMP NACK sends a message to the dead-letter queue instead of
   * redelivering it, so the adapter redelivers by closing the broker consumer (its unacknowledged
   * messages go back to the queue) and subscribing again after this pause.
   * @default 500
   */
  readonly redeliveryDelayMs?: number;
}
