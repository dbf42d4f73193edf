/**
 * The contract between `@stream/core` and a broker adapter.
 *
 * An adapter moves opaque frames between named channels and maps the broker's acknowledgements
 * onto promises. It knows nothing of chunking, sequencing, checksums or windows: all of that lives
 * in core. Keep this interface small; broker differences go in {@link TransportCapabilities}.
 *
 * @packageDocumentation
 */

/** The version of this interface. Core refuses a transport that declares another one. */
export const TRANSPORT_SPECIFICATION_VERSION = "stream-transport-v1" as const;

/**
 * What a broker can and cannot do. Core reads these to pick the chunk size and to decide whether
 * it must retransmit on silence (`retention`, `redelivery`); the rest tells users what they get.
 * An adapter declares the truth about its broker, not what it wishes.
 */
export interface TransportCapabilities {
  /**
   * The largest frame (header included) the broker accepts in one message, in bytes. Core never
   * publishes a larger frame; chunk size defaults to the largest multiple of 4 KiB that fits,
   * capped at 1 MiB.
   */
  readonly maxFrameBytes: number;
  /**
   * Ordering the broker guarantees for frames published with the same `key` on one channel:
   * `"per-key"` (Kafka partitions, one queue with one consumer), or `"none"`. Informational:
   * core reorders within its window whatever the broker does.
   */
  readonly ordering: "per-key" | "none";
  /**
   * Whether an unacknowledged frame is redelivered by the broker after a consumer dies or
   * rejects it (AMQP, STOMP client acks, MQTT QoS 1 sessions, Kafka uncommitted offsets).
   */
  readonly redelivery: boolean;
  /**
   * How long the broker keeps a frame no consumer has taken yet: `"none"` (lost if nobody is
   * subscribed, like plain MQTT topics), `"until-consumed"` (durable queues), `"log"` (Kafka: kept
   * for the retention period, re-readable from an offset).
   */
  readonly retention: "none" | "until-consumed" | "log";
  /**
   * Whether the broker itself can keep every frame of one `key` on one consumer among many
   * (ActiveMQ message groups, RabbitMQ single active consumer, Kafka key to partition).
   */
  readonly exclusiveConsumer: boolean;
  /**
   * Whether a resolved {@link Transport.publish} means the broker has durably taken the frame
   * (publisher confirms, STOMP receipts, MQTT PUBACK, Kafka acks=all). When false, publish
   * resolving means only that the frame left this process.
   */
  readonly brokerAcks: boolean;
  /**
   * Whether the broker drops a frame by itself once {@link PublishOptions.expiresAtMs} has passed
   * (AMQP per-message `expiration`, STOMP `expires`, MQTT 5 message expiry interval), so a stream
   * nobody takes does not stay in the broker for ever. Absent means `false`: core refuses a send
   * with `expireAfterMs` on such a transport rather than leave frames it promised would go.
   */
  readonly messageExpiry?: boolean;
}

/** Options for one {@link Transport.publish}. */
export interface PublishOptions {
  /** What the channel is for, as the subscriber declared it; see {@link ChannelKind}. */
  readonly kind: ChannelKind;
  /**
   * The stream this frame belongs to. Adapters use it to keep one stream in order and on one
   * consumer (Kafka message key, ActiveMQ `JMSXGroupID`, AMQP routing).
   */
  readonly key: string;
  /** Aborts waiting for the broker's acknowledgement. */
  readonly signal?: AbortSignal;
  /**
   * When the broker may drop the frame if no consumer has taken it, in ms since the epoch (one
   * instant for every frame of a stream, its `manifest.expiresAt`, retransmissions included). Only
   * given to a transport that declares `capabilities.messageExpiry`; an adapter maps it onto its
   * broker's per-message expiry, relative or absolute, and leaves the frame without one when absent.
   */
  readonly expiresAtMs?: number;
}

/**
 * What a channel is for, so an adapter can map it onto the right broker construct.
 * - `"stream"`: frames of streams; durable when the broker can be, competing consumers share it.
 * - `"inbox"`: control frames addressed to one party (acks, credit, requests); it may be
 *   transient and must be delivered to every subscriber of it (there is normally one).
 */
export type ChannelKind = "stream" | "inbox";

/** Options for one {@link Transport.subscribe}. */
export interface SubscribeOptions {
  /** What the channel is for; see {@link ChannelKind}. */
  readonly kind: ChannelKind;
  /** Stops the subscription, like {@link Subscription.close}. */
  readonly signal?: AbortSignal;
}

/**
 * Handles one frame. The adapter acknowledges the frame to the broker only when the returned
 * promise resolves, and lets the broker redeliver it when the promise rejects, so a crash before
 * core has taken a frame loses nothing. Frames of one subscription are handed over one at a time
 * in broker order: the adapter awaits each handler before calling the next.
 */
export type FrameHandler = (frame: Uint8Array) => Promise<void> | void;

/** A live subscription. */
export interface Subscription {
  /** Stops delivery; frames not yet acknowledged go back to the broker. */
  close(): Promise<void>;
}

/**
 * Whether a transport's broker connection is up: `"reconnecting"` from the moment a connection
 * that was up drops until it is back, `"connected"` otherwise: also before the first connection
 * and once the adapter has given up, when calls fail (for good) rather than wait.
 */
export type ConnectionState = "connected" | "reconnecting";

/** A connection state that can be watched; see {@link Transport.connection}. */
export interface ConnectionWatch {
  /** The state now. */
  readonly state: ConnectionState;
  /** Calls `listener` once on each change of `state` until the returned function is called. */
  watch(listener: (state: ConnectionState) => void): () => void;
}

/**
 * A broker adapter. Created by `createXTransport()` in each adapter package.
 *
 * Channels are plain names made of `[A-Za-z0-9._-]`, at most 200 characters (`isChannelName`;
 * adapters refuse others with `assertChannelName` of `@stream/core/adapter-kit`); the adapter maps
 * them to its broker's destinations (`/queue/<name>`, a queue, a topic).
 */
export interface Transport {
  /** Always {@link TRANSPORT_SPECIFICATION_VERSION}. */
  readonly specificationVersion: typeof TRANSPORT_SPECIFICATION_VERSION;
  /** Short broker name used in errors and logs, e.g. `"rabbitmq"`. */
  readonly name: string;
  /** What the broker can do; see {@link TransportCapabilities}. */
  readonly capabilities: TransportCapabilities;
  /**
   * Publishes one frame. Resolves when the broker has acknowledged it (when
   * `capabilities.brokerAcks`), rejects with a `TransportError` (`retryable` when a reconnect
   * may help). Until the promise settles the frame is the adapter's: core does not change it
   * (and may publish the same frame again, a retransmission). Once it settles, core may reuse
   * the buffer, so an adapter that needs the bytes later must copy them.
   *
   * Core calls `publish` again before earlier calls have resolved (that is how it keeps a window
   * in flight); frames published to one channel with one key must reach the broker in call order.
   */
  publish(channel: string, frame: Uint8Array, options: PublishOptions): Promise<void>;
  /** Starts delivering the channel's frames to `handler`; resolves once the subscription is live. */
  subscribe(channel: string, handler: FrameHandler, options: SubscribeOptions): Promise<Subscription>;
  /** Closes the subscriptions and the connection the transport owns (not an injected client). */
  close(): Promise<void>;
  /**
   * Optional: what the adapter knows of its connection, so that a send's progress says
   * `"reconnecting"` for the whole of an outage, not only while a publish happens to fail
   * (an adapter may hold publishes while it reconnects, and a sender whose window is full
   * publishes nothing). Core merges it with its own view of failing publishes
   * (`createRetryingTransport`); an adapter that cannot tell leaves it out, and then only
   * failing publishes say "reconnecting". The outage `retry.deadlineMs` counts starts with
   * whichever said it first, but only publishes failing past it fail a send.
   */
  readonly connection?: ConnectionWatch;
}

/** Returns the transport unchanged after checking it speaks this version of the interface. */
export function assertTransport(transport: Transport): Transport {
  if (transport?.specificationVersion !== TRANSPORT_SPECIFICATION_VERSION) {
    throw new TypeError(
      `[stream] transport ${String(transport?.name)} declares specificationVersion ` +
        `${String(transport?.specificationVersion)}; this @stream/core needs ` +
        `${TRANSPORT_SPECIFICATION_VERSION}. Install matching versions of @stream/core and the adapter.`,
    );
  }
  return transport;
}
