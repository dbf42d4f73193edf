import { randomUUID } from "node:crypto";
import {
  TRANSPORT_SPECIFICATION_VERSION,
  TransportError,
  type ChannelKind,
  type FrameHandler,
  type PublishOptions,
  type SubscribeOptions,
  type Subscription,
  type Transport,
  type TransportCapabilities,
} from "@stream/core";
import { Kafka, Partitioners, logLevel, type Admin, type Consumer, type EachMessagePayload, type Producer } from "kafkajs";
import { isRetryableKafkaError, kafkaErrorType, toTransportError } from "./kafka-errors";
import type { KafkaTransportOptions } from "./kafka-transport-options";
import { OrderedBatchQueue, type QueuedMessage } from "./ordered-batch-queue";
import { toTopicName } from "./topic-name";

const MiB = 1024 * 1024;
/** Kafka's stock `message.max.bytes`: topics get their own `max.message.bytes` only above it. */
const BROKER_DEFAULT_MESSAGE_MAX_BYTES = 1_048_588;
/** Room for the record batch header and per-record framing on top of keys and values. */
const RECORD_BATCH_OVERHEAD_BYTES = 16 * 1024;
/**
 * Most bytes per produce request by default. kafkajs copies a request several times while encoding
 * it; batches the size of a 16 MiB window put the sender past 250 MB of RSS in the bench.
 */
const DEFAULT_MAX_BATCH_BYTES = MiB;
/** Attempts at an admin request when its connection drops (backoff 200 ms, 400 ms, ...). */
const ADMIN_ATTEMPTS = 5;

type Resolved = Required<Omit<KafkaTransportOptions, "client" | "kafkaConfig" | "brokers">>;

function positiveInteger(name: string, value: number): number {
  if (!Number.isSafeInteger(value) || value < 1) {
    throw new RangeError(`[stream] [kafka] ${name} must be a positive integer, got ${value}`);
  }
  return value;
}

function resolveOptions(options: KafkaTransportOptions): Resolved {
  const maxFrameBytes = positiveInteger("maxFrameBytes", options.maxFrameBytes ?? 1_000_000);
  const maxBatchBytes = positiveInteger("maxBatchBytes", options.maxBatchBytes ?? Math.min(maxFrameBytes, DEFAULT_MAX_BATCH_BYTES));
  const maxBytesPerPartition = positiveInteger("maxBytesPerPartition", options.maxBytesPerPartition ?? Math.max(4 * MiB, maxFrameBytes));
  return {
    maxFrameBytes,
    maxBatchBytes,
    numPartitions: positiveInteger("numPartitions", options.numPartitions ?? 4),
    replicationFactor: options.replicationFactor ?? -1,
    topicPrefix: options.topicPrefix ?? "",
    groupId: options.groupId ?? ((topic) => `stream.${topic}`),
    fromBeginning: options.fromBeginning ?? true,
    deleteInboxOnClose: options.deleteInboxOnClose ?? true,
    sessionTimeoutMs: positiveInteger("sessionTimeoutMs", options.sessionTimeoutMs ?? 10_000),
    rebalanceTimeoutMs: positiveInteger("rebalanceTimeoutMs", options.rebalanceTimeoutMs ?? 20_000),
    heartbeatIntervalMs: positiveInteger("heartbeatIntervalMs", options.heartbeatIntervalMs ?? 1_000),
    maxWaitTimeMs: positiveInteger("maxWaitTimeMs", options.maxWaitTimeMs ?? 500),
    maxBytesPerPartition,
    maxBytes: positiveInteger("maxBytes", options.maxBytes ?? Math.max(8 * MiB, maxBytesPerPartition)),
    ackTimeoutMs: positiveInteger("ackTimeoutMs", options.ackTimeoutMs ?? 30_000),
    subscribeTimeoutMs: positiveInteger("subscribeTimeoutMs", options.subscribeTimeoutMs ?? 60_000),
  };
}

/** Consumer groups of an inbox's subscribers start with this, then a UUID. */
const inboxGroupPrefix = (topic: string): string => `stream.inbox.${topic}.`;

function closedError(): TransportError {
  return new TransportError({
    message: "[stream] [kafka] the transport is closed; create a new transport with createKafkaTransport()",
    retryable: false,
  });
}

function abortedError(reason: unknown): TransportError {
  return new TransportError({
    message: "[stream] [kafka] publish aborted before Kafka acknowledged the frame; it may still be delivered",
    cause: reason,
    retryable: false,
  });
}

/** Lazily creates a value once; forgets a failed attempt so the next call tries again. */
function lazy<T>(create: () => Promise<T>): { get(): Promise<T>; peek(): Promise<T> | undefined } {
  let promise: Promise<T> | undefined;
  return {
    get() {
      promise ??= create().catch((error: unknown) => {
        promise = undefined;
        throw error;
      });
      return promise;
    },
    peek: () => promise,
  };
}

/**
 * One subscription: a kafkajs consumer in its own group (stream channels: the destination's shared
 * group; inboxes: a group of its own), restarted when it crashes and re-created when kafkajs
 * gives up on it, until closed.
 */
class KafkaSubscription implements Subscription {
  private consumer: Consumer | undefined;
  private closed = false;
  private closing: Promise<void> | undefined;
  private restartTimer: NodeJS.Timeout | undefined;
  private restartAttempt = 0;
  /** Ends the wait for a pending handler when the subscription closes, so `disconnect` never hangs. */
  private readonly closedSignal = new AbortController();
  /** Handled offsets not yet committed, by topic and partition: the next offset to read. */
  private readonly uncommitted = new Map<string, { topic: string; partition: number; offset: string }>();
  private committing: Promise<void> | undefined;

  constructor(
    private readonly kafka: Kafka,
    private readonly topic: string,
    private readonly groupId: string,
    private readonly fromBeginning: boolean,
    private readonly handler: FrameHandler,
    private readonly settings: Resolved,
    private readonly onClosed: (subscription: KafkaSubscription) => Promise<void>,
  ) {}

  /** Starts the consumer; resolves once it has joined its group (and, reading from the end, fetched once). */
  async start(signal?: AbortSignal): Promise<void> {
    const consumer = this.createConsumer();
    this.consumer = consumer;
    const live = new Promise<void>((resolve, reject) => {
      let joined = false;
      const timer = setTimeout(() => {
        done();
        reject(
          new TransportError({
            message:
              `[stream] [kafka] consumer of topic ${this.topic} did not join group ${this.groupId} within ` +
              `${this.settings.subscribeTimeoutMs} ms; check the broker's group coordinator (offsets topic) and subscribeTimeoutMs`,
            retryable: true,
          }),
        );
      }, this.settings.subscribeTimeoutMs);
      const onAbort = (): void => {
        done();
        reject(
          new TransportError({
            message: `[stream] [kafka] subscribe to topic ${this.topic} aborted by its signal; subscribe again when needed`,
            cause: signal?.reason,
            retryable: false,
          }),
        );
      };
      signal?.addEventListener("abort", onAbort, { once: true });
      const removeJoin = consumer.on(consumer.events.GROUP_JOIN, () => {
        joined = true;
        // Reading from the beginning (or from committed offsets), nothing published from now on
        // can be skipped: joined is live.
        if (!this.fromBeginning) return;
        done();
        resolve();
      });
      // Starting at the end of the log, the offsets are resolved by the first fetch after the
      // join; only then is a frame published from now on sure to be delivered.
      const removeFetch = consumer.on(consumer.events.FETCH, () => {
        if (!joined) return;
        done();
        resolve();
      });
      const removeCrash = consumer.on(consumer.events.CRASH, (event) => {
        if (joined || event.payload.restart) return;
        done();
        reject(toTransportError(`consumer of topic ${this.topic} failed to start`, event.payload.error));
      });
      function done(): void {
        clearTimeout(timer);
        signal?.removeEventListener("abort", onAbort);
        removeJoin();
        removeFetch();
        removeCrash();
      }
    });
    live.catch(() => {}); // observed below; a failed run() must not leave it unhandled
    try {
      await this.run(consumer);
      await live;
    } catch (error) {
      await this.close();
      throw error instanceof TransportError ? error : toTransportError(`could not subscribe to topic ${this.topic}`, error);
    }
  }

  private createConsumer(): Consumer {
    const s = this.settings;
    return this.kafka.consumer({
      groupId: this.groupId,
      sessionTimeout: s.sessionTimeoutMs,
      rebalanceTimeout: s.rebalanceTimeoutMs,
      heartbeatInterval: s.heartbeatIntervalMs,
      maxWaitTimeInMs: s.maxWaitTimeMs,
      maxBytesPerPartition: s.maxBytesPerPartition,
      maxBytes: s.maxBytes,
      // Topics are created by the transport; never let a fetch re-create a deleted inbox.
      allowAutoTopicCreation: false,
    });
  }

  private async run(consumer: Consumer): Promise<void> {
    consumer.on(consumer.events.CRASH, (event) => {
      // kafkajs restarts itself after retriable crashes (a dropped connection); when it gives up,
      // start a fresh consumer so the subscription outlives any outage.
      if (!event.payload.restart && !this.closed && consumer === this.consumer) this.scheduleRecreate();
    });
    consumer.on(consumer.events.GROUP_JOIN, () => {
      if (consumer === this.consumer) this.restartAttempt = 0;
    });
    await consumer.connect();
    await consumer.subscribe({ topics: [this.topic], fromBeginning: this.fromBeginning });
    await consumer.run({
      autoCommit: false,
      partitionsConsumedConcurrently: 1,
      eachMessage: (payload) => this.deliver(consumer, payload),
    });
  }

  private scheduleRecreate(): void {
    const delayMs = Math.min(30_000, 500 * 2 ** this.restartAttempt++);
    this.restartTimer = setTimeout(() => {
      this.restartTimer = undefined;
      if (this.closed) return;
      const old = this.consumer;
      const consumer = this.createConsumer();
      this.consumer = consumer;
      void old?.disconnect().catch(() => {});
      this.run(consumer).catch(() => {
        if (!this.closed && consumer === this.consumer) this.scheduleRecreate();
      });
    }, delayMs);
  }

  /**
   * Hands one record to core, keeps the group membership alive while core holds it, then commits
   * its offset: the committed offset is Kafka's acknowledgement. A rejection leaves the offset
   * uncommitted and rethrows, so kafkajs fetches the record again (redelivery).
   */
  private async deliver(consumer: Consumer, { topic, partition, message, heartbeat }: EachMessagePayload): Promise<void> {
    if (this.closed) return; // not committed: the group redelivers it to whoever comes next
    const value = message.value ?? Buffer.alloc(0);
    const frame = new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
    const beat = setInterval(() => void heartbeat().catch(() => {}), this.settings.heartbeatIntervalMs);
    try {
      await new Promise<void>((resolve, reject) => {
        // Closing: stop waiting, commit nothing; the group redelivers the frame to whoever comes next.
        const onClose = (): void => resolve();
        if (this.closedSignal.signal.aborted) return onClose();
        this.closedSignal.signal.addEventListener("abort", onClose, { once: true });
        Promise.resolve()
          .then(() => this.handler(frame))
          .then(resolve, reject)
          .finally(() => this.closedSignal.signal.removeEventListener("abort", onClose));
      });
    } finally {
      clearInterval(beat);
    }
    if (this.closed) return;
    this.commitLater(consumer, topic, partition, (BigInt(message.offset) + 1n).toString());
  }

  /**
   * Commits handled offsets in the background, at most one commit request in flight, each carrying
   * the latest handled offset of every partition. Awaiting a commit per record would cost a round
   * trip per frame; a record handled but not yet committed when a consumer dies is redelivered,
   * and core drops the duplicate.
   */
  private commitLater(consumer: Consumer, topic: string, partition: number, offset: string): void {
    this.uncommitted.set(`${topic}\u0000${partition}`, { topic, partition, offset });
    if (this.committing) return;
    this.committing = (async () => {
      while (this.uncommitted.size > 0 && consumer === this.consumer) {
        const offsets = [...this.uncommitted.values()];
        this.uncommitted.clear();
        try {
          await consumer.commitOffsets(offsets);
        } catch {
          // A rebalance or a lost connection: the new owner of the partition reads from the last
          // committed offset, so these frames are redelivered (and deduplicated by core).
        }
      }
    })().finally(() => (this.committing = undefined));
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      this.closed = true;
      this.closedSignal.abort();
      if (this.restartTimer) clearTimeout(this.restartTimer);
      await this.committing; // commit what core has taken while the consumer still runs
      try {
        await this.consumer?.disconnect();
      } catch {
        // Already gone with its connection; the group forgets it after the session timeout.
      }
      await this.onClosed(this);
    })();
    return this.closing;
  }
}

/** The kafkajs-backed {@link Transport}. */
class KafkaTransport implements Transport {
  readonly specificationVersion = TRANSPORT_SPECIFICATION_VERSION;
  readonly name = "kafka";
  readonly capabilities: TransportCapabilities;

  private readonly settings: Resolved;
  private readonly kafka: { get(): Promise<Kafka> };
  private readonly producer: ReturnType<typeof lazy<Producer>>;
  private readonly admin: ReturnType<typeof lazy<Admin>>;
  private readonly topics = new Map<string, Promise<void>>();
  private readonly queues = new Map<string, OrderedBatchQueue>();
  private readonly subscriptions = new Set<KafkaSubscription>();
  private closing: Promise<void> | undefined;

  constructor(options: KafkaTransportOptions) {
    this.settings = resolveOptions(options);
    this.capabilities = Object.freeze({
      maxFrameBytes: this.settings.maxFrameBytes,
      ordering: "per-key",
      redelivery: true,
      retention: "log",
      exclusiveConsumer: true,
      brokerAcks: true,
    });
    const { client } = options;
    this.kafka = lazy(async () => {
      if (client === undefined) {
        return new Kafka({
          clientId: "stream",
          // kafkajs logs every error answer it handles itself (a topic that exists, a rebalance);
          // what matters reaches the caller as a TransportError.
          logLevel: logLevel.NOTHING,
          ...options.kafkaConfig,
          brokers: options.brokers ?? ["127.0.0.1:9092"],
        });
      }
      return typeof client === "function" ? await client() : client;
    });
    this.producer = lazy(async () => {
      const producer = (await this.kafka.get()).producer({
        createPartitioner: Partitioners.DefaultPartitioner,
        allowAutoTopicCreation: false,
        // One request in flight per channel (OrderedBatchQueue) keeps call order; kafkajs'
        // idempotent mode does not support concurrent sends, so it stays off.
        idempotent: false,
      });
      await producer.connect();
      return producer;
    });
    this.admin = lazy(async () => {
      const admin = (await this.kafka.get()).admin();
      await admin.connect();
      return admin;
    });
  }

  async publish(channel: string, frame: Uint8Array, options: PublishOptions): Promise<void> {
    if (this.closing) throw closedError();
    if (frame.byteLength > this.settings.maxFrameBytes) {
      throw new TransportError({
        message:
          `[stream] [kafka] frame of ${frame.byteLength} bytes exceeds maxFrameBytes ${this.settings.maxFrameBytes}; ` +
          "send smaller chunks or raise maxFrameBytes together with the broker's message.max.bytes",
        retryable: false,
      });
    }
    const topic = toTopicName(channel, this.settings.topicPrefix);
    let queue = this.queues.get(topic);
    if (!queue) {
      const { kind } = options;
      const created: OrderedBatchQueue = new OrderedBatchQueue(
        (messages) => this.send(topic, kind, messages),
        this.settings.maxBatchBytes,
        abortedError,
        // An idle queue holds nothing: forget it, so one per inbox ever written to does not pile up.
        () => void (this.queues.get(topic) === created && this.queues.delete(topic)),
      );
      queue = created;
      this.queues.set(topic, queue);
    }
    const value = Buffer.from(frame.buffer, frame.byteOffset, frame.byteLength);
    return queue.push({ key: options.key, value }, options.signal);
  }

  private async send(topic: string, kind: ChannelKind, messages: readonly QueuedMessage[]): Promise<void> {
    try {
      if (kind === "inbox") {
        // An inbox whose subscribers have all gone (and deleted it): nobody is left to read the frame.
        if (!(await this.hasTopic(topic))) return;
      } else {
        // Durable: a sender may start before any receiver, so the destination's topic is made here too.
        await this.ensureTopic(topic, this.settings.numPartitions);
      }
      const producer = await this.producer.get();
      await producer.send({
        topic,
        acks: -1,
        timeout: this.settings.ackTimeoutMs,
        messages: messages.map(({ key, value }) => ({ key, value })),
      });
    } catch (error) {
      if (kind === "inbox" && kafkaErrorType(error) === "UNKNOWN_TOPIC_OR_PARTITION") {
        this.topics.delete(topic);
        if (!(await this.hasTopic(topic).catch(() => true))) return; // deleted meanwhile: dropped, as above
      }
      throw toTransportError(`publish of ${messages.length} frame(s) to topic ${topic} failed`, error);
    }
  }

  async subscribe(channel: string, handler: FrameHandler, options: SubscribeOptions): Promise<Subscription> {
    if (this.closing) throw closedError();
    const topic = toTopicName(channel, this.settings.topicPrefix);
    const inbox = options.kind === "inbox";
    try {
      await this.ensureTopic(topic, inbox ? 1 : this.settings.numPartitions);
    } catch (error) {
      throw toTransportError(`could not create topic ${topic}`, error);
    }
    let kafka: Kafka;
    try {
      kafka = await this.kafka.get();
    } catch (error) {
      throw toTransportError("could not get the kafkajs client", error);
    }
    // An inbox has a group of its own so this subscriber sees every frame; it reads its fresh
    // topic from the beginning so nothing published right after subscribe resolves is missed.
    const groupId = inbox ? `${inboxGroupPrefix(topic)}${randomUUID()}` : this.settings.groupId(topic);
    const subscription = new KafkaSubscription(
      kafka,
      topic,
      groupId,
      inbox ? true : this.settings.fromBeginning,
      handler,
      this.settings,
      async (closed) => {
        this.subscriptions.delete(closed);
        if (inbox && this.settings.deleteInboxOnClose) await this.deleteInbox(topic, groupId);
      },
    );
    this.subscriptions.add(subscription);
    await subscription.start(options.signal);
    options.signal?.addEventListener("abort", () => void subscription.close(), { once: true });
    return subscription;
  }

  /**
   * Creates a topic once per transport; an existing topic is left as it is. kafkajs retries produce
   * and fetch requests over a reconnect but not admin requests, so a few attempts are made here.
   */
  private ensureTopic(topic: string, numPartitions: number): Promise<void> {
    let ready = this.topics.get(topic);
    if (!ready) {
      ready = this.withAdminRetry(() => this.createTopic(topic, numPartitions));
      this.topics.set(topic, ready);
      ready.catch(() => this.topics.delete(topic));
    }
    return ready;
  }

  /** Whether the topic exists (known to this transport, or listed by the broker). */
  private async hasTopic(topic: string): Promise<boolean> {
    const known = this.topics.get(topic);
    if (known && (await known.then(() => true, () => false))) return true;
    const exists = await this.withAdminRetry(async () => (await (await this.admin.get()).listTopics()).includes(topic));
    if (exists) this.topics.set(topic, Promise.resolve());
    return exists;
  }

  private async withAdminRetry<T>(operation: () => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await operation();
      } catch (error) {
        if (attempt >= ADMIN_ATTEMPTS || this.closing || !isRetryableKafkaError(error)) throw error;
        await new Promise((resolve) => setTimeout(resolve, 100 * 2 ** attempt));
      }
    }
  }

  private async createTopic(topic: string, numPartitions: number): Promise<void> {
    const admin = await this.admin.get();
    // Look first: kafkajs logs the broker's TOPIC_ALREADY_EXISTS answer as an error.
    if ((await admin.listTopics()).includes(topic)) return;
    // The largest record batch: a full batch, or one frame larger than a batch (it goes alone).
    const largest = Math.max(this.settings.maxBatchBytes, this.settings.maxFrameBytes) + RECORD_BATCH_OVERHEAD_BYTES;
    const needsLimit = largest > BROKER_DEFAULT_MESSAGE_MAX_BYTES;
    await admin.createTopics({
      waitForLeaders: true,
      topics: [
        {
          topic,
          numPartitions,
          replicationFactor: this.settings.replicationFactor,
          configEntries: needsLimit
            ? [{ name: "max.message.bytes", value: String(largest) }]
            : [],
        },
      ],
    });
  }

  private async deleteInbox(topic: string, groupId: string): Promise<void> {
    this.topics.delete(topic);
    try {
      const admin = await this.admin.get();
      await admin.deleteGroups([groupId]).catch(() => {});
      // Another subscriber of the same inbox (rare: core has one per client) keeps it alive.
      const others = (await admin.listGroups()).groups
        .map((group) => group.groupId)
        .filter((id) => id.startsWith(`${inboxGroupPrefix(topic)}`) && id !== groupId);
      if (others.length > 0 && (await admin.describeGroups(others)).groups.some((group) => group.members.length > 0)) return;
      if (!(await admin.listTopics()).includes(topic)) return;
      await admin.deleteTopics({ topics: [topic], timeout: 5_000 });
    } catch {
      // Best effort: a leftover inbox topic costs disk until retention, nothing else.
    }
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      await Promise.allSettled([...this.subscriptions].map((subscription) => subscription.close()));
      await Promise.allSettled([...this.queues.values()].map((queue) => queue.close(closedError())));
      const producer = this.producer.peek();
      const admin = this.admin.peek();
      await Promise.allSettled([
        producer?.then((p) => p.disconnect()),
        admin?.then((a) => a.disconnect()),
      ]);
    })();
    return this.closing;
  }
}

/**
 * Creates a {@link Transport} that moves frames through Apache Kafka with kafkajs.
 *
 * - A `"stream"` channel is a topic (created when missing, `numPartitions` partitions) read by one
 *   consumer group per destination: receivers compete, and frames keyed by stream id keep each
 *   stream on one partition, so on one receiver, in order.
 * - An `"inbox"` channel is a one-partition topic read by a group unique to its subscriber, deleted
 *   when the subscription closes.
 * - `publish` resolves when the broker acknowledged with `acks=all`; `subscribe` commits a record's
 *   offset only after the handler resolved, so an unhandled frame is redelivered.
 *
 * @example
 * ```ts
 * import { createStreamClient } from "@stream/core";
 * import { createKafkaTransport } from "@stream/kafka";
 *
 * const client = createStreamClient({ transport: createKafkaTransport({ brokers: ["127.0.0.1:9092"] }) });
 * ```
 */
export function createKafkaTransport(options: KafkaTransportOptions = {}): Transport {
  return new KafkaTransport(options);
}
