import type { TlsOptions } from "@stream/core/adapter-kit";
import type { RabbitmqConnection } from "./rabbitmq-client";

/**
 * Options of {@link createRabbitmqTransport}. Give either `url` (the transport connects, owns and
 * re-establishes the connection) or `connection` (a ready amqplib connection, or a factory that
 * returns one).
 */
export interface RabbitmqTransportOptions {
  /**
   * Where the broker is: an AMQP URL (`amqp://user:pass@host:5672/vhost?heartbeat=30`) or
   * amqplib's connect options object. Ignored when `connection` is given.
   * @default "amqp://127.0.0.1:5672" (guest/guest on the default vhost)
   */
  readonly url?: string | RabbitmqConnectOptions;
  /**
   * Socket options passed to amqplib's `connect` with `url` (TLS certificates, `timeout`, ...).
   * Ignored when `connection` is given.
   */
  readonly socketOptions?: Readonly<Record<string, unknown>>;
  /**
   * TLS for an `amqps://` URL: the CA to trust, a client certificate for mutual TLS; the
   * broker's certificate and name are checked unless `verify: false`. The same settings in
   * {@link socketOptions} win. Ignored when `connection` is given.
   */
  readonly tls?: TlsOptions;
  /**
   * A ready connection (what `amqplib.connect()` resolves to), or a factory that returns one.
   * - A ready connection is the caller's: the transport never closes it, and cannot re-establish
   *   it; once it drops, calls fail with a non-retryable `TransportError`.
   * - A factory is called for the first connection and again after each drop, so the transport
   *   reconnects; connections it returns are the transport's and are closed by `close()`.
   */
  readonly connection?: RabbitmqConnection | (() => Promise<RabbitmqConnection>);
  /**
   * Declares each destination queue with `x-single-active-consumer: true`: RabbitMQ hands every
   * frame of a destination to one consumer at a time and fails over to the next when it goes
   * away, which keeps each stream on one receiver. The price: receivers of one destination do
   * not share load (the others stand by). When `false`, competing consumers split frames of one
   * stream between them, so only use it with a single receiver per destination; capabilities
   * then declare `exclusiveConsumer: false` and `ordering: "none"`.
   *
   * Must agree with an existing queue's arguments (RabbitMQ refuses a redeclare that differs).
   * @default true
   */
  readonly singleActiveConsumer?: boolean;
  /**
   * Extra `x-` arguments for destination queues, e.g. `{ "x-queue-type": "quorum" }` or
   * `{ "x-max-length-bytes": 1073741824 }`. Must agree with an existing queue's arguments.
   * @default {}
   */
  readonly queueArguments?: Readonly<Record<string, unknown>>;
  /**
   * Publishes stream frames as persistent messages (`deliveryMode: 2`) into durable queues, so
   * they survive a broker restart. Inbox frames (acks, credit) are always transient.
   * @default true
   */
  readonly persistent?: boolean;
  /**
   * Most unacknowledged deliveries the broker sends one subscription ahead (AMQP `basic.qos`).
   * Frames wait in memory until core takes them: memory per subscription is about
   * `prefetchCount × chunk size`.
   * @default 16
   */
  readonly prefetchCount?: number;
  /**
   * The largest frame RabbitMQ accepts, its `max_message_size`. RabbitMQ 3.x defaults to
   * 128 MiB, 4.x to 16 MiB; raise this only when your broker is set higher.
   * @default 16777216 (16 MiB)
   */
  readonly maxFrameBytes?: number;
  /**
   * The durable direct exchange inbox frames are published to, with the inbox channel as routing
   * key. Each subscriber of an inbox binds a queue of its own, so every subscriber gets every
   * frame, and a frame for an inbox nobody listens to any more is dropped rather than refused.
   * @default "stream.inbox"
   */
  readonly inboxExchange?: string;
  /**
   * How long an inbox queue lives with no consumer (`x-expires`) before RabbitMQ deletes it. It
   * outlives a dropped connection, so acks sent during a reconnect wait for the subscriber.
   * @default 60000
   */
  readonly inboxExpiresMs?: number;
  /**
   * First delay before reconnecting after a drop; doubles per failed attempt up to
   * `reconnectMaxDelayMs`, each wait 50-100 % of that (core's backoff, with jitter).
   * @default 100
   */
  readonly reconnectInitialDelayMs?: number;
  /**
   * Longest delay between two reconnect attempts.
   * @default 5000
   */
  readonly reconnectMaxDelayMs?: number;
  /**
   * Reconnect attempts after a drop before the transport gives up and fails every call for good.
   * @default Infinity
   */
  readonly reconnectMaxAttempts?: number;
  /**
   * How long a handler's rejection holds the subscription before the frame is requeued
   * (`basic.nack`), so a failing handler does not spin on redeliveries.
   * @default 100
   */
  readonly redeliveryDelayMs?: number;
  /**
   * Called with each connection failure the transport recovers from (a drop, a failed reconnect
   * attempt, a subscription channel the broker closed). Use it for logging.
   */
  readonly onError?: (error: Error) => void;
}

/**
 * amqplib's connect options (`amqplib.Options.Connect`), restated so the types of this package do
 * not depend on one amqplib major.
 */
export interface RabbitmqConnectOptions {
  /** @default "amqp" */
  readonly protocol?: string;
  /** @default "localhost" */
  readonly hostname?: string;
  /** @default 5672 */
  readonly port?: number;
  /** @default "guest" */
  readonly username?: string;
  /** @default "guest" */
  readonly password?: string;
  /** @default "/" */
  readonly vhost?: string;
  /** Heartbeat interval in seconds; see amqplib for what `0` means in your version. */
  readonly heartbeat?: number;
  /** Largest AMQP frame (not message) size to negotiate, in bytes. @default 131072 */
  readonly frameMax?: number;
  /** Any other option amqplib accepts. */
  readonly [option: string]: unknown;
}
