import { randomBytes } from "node:crypto";
import type { ChannelKind, FrameHandler, Subscription, TransportError } from "@stream/core";
import { FrameQueue, sleep } from "@stream/core/adapter-kit";
import type { RabbitmqChannel, RabbitmqMessage } from "./rabbitmq-client";
import { toTransportError } from "./rabbitmq-errors";
import type { Session } from "./rabbitmq-connection";

/** What a subscription needs from its transport. */
export interface SubscriptionHost {
  readonly prefetchCount: number;
  readonly redeliveryDelayMs: number;
  readonly reconnectInitialDelayMs: number;
  readonly reconnectMaxDelayMs: number;
  readonly inboxExpiresMs: number;
  /** Arguments of `assertQueue` for a destination queue. */
  streamQueueOptions(): Record<string, unknown>;
  /** The shared direct exchange inbox frames go through. */
  readonly inboxExchange: string;
  /** The live session, when the connection is up. */
  currentSession(): Session | undefined;
  report(error: Error): void;
  forget(subscription: RabbitmqSubscription): void;
}

/** One consumer on one AMQP channel of one session. */
interface Consumer {
  readonly session: Session;
  readonly channel: RabbitmqChannel;
  tag: string;
  alive: boolean;
  cause: unknown;
}

/**
 * A subscription that survives reconnects: the transport calls {@link RabbitmqSubscription.start}
 * on each new session. Each start opens its own AMQP channel, so prefetch is per subscription and
 * a channel error in one leaves the others alone.
 */
export class RabbitmqSubscription implements Subscription {
  /** The queue consumed: the channel itself for `"stream"`, a queue of this subscriber's own for `"inbox"`. */
  readonly queue: string;
  #consumer: Consumer | undefined;
  /** Hands frames to the handler one at a time, acking each only once its promise resolves. */
  readonly #backlog = new FrameQueue<{ readonly consumer: Consumer; readonly message: RabbitmqMessage }>({
    handle: ({ message }) => this.handler(message.content),
    onSettled: async ({ consumer, message }, handled) => {
      if (handled) {
        if (consumer.alive) consumer.channel.ack(message);
        return;
      }
      // Hold the subscription a moment so a handler that keeps failing does not spin.
      await sleep(this.host.redeliveryDelayMs);
      if (consumer.alive) consumer.channel.nack(message, false, true);
    },
    // A closed channel's deliveries go back to the queue: the broker redelivers them.
    isStale: ({ consumer }) => !consumer.alive || this.#closed,
  });
  #closed = false;
  #closing: Promise<void> | undefined;
  #restartTimer: NodeJS.Timeout | undefined;
  #restartDelayMs: number;

  constructor(
    private readonly host: SubscriptionHost,
    readonly channel: string,
    private readonly handler: FrameHandler,
    readonly kind: ChannelKind,
  ) {
    this.queue = kind === "inbox" ? `${channel}.${randomBytes(6).toString("hex")}` : channel;
    this.#restartDelayMs = host.reconnectInitialDelayMs;
  }

  /** Whether {@link close} was called. */
  get closed(): boolean {
    return this.#closed;
  }

  /**
   * Declares what the subscription consumes and starts consuming on `session`. Rejects with a
   * `TransportError`; the caller decides whether to try again.
   */
  async start(session: Session): Promise<void> {
    if (this.#closed || (this.#consumer?.alive && this.#consumer.session === session)) return;
    let channel: RabbitmqChannel;
    try {
      channel = await session.connection.createChannel();
    } catch (error) {
      throw toTransportError(`opening a channel to consume ${this.channel} failed`, session.cause ?? error);
    }
    const consumer: Consumer = { session, channel, tag: "", alive: true, cause: undefined };
    channel.on("error", (error: unknown) => {
      consumer.cause = error;
    });
    channel.on("close", () => this.#onChannelClosed(consumer));
    try {
      if (this.kind === "inbox") {
        await channel.assertExchange(this.host.inboxExchange, "direct", { durable: true });
        // x-expires rather than exclusive: the queue outlives a dropped connection, so acks sent
        // while this subscriber reconnects wait for it.
        await channel.assertQueue(this.queue, { durable: false, arguments: { "x-expires": this.host.inboxExpiresMs } });
        await channel.bindQueue(this.queue, this.host.inboxExchange, this.channel);
      } else {
        await channel.assertQueue(this.queue, this.host.streamQueueOptions());
      }
      await channel.prefetch(this.host.prefetchCount);
      const { consumerTag } = await channel.consume(this.queue, (message) => this.#deliver(consumer, message), {
        noAck: false,
      });
      consumer.tag = consumerTag;
    } catch (error) {
      consumer.alive = false;
      channel.close().catch(() => {});
      throw toTransportError(`subscribing to ${this.channel} failed`, error);
    }
    if (this.#closed || !session.alive) {
      consumer.alive = false;
      channel.close().catch(() => {});
      if (!this.#closed) throw toTransportError(`subscribing to ${this.channel} failed`, session.cause ?? "connection closed", true);
      return;
    }
    this.#consumer = consumer;
    this.#restartDelayMs = this.host.reconnectInitialDelayMs;
  }

  #deliver(consumer: Consumer, message: RabbitmqMessage | null): void {
    if (message === null) {
      // The broker cancelled the consumer (its queue was deleted): closing the channel restarts it.
      this.host.report(toTransportError(`RabbitMQ cancelled the consumer of ${this.channel}`, "consumer cancelled", true));
      consumer.channel.close().catch(() => {});
      return;
    }
    this.#backlog.push({ consumer, message });
  }

  #onChannelClosed(consumer: Consumer): void {
    consumer.alive = false;
    if (this.#consumer !== consumer) return;
    this.#consumer = undefined;
    // Deliveries not yet handled go back to the queue with the channel; forget them here.
    this.#backlog.clear((delivery) => delivery.consumer === consumer);
    if (this.#closed) return;
    // A dropped connection closes its channels first: the transport restarts us on the next
    // session. A channel the broker closed on a live connection, we restart ourselves.
    this.#scheduleRestart(consumer.session, consumer.cause);
  }

  #scheduleRestart(session: Session, cause: unknown): void {
    const wait = this.#restartDelayMs;
    this.#restartDelayMs = Math.min(this.#restartDelayMs * 2, this.host.reconnectMaxDelayMs);
    this.#restartTimer = setTimeout(() => {
      this.#restartTimer = undefined;
      if (this.#closed || !session.alive || this.host.currentSession() !== session || this.#consumer) return;
      this.host.report(toTransportError(`RabbitMQ closed the channel consuming ${this.channel}; resubscribing`, cause ?? "channel closed", true));
      this.start(session).catch((error: TransportError) => {
        if (!error.retryable) {
          this.host.report(error);
          void this.close();
          return;
        }
        this.#scheduleRestart(session, error);
      });
    }, wait);
  }

  /** Stops delivery; frames not yet acknowledged go back to the queue. An inbox queue is deleted. */
  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    this.#closed = true;
    this.host.forget(this);
    if (this.#restartTimer) clearTimeout(this.#restartTimer);
    this.#backlog.clear();
    const consumer = this.#consumer;
    this.#consumer = undefined;
    if (!consumer?.alive) return;
    // `consumer.alive` stays true until the channel has closed, so a handler that resolves while
    // we cancel still gets its frame acked rather than redelivered.
    const { channel } = consumer;
    try {
      await channel.cancel(consumer.tag);
      if (this.kind === "inbox") await channel.deleteQueue(this.queue);
      await channel.close();
    } catch {
      // Already closed with its connection: nothing left to release.
    }
  }
}
