import { connect } from "amqplib";
import {
  TRANSPORT_SPECIFICATION_VERSION,
  type FrameHandler,
  type PublishOptions,
  type SubscribeOptions,
  type Subscription,
  type Transport,
  type TransportCapabilities,
} from "@stream/core";
import { assertChannelName } from "@stream/core/adapter-kit";
import type { RabbitmqChannel, RabbitmqConnection } from "./rabbitmq-connection";
import { toTransportError, transportError } from "./rabbitmq-errors";
import { type PublishJob, type Publisher, Session } from "./rabbitmq-session";
import { RabbitmqSubscription, type SubscriptionHost } from "./rabbitmq-subscription";
import type { RabbitmqTransportOptions } from "./rabbitmq-transport-options";

const DEFAULT_URL = "amqp://127.0.0.1:5672";
/** How long `close()` waits for frames the broker has not confirmed yet. */
const CLOSE_CONFIRM_WAIT_MS = 5_000;

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
 * - A dropped connection is re-established with backoff and every subscription restarted;
 *   publishes during the outage reject with a retryable `TransportError`.
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

type State = "idle" | "connecting" | "open" | "reconnecting" | "failed" | "closed";

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
  readonly #options: RabbitmqTransportOptions;
  readonly #singleActiveConsumer: boolean;
  readonly #persistent: boolean;
  readonly #reconnectMaxAttempts: number;

  #state: State = "idle";
  #session: Session | undefined;
  #connecting: Promise<Session> | undefined;
  #failure: Error | undefined;
  #readyConnectionUsed = false;
  #wakeReconnect: (() => void) | undefined;
  #closing: Promise<void> | undefined;
  readonly #subscriptions = new Set<RabbitmqSubscription>();
  readonly #jobs: PublishJob[] = [];
  #pumping = false;

  constructor(options: RabbitmqTransportOptions) {
    this.#options = options;
    this.#singleActiveConsumer = options.singleActiveConsumer ?? true;
    this.#persistent = options.persistent ?? true;
    this.prefetchCount = positive("prefetchCount", options.prefetchCount ?? 16);
    this.redeliveryDelayMs = nonNegative("redeliveryDelayMs", options.redeliveryDelayMs ?? 100);
    this.reconnectInitialDelayMs = nonNegative("reconnectInitialDelayMs", options.reconnectInitialDelayMs ?? 100);
    this.reconnectMaxDelayMs = nonNegative("reconnectMaxDelayMs", options.reconnectMaxDelayMs ?? 5_000);
    this.#reconnectMaxAttempts = nonNegative("reconnectMaxAttempts", options.reconnectMaxAttempts ?? Number.POSITIVE_INFINITY);
    this.inboxExpiresMs = positive("inboxExpiresMs", options.inboxExpiresMs ?? 60_000);
    this.inboxExchange = options.inboxExchange ?? "stream.inbox";
    this.capabilities = Object.freeze({
      maxFrameBytes: positive("maxFrameBytes", options.maxFrameBytes ?? 16 * 1024 * 1024),
      // One queue with one active consumer keeps broker order; competing consumers do not.
      ordering: this.#singleActiveConsumer ? "per-key" : "none",
      redelivery: true,
      retention: "until-consumed",
      exclusiveConsumer: this.#singleActiveConsumer,
      brokerAcks: true,
    });
  }

  // --- publish -------------------------------------------------------------------------------

  // async: a bad name rejects. Nothing is awaited before the frame joins the queue, so call order holds.
  async publish(channel: string, frame: Uint8Array, options: PublishOptions): Promise<void> {
    assertChannelName(channel, this.name);
    const invalid = this.#checkOpen();
    if (invalid) throw invalid;
    if (frame.byteLength > this.capabilities.maxFrameBytes) {
      throw transportError(
        `a frame of ${frame.byteLength} bytes is larger than maxFrameBytes (${this.capabilities.maxFrameBytes}); use a smaller chunk size or raise maxFrameBytes with the broker's max_message_size`,
        false,
      );
    }
    const { signal } = options;
    if (signal?.aborted) throw signal.reason;
    return await new Promise<void>((resolve, reject) => {
      const onAbort = () => job.reject(signal?.reason);
      const job: PublishJob = {
        channel,
        kind: options.kind,
        frame,
        settled: false,
        resolve: () => {
          if (job.settled) return;
          job.settled = true;
          signal?.removeEventListener("abort", onAbort);
          resolve();
        },
        reject: (error) => {
          if (job.settled) return;
          job.settled = true;
          signal?.removeEventListener("abort", onAbort);
          reject(error);
        },
      };
      signal?.addEventListener("abort", onAbort, { once: true });
      // One queue for every publish, taken in call order: frames reach the broker in that order.
      this.#jobs.push(job);
      if (!this.#pumping) void this.#pump();
    });
  }

  async #pump(): Promise<void> {
    this.#pumping = true;
    try {
      while (this.#jobs.length > 0) {
        const job = this.#jobs[0] as PublishJob;
        if (job.settled) {
          this.#jobs.shift();
          continue;
        }
        let publisher: Publisher;
        try {
          const session = await this.#ensureSession();
          await this.#declare(session, job);
          publisher = session.publisher?.alive ? session.publisher : await this.#publisher(session);
        } catch (error) {
          this.#jobs.shift();
          job.reject(toTransportError(`publishing to ${job.channel} failed`, error));
          continue;
        }
        if (!publisher.writable) {
          // amqplib buffers what RabbitMQ has not read yet: wait until it has.
          await publisher.drained;
          continue;
        }
        this.#jobs.shift();
        if (!job.settled) this.#send(publisher, job);
      }
    } finally {
      this.#pumping = false;
    }
  }

  #send(publisher: Publisher, job: PublishJob): void {
    const { frame } = job;
    const content = Buffer.from(frame.buffer, frame.byteOffset, frame.byteLength);
    // Inbox frames go through the inbox exchange to every subscriber's queue (none: dropped);
    // stream frames through the default exchange to the destination queue.
    const inbox = job.kind === "inbox";
    publisher.pending.add(job);
    try {
      const writable = publisher.channel.publish(
        inbox ? this.inboxExchange : "",
        job.channel,
        content,
        { persistent: !inbox && this.#persistent, contentType: "application/octet-stream" },
        (error: unknown) => {
          publisher.pending.delete(job);
          if (error == null) job.resolve();
          else if ((error as Error).message === "message nacked") {
            job.reject(toTransportError(`RabbitMQ refused a frame for ${job.channel} (basic.nack)`, error, true));
          } else {
            job.reject(toTransportError("the channel closed before RabbitMQ confirmed the frame", publisher.cause ?? error, true));
          }
        },
      );
      if (!writable && publisher.writable) {
        publisher.writable = false;
        publisher.drained = new Promise((resolve) => {
          const done = () => {
            publisher.writable = true;
            publisher.channel.removeListener("drain", done);
            publisher.channel.removeListener("close", done);
            resolve();
          };
          publisher.channel.on("drain", done);
          publisher.channel.on("close", done);
        });
      }
    } catch (error) {
      publisher.pending.delete(job);
      job.reject(toTransportError(`publishing to ${job.channel} failed`, error, true));
    }
  }

  #publisher(session: Session): Promise<Publisher> {
    session.publisherOpening ??= session.connection
      .createConfirmChannel()
      .then((channel) => {
        const publisher: Publisher = {
          channel,
          alive: true,
          writable: true,
          drained: Promise.resolve(),
          pending: new Set(),
          cause: undefined,
        };
        channel.on("error", (error: unknown) => {
          publisher.cause = error;
        });
        channel.on("close", () => {
          publisher.alive = false;
          if (session.publisher === publisher) session.publisher = undefined;
          // The broker closes a channel for a publish it refuses (an exchange gone): declare again.
          session.declared.clear();
          const error = toTransportError(
            "the channel closed before RabbitMQ confirmed the frame",
            publisher.cause ?? session.cause ?? "channel closed",
            true,
          );
          for (const job of publisher.pending) job.reject(error);
          publisher.pending.clear();
        });
        session.publisher = publisher;
        return publisher;
      })
      .finally(() => {
        session.publisherOpening = undefined;
      });
    return session.publisherOpening;
  }

  /**
   * Declares, once per connection, what frames of this kind need: the inbox exchange, or the
   * destination queue, so that frames wait for a receiver that has not subscribed yet.
   */
  #declare(session: Session, job: PublishJob): Promise<void> {
    const inbox = job.kind === "inbox";
    // "" is no channel name, so it can stand for the inbox exchange.
    const key = inbox ? "" : job.channel;
    let declared = session.declared.get(key);
    if (declared === undefined) {
      declared = (
        inbox
          ? this.#withChannel(session, (amqp) => amqp.assertExchange(this.inboxExchange, "direct", { durable: true }))
          : this.#declareQueue(session, job.channel)
      ).catch((error: unknown) => {
        session.declared.delete(key);
        throw error;
      });
      session.declared.set(key, declared);
    }
    return declared;
  }

  async #declareQueue(session: Session, queue: string): Promise<void> {
    try {
      // A queue that exists is used as it is, whatever its arguments; only a missing one is declared.
      await this.#withChannel(session, (amqp) => amqp.checkQueue(queue));
    } catch (error) {
      if ((error as { code?: unknown }).code !== 404) throw error;
      await this.#withChannel(session, (amqp) => amqp.assertQueue(queue, this.streamQueueOptions()));
    }
  }

  /** Runs `use` on a channel of its own, so that a refusal (which closes the channel) harms nothing else. */
  async #withChannel(session: Session, use: (channel: RabbitmqChannel) => Promise<unknown>): Promise<void> {
    const channel = await session.connection.createChannel();
    let open = true;
    channel.on("error", () => {});
    channel.on("close", () => {
      open = false;
    });
    try {
      await use(channel);
    } finally {
      if (open) await channel.close().catch(() => {});
    }
  }

  // --- subscribe -----------------------------------------------------------------------------

  async subscribe(channel: string, handler: FrameHandler, options: SubscribeOptions): Promise<Subscription> {
    assertChannelName(channel, this.name);
    const invalid = this.#checkOpen();
    if (invalid) throw invalid;
    const { signal } = options;
    signal?.throwIfAborted();
    const session = await this.#ensureSession();
    const subscription = new RabbitmqSubscription(this, channel, handler, options.kind);
    await subscription.start(session);
    if (!session.alive || this.#session !== session) {
      await subscription.close();
      throw toTransportError(`subscribing to ${channel} failed`, session.cause ?? "the connection dropped", true);
    }
    this.#subscriptions.add(subscription);
    if (signal) {
      const onAbort = () => void subscription.close();
      signal.addEventListener("abort", onAbort, { once: true });
      if (signal.aborted) onAbort();
    }
    return subscription;
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
    return this.#state === "open" ? this.#session : undefined;
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
  }

  // --- connection ----------------------------------------------------------------------------

  #ensureSession(): Promise<Session> {
    switch (this.#state) {
      case "open":
        return Promise.resolve(this.#session as Session);
      case "connecting":
        return this.#connecting as Promise<Session>;
      case "idle":
        this.#state = "connecting";
        this.#connecting = this.#openSession().then(
          (session) => {
            this.#connecting = undefined;
            if (this.#state !== "connecting" || !session.alive) {
              this.#discard(session);
              if (this.#state === "connecting") this.#state = "idle";
              throw this.#checkOpen() ?? transportError("the connection dropped while opening; try again", true);
            }
            this.#session = session;
            this.#state = "open";
            return session;
          },
          (error: unknown) => {
            this.#connecting = undefined;
            if (this.#state === "connecting") this.#state = "idle";
            throw toTransportError("connecting to RabbitMQ failed", error);
          },
        );
        return this.#connecting;
      case "reconnecting":
        return Promise.reject(transportError("the connection to RabbitMQ dropped and is being re-established; try again shortly", true));
      case "failed":
        return Promise.reject(this.#failure);
      case "closed":
        return Promise.reject(this.#checkOpen());
    }
  }

  async #openSession(): Promise<Session> {
    const source = this.#options.connection;
    let connection: RabbitmqConnection;
    let owned = true;
    if (source === undefined) {
      const socketOptions = {
        ...this.#options.socketOptions,
        clientProperties: { connection_name: "@stream/rabbitmq", ...(this.#options.socketOptions?.clientProperties as object) },
      };
      connection = (await connect(this.#options.url ?? DEFAULT_URL, socketOptions)) as unknown as RabbitmqConnection;
    } else if (typeof source === "function") {
      connection = await source();
    } else {
      if (this.#readyConnectionUsed) throw this.#readyConnectionLost(undefined);
      this.#readyConnectionUsed = true;
      connection = source;
      owned = false;
    }
    const onError = (error: unknown) => {
      session.cause = error;
    };
    const onClose = (error?: unknown) => this.#lost(session, error ?? session.cause);
    connection.on("error", onError);
    connection.on("close", onClose);
    const session: Session = new Session(connection, owned, () => {
      connection.removeListener("error", onError);
      connection.removeListener("close", onClose);
    });
    return session;
  }

  /** Called when a session's connection closes, whoever closed it. */
  #lost(session: Session, cause: unknown): void {
    if (!session.alive) return;
    session.alive = false;
    session.cause = cause;
    session.detach();
    const error = toTransportError("the connection to RabbitMQ dropped before the broker confirmed the frame", cause ?? "connection closed", true);
    const publisher = session.publisher;
    if (publisher) {
      for (const job of publisher.pending) job.reject(error);
      publisher.pending.clear();
    }
    if (this.#session !== session) return;
    this.#session = undefined;
    if (this.#state === "closed" || this.#state === "reconnecting") return; // A reconnect loop is already running.
    this.report(toTransportError("the connection to RabbitMQ dropped; reconnecting", cause ?? "connection closed", true));
    if (this.#options.connection !== undefined && typeof this.#options.connection !== "function") {
      this.#fail(this.#readyConnectionLost(cause));
      return;
    }
    void this.#reconnect();
  }

  async #reconnect(): Promise<void> {
    this.#state = "reconnecting";
    let delayMs = this.reconnectInitialDelayMs;
    for (let attempt = 1; ; attempt++) {
      if (attempt > this.#reconnectMaxAttempts) {
        this.#fail(
          transportError(
            `gave up reconnecting to RabbitMQ after ${this.#reconnectMaxAttempts} attempts; check the broker, then create a new transport`,
            false,
          ),
        );
        return;
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, delayMs * (0.8 + Math.random() * 0.4));
        this.#wakeReconnect = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.#wakeReconnect = undefined;
      delayMs = Math.min(delayMs * 2, this.reconnectMaxDelayMs);
      if (this.#state !== "reconnecting") return;
      let session: Session | undefined;
      try {
        session = await this.#openSession();
        if (this.#state !== "reconnecting") {
          this.#discard(session);
          return;
        }
        this.#session = session;
        for (const subscription of [...this.#subscriptions]) {
          try {
            await subscription.start(session);
          } catch (error) {
            if ((error as { retryable?: boolean }).retryable !== false) throw error;
            // For good (the queue's arguments changed under us): this one cannot come back.
            this.report(error as Error);
            await subscription.close();
          }
        }
        if (!session.alive) throw session.cause ?? new Error("connection closed while resubscribing");
        this.#state = "open";
        return;
      } catch (error) {
        if (this.#state !== "reconnecting") return;
        this.report(toTransportError(`reconnecting to RabbitMQ failed (attempt ${attempt})`, error, true));
        if (session) {
          if (this.#session === session) this.#session = undefined;
          this.#discard(session);
        }
      }
    }
  }

  /** Gives up on a session: marks it dead and closes its connection if it is ours. */
  #discard(session: Session): void {
    session.alive = false;
    session.detach();
    if (session.owned) session.connection.close().catch(() => {});
  }

  #fail(error: Error): void {
    this.#state = "failed";
    this.#failure = error;
    this.report(error);
  }

  #readyConnectionLost(cause: unknown): Error {
    return transportError(
      "the connection passed as `connection` has closed, and the transport cannot re-open a connection it was given; pass a factory (`connection: () => amqplib.connect(url)`) or `url` to let it reconnect",
      false,
      cause,
    );
  }

  #checkOpen(): Error | undefined {
    if (this.#state === "closed") return transportError("the transport is closed; create a new one", false);
    if (this.#state === "failed") return this.#failure;
    return undefined;
  }

  // --- close ---------------------------------------------------------------------------------

  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    const connecting = this.#connecting;
    this.#state = "closed";
    this.#wakeReconnect?.();
    const closed = transportError("the transport was closed before the frame was published", false);
    for (const job of this.#jobs.splice(0)) job.reject(closed);
    await Promise.allSettled([...this.#subscriptions].map((subscription) => subscription.close()));
    await connecting?.catch(() => {});
    const session = this.#session;
    this.#session = undefined;
    if (!session?.alive) return;
    const pending = [...(session.publisher?.pending ?? [])];
    if (pending.length > 0) {
      // Let frames already on the wire be confirmed rather than fail them on our way out.
      const settled = Promise.allSettled(pending.map((job) => new Promise<void>((resolve) => waitSettled(job, resolve))));
      await Promise.race([settled, new Promise((resolve) => setTimeout(resolve, CLOSE_CONFIRM_WAIT_MS).unref())]);
    }
    session.alive = false;
    session.detach();
    if (session.owned) {
      await session.connection.close().catch(() => {});
    } else {
      await session.publisher?.channel.close().catch(() => {});
    }
  }
}

/** Calls `done` once `job` settles, without changing how it settles. */
function waitSettled(job: PublishJob, done: () => void): void {
  const { resolve, reject } = job;
  job.resolve = () => {
    resolve();
    done();
  };
  job.reject = (error) => {
    reject(error);
    done();
  };
}

function positive(name: string, value: number): number {
  if (!(value > 0)) throw new RangeError(`[stream] [rabbitmq] ${name} must be a positive number, got ${value}`);
  return value;
}

function nonNegative(name: string, value: number): number {
  if (!(value >= 0)) throw new RangeError(`[stream] [rabbitmq] ${name} must be zero or more, got ${value}`);
  return value;
}
