import {
  TRANSPORT_SPECIFICATION_VERSION,
  type FrameHandler,
  type PublishOptions,
  type SubscribeOptions,
  type Subscription,
  type ConnectionWatch,
  type Transport,
  type TransportCapabilities,
} from "@stream/core";
import { ConnectionSupervisor, SubscriptionSet, assertChannelName, integerOptions } from "@stream/core/adapter-kit";
import { type Session, rabbitmqConnectionOptions } from "./rabbitmq-connection";
import { rabbitmqErrors, toTransportError } from "./rabbitmq-errors";
import { RabbitmqPublisher } from "./rabbitmq-publisher";
import { RabbitmqSubscription, type SubscriptionHost } from "./rabbitmq-subscription";
import type { RabbitmqTransportOptions } from "./rabbitmq-transport-options";

/**
 * Creates a {@link Transport} that moves `@stream/core` frames through RabbitMQ with amqplib.
 *
 * - A `"stream"` channel is a durable queue of that name (single active consumer by default);
 *   frames are persistent and published with publisher confirms: `publish` resolves once RabbitMQ
 *   has taken the frame.
 * - An `"inbox"` channel is a routing key on the direct exchange `stream.inbox`; each subscriber
 *   binds a transient queue of its own, so every subscriber gets every frame.
 * - Deliveries are acknowledged after the handler resolves and requeued when it rejects, with a
 *   bounded prefetch.
 * - A dropped connection is re-established with backoff and every subscription restarted
 *   (core's `ConnectionSupervisor`); publishes during the outage reject with a retryable
 *   `TransportError`, and `connection` says `"reconnecting"` until it is back.
 *
 * @example
 * ```ts
 * import { createStreamClient } from "@stream/core";
 * import { createRabbitmqTransport } from "@stream/rabbitmq";
 *
 * const client = createStreamClient({ transport: createRabbitmqTransport({ url: "amqp://localhost" }) });
 * ```
 */
export function createRabbitmqTransport(options: RabbitmqTransportOptions = {}): Transport {
  return new RabbitmqTransport(options);
}

class RabbitmqTransport implements Transport, SubscriptionHost {
  readonly specificationVersion = TRANSPORT_SPECIFICATION_VERSION;
  readonly name = "rabbitmq";
  readonly capabilities: TransportCapabilities;

  readonly prefetchCount: number;
  readonly redeliveryDelayMs: number;
  readonly reconnectInitialDelayMs: number;
  readonly reconnectMaxDelayMs: number;
  readonly inboxExpiresMs: number;
  readonly inboxExchange: string;
  readonly persistent: boolean;
  readonly #options: RabbitmqTransportOptions;
  readonly #singleActiveConsumer: boolean;
  readonly #supervisor: ConnectionSupervisor<Session>;
  readonly #publisher: RabbitmqPublisher;
  readonly #subscriptions = new SubscriptionSet<RabbitmqSubscription>();
  #closing: Promise<void> | undefined;

  constructor(options: RabbitmqTransportOptions) {
    this.#options = options;
    this.#singleActiveConsumer = options.singleActiveConsumer ?? true;
    this.persistent = options.persistent ?? true;
    const integer = integerOptions(this.name);
    this.prefetchCount = integer("prefetchCount", options.prefetchCount ?? 16);
    this.redeliveryDelayMs = integer("redeliveryDelayMs", options.redeliveryDelayMs ?? 100, { min: 0 });
    this.reconnectInitialDelayMs = integer("reconnectInitialDelayMs", options.reconnectInitialDelayMs ?? 100, { min: 0 });
    this.reconnectMaxDelayMs = integer("reconnectMaxDelayMs", options.reconnectMaxDelayMs ?? 5_000, { min: 0 });
    if (options.reconnectMaxAttempts !== undefined && options.reconnectMaxAttempts !== Number.POSITIVE_INFINITY) {
      integer("reconnectMaxAttempts", options.reconnectMaxAttempts, { min: 0 });
    }
    this.inboxExpiresMs = integer("inboxExpiresMs", options.inboxExpiresMs ?? 60_000);
    this.inboxExchange = options.inboxExchange ?? "stream.inbox";
    this.capabilities = Object.freeze({
      maxFrameBytes: integer("maxFrameBytes", options.maxFrameBytes ?? 16 * 1024 * 1024),
      // One queue with one active consumer keeps broker order; competing consumers do not.
      ordering: this.#singleActiveConsumer ? "per-key" : "none",
      redelivery: true,
      retention: "until-consumed",
      exclusiveConsumer: this.#singleActiveConsumer,
      brokerAcks: true,
      // Per-message `expiration`: an expired frame is dropped (or dead-lettered, when the queue
      // has a dead-letter exchange) once it reaches the head of its queue.
      messageExpiry: true,
    });
    this.#supervisor = new ConnectionSupervisor(rabbitmqConnectionOptions(options, (error) => this.report(error)));
    this.#publisher = new RabbitmqPublisher(this.#supervisor, this);
  }

  /** `"reconnecting"` from a drop until the new connection is up and every subscription restarted. */
  get connection(): ConnectionWatch {
    return this.#supervisor.status;
  }

  // async: a refusal rejects. Nothing is awaited before the frame joins the publisher's queue, so call order holds.
  async publish(channel: string, frame: Uint8Array, options: PublishOptions): Promise<void> {
    assertChannelName(channel, this.name);
    const refused = this.#supervisor.refusal();
    if (refused) throw refused;
    rabbitmqErrors.assertFrameSize(frame, this.capabilities.maxFrameBytes, "use a smaller chunk size or raise maxFrameBytes with the broker's max_message_size");
    return await this.#publisher.publish(channel, frame, options);
  }

  async subscribe(channel: string, handler: FrameHandler, options: SubscribeOptions): Promise<Subscription> {
    assertChannelName(channel, this.name);
    const refused = this.#supervisor.refusal();
    if (refused) throw refused;
    const { signal } = options;
    signal?.throwIfAborted();
    const session = await this.#supervisor.connection();
    const subscription = new RabbitmqSubscription(this, channel, handler, options.kind);
    await subscription.start(session);
    if (!session.alive || this.#supervisor.current !== session) {
      await subscription.close();
      throw toTransportError(`subscribing to ${channel} failed`, session.cause ?? "the connection dropped", true);
    }
    this.#supervisor.track(subscription);
    return this.#subscriptions.add(subscription, signal);
  }

  close(): Promise<void> {
    this.#closing ??= (async () => {
      this.#publisher.close();
      await this.#supervisor.close();
    })();
    return this.#closing;
  }

  /** @internal */
  streamQueueOptions(): Record<string, unknown> {
    return {
      durable: true,
      arguments: {
        ...(this.#singleActiveConsumer ? { "x-single-active-consumer": true } : {}),
        ...this.#options.queueArguments,
      },
    };
  }

  /** @internal */
  currentSession(): Session | undefined {
    return this.#supervisor.current;
  }

  /** @internal */
  report(error: Error): void {
    try {
      this.#options.onError?.(error);
    } catch {
      // A logging callback must not break recovery.
    }
  }

  /** @internal */
  forget(subscription: RabbitmqSubscription): void {
    this.#subscriptions.delete(subscription);
    this.#supervisor.forget(subscription);
  }
}
