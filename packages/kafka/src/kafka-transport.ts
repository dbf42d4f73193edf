import { randomUUID } from "node:crypto";
import {
  TRANSPORT_SPECIFICATION_VERSION,
  type ChannelKind,
  type FrameHandler,
  type PublishOptions,
  type SubscribeOptions,
  type Subscription,
  type Transport,
  type TransportCapabilities,
} from "@stream/core";
import { Lazy, SubscriptionSet, channelMap, type RetryPolicy, withRetries } from "@stream/core/adapter-kit";
import type { KafkaClient } from "./kafka-client";
import { isRetryableKafkaError, kafkaErrorType, kafkaErrors, toTransportError } from "./kafka-errors";
import { KafkaSubscription } from "./kafka-subscription";
import { resolveKafkaSettings, type KafkaTransportOptions, type ResolvedKafkaSettings } from "./kafka-transport-options";
import { createKafkajsClient } from "./kafkajs-client";
import { OrderedBatchQueue, type QueuedMessage } from "./ordered-batch-queue";
import { createPlatformaticClient } from "./platformatic-client";
import { toTopicName } from "./topic-name";

/** Kafka's stock `message.max.bytes`: topics get their own `max.message.bytes` only above it. */
const BROKER_DEFAULT_MESSAGE_MAX_BYTES = 1_048_588;
/** Room for the record batch header and per-record framing on top of keys and values. */
const RECORD_BATCH_OVERHEAD_BYTES = 16 * 1024;
/** Admin calls (list and create topics): 5 attempts, 200 ms doubling, while the error is retryable. */
const ADMIN_RETRY: RetryPolicy = { retries: 4, initialDelayMs: 200, maxDelayMs: 1600, deadlineMs: Number.POSITIVE_INFINITY };

/** Consumer groups of an inbox's subscribers start with this, then a UUID. */
const inboxGroupPrefix = (topic: string): string => `stream.inbox.${topic}.`;

const abortedError = (reason: unknown) =>
  kafkaErrors.error("publish aborted before Kafka acknowledged the frame; it may still be delivered", false, reason);

/**
 * The client library the options pick: `kafkajs` or `kafkaConfig` run on kafkajs, anything else
 * on `@platformatic/kafka`. Each library is imported only when picked.
 */
function createKafkaClient(options: KafkaTransportOptions, settings: ResolvedKafkaSettings): Promise<KafkaClient> {
  return options.kafkajs !== undefined || options.kafkaConfig !== undefined
    ? createKafkajsClient(options, settings)
    : createPlatformaticClient(options, settings);
}

/** The Kafka {@link Transport}, on whichever {@link KafkaClient} the options picked. */
class KafkaTransport implements Transport {
  readonly specificationVersion = TRANSPORT_SPECIFICATION_VERSION;
  readonly name = "kafka";
  readonly capabilities: TransportCapabilities;

  private readonly settings: ResolvedKafkaSettings;
  /** Made on first use; a failed attempt (a factory that threw) is tried again next time. */
  private readonly client: Lazy<KafkaClient>;
  private readonly topicOf: (channel: string, kind: ChannelKind) => string;
  private readonly topics = new Map<string, Promise<void>>();
  private readonly queues = new Map<string, OrderedBatchQueue>();
  private readonly subscriptions = new SubscriptionSet<KafkaSubscription>();
  private closing: Promise<void> | undefined;

  constructor(options: KafkaTransportOptions) {
    this.settings = resolveKafkaSettings(options);
    this.client = new Lazy(() => createKafkaClient(options, this.settings));
    const topic = (channel: string): string => toTopicName(channel, this.settings.topicPrefix);
    this.topicOf = channelMap(this.name, { stream: topic, inbox: topic });
    this.capabilities = Object.freeze({
      maxFrameBytes: this.settings.maxFrameBytes,
      ordering: "per-key",
      redelivery: true,
      retention: "log",
      exclusiveConsumer: true,
      brokerAcks: true,
      // Kafka has no per-message time to live: a topic keeps everything for its retention.ms.
      messageExpiry: false,
    });
  }

  async publish(channel: string, frame: Uint8Array, options: PublishOptions): Promise<void> {
    if (this.closing) throw kafkaErrors.closed();
    kafkaErrors.assertFrameSize(frame, this.settings.maxFrameBytes, "send smaller chunks or raise maxFrameBytes together with the broker's message.max.bytes");
    const topic = this.topicOf(channel, options.kind);
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
      await (await this.client.get()).produce(topic, messages);
    } catch (error) {
      if (kind === "inbox" && kafkaErrorType(error) === "UNKNOWN_TOPIC_OR_PARTITION") {
        this.topics.delete(topic);
        if (!(await this.hasTopic(topic).catch(() => true))) return; // deleted meanwhile: dropped, as above
      }
      throw toTransportError(`publish of ${messages.length} frame(s) to topic ${topic} failed`, error);
    }
  }

  async subscribe(channel: string, handler: FrameHandler, options: SubscribeOptions): Promise<Subscription> {
    if (this.closing) throw kafkaErrors.closed();
    const topic = this.topicOf(channel, options.kind);
    const inbox = options.kind === "inbox";
    try {
      await this.ensureTopic(topic, inbox ? 1 : this.settings.numPartitions);
    } catch (error) {
      throw toTransportError(`could not create topic ${topic}`, error);
    }
    const client = await this.client.get();
    // An inbox has a group of its own so this subscriber sees every frame; it reads its fresh
    // topic from the beginning so nothing published right after subscribe resolves is missed.
    const groupId = inbox ? `${inboxGroupPrefix(topic)}${randomUUID()}` : this.settings.groupId(topic);
    const spec = { topic, groupId, fromBeginning: inbox || this.settings.fromBeginning, subscribeTimeoutMs: this.settings.subscribeTimeoutMs };
    const subscription = new KafkaSubscription(client, spec, handler, async (closed) => {
      this.subscriptions.delete(closed);
      if (inbox && this.settings.deleteInboxOnClose) await this.deleteInbox(topic, groupId);
    });
    this.subscriptions.add(subscription, options.signal);
    await subscription.start(options.signal);
    return subscription;
  }

  /**
   * Creates a topic once per transport; an existing topic is left as it is. The clients retry
   * produce and fetch requests over a reconnect but kafkajs not admin requests, so a few attempts
   * are made here.
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
    const exists = await this.withAdminRetry(async () => (await (await this.client.get()).listTopics()).includes(topic));
    if (exists) this.topics.set(topic, Promise.resolve());
    return exists;
  }

  private withAdminRetry<T>(operation: () => Promise<T>): Promise<T> {
    return withRetries(operation, ADMIN_RETRY, { shouldRetry: (error) => !this.closing && isRetryableKafkaError(error) });
  }

  private async createTopic(topic: string, numPartitions: number): Promise<void> {
    const client = await this.client.get();
    // Look first: kafkajs logs the broker's TOPIC_ALREADY_EXISTS answer as an error.
    if ((await client.listTopics()).includes(topic)) return;
    // The largest record batch: a full batch, or one frame larger than a batch (it goes alone).
    const largest = Math.max(this.settings.maxBatchBytes, this.settings.maxFrameBytes) + RECORD_BATCH_OVERHEAD_BYTES;
    const config: Record<string, string> = largest > BROKER_DEFAULT_MESSAGE_MAX_BYTES ? { "max.message.bytes": String(largest) } : {};
    try {
      await client.createTopic(topic, numPartitions, this.settings.replicationFactor, config);
    } catch (error) {
      // Another transport created it meanwhile.
      if (kafkaErrorType(error) !== "TOPIC_ALREADY_EXISTS") throw error;
    }
  }

  private async deleteInbox(topic: string, groupId: string): Promise<void> {
    this.topics.delete(topic);
    try {
      const client = await this.client.get();
      await client.deleteGroup(groupId).catch(() => {});
      // Another subscriber of the same inbox (rare: core has one per client) keeps it alive.
      if ((await client.liveGroups(inboxGroupPrefix(topic))).some((id) => id !== groupId)) return;
      if (!(await client.listTopics()).includes(topic)) return;
      await client.deleteTopic(topic);
    } catch {
      // Best effort: a leftover inbox topic costs disk until retention, nothing else.
    }
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      await this.subscriptions.closeAll();
      await Promise.allSettled([...this.queues.values()].map((queue) => queue.close(kafkaErrors.closed())));
      await this.client.peek()?.then((client) => client.close(), () => {});
    })();
    return this.closing;
  }
}

/**
 * Creates a {@link Transport} that moves frames through Apache Kafka, on `@platformatic/kafka` by
 * default or on an injected kafkajs client (see {@link KafkaTransportOptions}).
 *
 * - A `"stream"` channel is a topic (created when missing, `numPartitions` partitions) read by one
 *   consumer group per destination: receivers compete, and frames keyed by stream id keep each
 *   stream on one partition, so on one receiver, in order.
 * - An `"inbox"` channel is a one-partition topic read by a group unique to its subscriber, deleted
 *   when the subscription closes.
 * - `publish` resolves when the broker acknowledged with `acks=all`; `subscribe` commits a record's
 *   offset only after the handler resolved, so an unhandled frame is redelivered.
 * - It has no `connection` (`Transport.connection`): neither client says reliably that it is
 *   reconnecting. kafkajs emits `DISCONNECT` only for `disconnect()`, and re-opens a dropped
 *   connection inside its request retries; `@platformatic/kafka` opens broker connections per
 *   request, lazily, and reports idle ones closed as well. A send's progress says
 *   `"reconnecting"` once a publish fails, after the client's own retries.
 *
 * @example
 * ```ts
 * import { createStreamClient } from "@stream/core";
 * import { createKafkaTransport } from "@stream/kafka";
 *
 * // @platformatic/kafka
 * const client = createStreamClient({ transport: createKafkaTransport({ brokers: ["127.0.0.1:9092"] }) });
 * // kafkajs
 * const other = createStreamClient({ transport: createKafkaTransport({ kafkajs: new Kafka({ brokers: ["127.0.0.1:9092"] }) }) });
 * ```
 */
export function createKafkaTransport(options: KafkaTransportOptions = {}): Transport {
  return new KafkaTransport(options);
}
