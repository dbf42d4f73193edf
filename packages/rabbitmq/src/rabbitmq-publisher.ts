import type { ChannelKind, PublishOptions } from "@stream/core";
import { type ConnectionSupervisor, PendingCall } from "@stream/core/adapter-kit";
import type { RabbitmqChannel, RabbitmqConfirmChannel } from "./rabbitmq-client";
import type { Session } from "./rabbitmq-connection";
import { toTransportError, transportError } from "./rabbitmq-errors";

/** A publish waiting for its turn or for the broker's confirm. Settles once. */
export class PublishJob extends PendingCall {
  constructor(
    readonly channel: string,
    readonly kind: ChannelKind,
    readonly frame: Uint8Array,
    signal: AbortSignal | undefined,
    /** `PublishOptions.expiresAtMs`: sent as the message's `expiration`, counted from when it is sent. */
    readonly expiresAtMs: number | undefined,
  ) {
    super(signal);
  }
}

/** The confirm channel frames are published on, and the frames it has not had confirmed yet. */
export interface Publisher {
  readonly channel: RabbitmqConfirmChannel;
  alive: boolean;
  /** False after `publish` returned false, until `drain`. */
  writable: boolean;
  /** Resolves on `drain` or `close` while not writable. */
  drained: Promise<void>;
  readonly pending: Set<PublishJob>;
  cause: unknown;
}

/** What the publisher needs to know of the transport's settings. */
export interface PublisherSettings {
  readonly inboxExchange: string;
  readonly persistent: boolean;
  /** Arguments of `assertQueue` for a destination queue. */
  streamQueueOptions(): Record<string, unknown>;
}

/**
 * Publishes frames with publisher confirms, one queue of jobs for every publish so frames reach
 * the broker in call order; declares, once per connection, what a frame's kind needs.
 */
export class RabbitmqPublisher {
  readonly #jobs: PublishJob[] = [];
  #pumping = false;

  constructor(
    private readonly supervisor: ConnectionSupervisor<Session>,
    private readonly settings: PublisherSettings,
  ) {}

  /** Resolves once RabbitMQ confirmed the frame. */
  publish(channel: string, frame: Uint8Array, options: PublishOptions): Promise<void> {
    const job = new PublishJob(channel, options.kind, frame, options.signal, options.expiresAtMs);
    if (job.settled) return job.promise;
    this.#jobs.push(job);
    if (!this.#pumping) void this.#pump();
    return job.promise;
  }

  /** Fails the publishes that have not reached the broker yet. */
  close(): void {
    const closed = transportError("the transport was closed before the frame was published", false);
    for (const job of this.#jobs.splice(0)) job.reject(closed);
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
          const session = await this.supervisor.connection();
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
        inbox ? this.settings.inboxExchange : "",
        job.channel,
        content,
        {
          persistent: !inbox && this.settings.persistent,
          contentType: "application/octet-stream",
          // Per-message TTL, relative ms as a string; "0" (already due) still reaches a consumer
          // that is ready for it, and is dropped otherwise.
          ...(job.expiresAtMs === undefined ? {} : { expiration: String(Math.max(0, Math.ceil(job.expiresAtMs - Date.now()))) }),
        },
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
          ? withChannel(session, (amqp) => amqp.assertExchange(this.settings.inboxExchange, "direct", { durable: true }))
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
      await withChannel(session, (amqp) => amqp.checkQueue(queue));
    } catch (error) {
      if ((error as { code?: unknown }).code !== 404) throw error;
      await withChannel(session, (amqp) => amqp.assertQueue(queue, this.settings.streamQueueOptions()));
    }
  }
}

/** Runs `use` on a channel of its own, so that a refusal (which closes the channel) harms nothing else. */
async function withChannel(session: Session, use: (channel: RabbitmqChannel) => Promise<unknown>): Promise<void> {
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
