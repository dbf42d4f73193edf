import { Lazy } from "@stream/core/adapter-kit";
import type { Admin, Consumer, EachMessagePayload, Kafka, Producer } from "kafkajs";
import { importLibrary, type ConsumerRequest, type KafkaClient, type KafkaConsumer } from "./kafka-client";
import { kafkaErrorType, toTransportError } from "./kafka-errors";
import { type KafkaTransportOptions, kafkaTlsOptions, type ResolvedKafkaSettings } from "./kafka-transport-options";
import type { QueuedMessage } from "./ordered-batch-queue";

/**
 * The {@link KafkaClient} on kafkajs: the injected `Kafka` (`options.kafkajs`), or one made from
 * `brokers` and `kafkaConfig`. kafkajs is imported here, on first use.
 */
export async function createKafkajsClient(options: KafkaTransportOptions, settings: ResolvedKafkaSettings): Promise<KafkaClient> {
  const kafkajs = await importLibrary(() => import("kafkajs"), "kafkajs");
  const injected = options.kafkajs;
  const ssl = injected === undefined ? kafkaTlsOptions(options) : undefined;
  const kafka = new Lazy(async (): Promise<Kafka> => {
    if (injected === undefined) {
      // kafkajs logs every error answer it handles itself (a topic that exists, a rebalance); what
      // matters reaches the caller as a TransportError.
      return new kafkajs.Kafka({
        clientId: "stream",
        logLevel: kafkajs.logLevel.NOTHING,
        ...(ssl === undefined ? {} : { ssl }),
        ...options.kafkaConfig,
        brokers: settings.brokers,
      });
    }
    return (typeof injected === "function" ? await injected() : injected) as Kafka;
  });
  const producer = async () => {
    const created = (await kafka.get()).producer({
      createPartitioner: kafkajs.Partitioners.DefaultPartitioner,
      allowAutoTopicCreation: false,
      // One request in flight per channel keeps call order; kafkajs' idempotent mode does not
      // support concurrent sends, so it stays off.
      idempotent: false,
    });
    await created.connect();
    return created;
  };
  const admin = new Lazy(async () => {
    const created = (await kafka.get()).admin();
    await created.connect();
    return created;
  });
  return new KafkajsClient(settings, kafka, producer, admin);
}

class KafkajsClient implements KafkaClient {
  readonly library = "kafkajs";
  private producer: Lazy<Producer>;

  constructor(
    private readonly settings: ResolvedKafkaSettings,
    private readonly kafka: { get(): Promise<Kafka> },
    private readonly makeProducer: () => Promise<Producer>,
    private readonly admin: Lazy<Admin>,
  ) {
    this.producer = new Lazy(makeProducer);
  }

  async produce(topic: string, messages: readonly QueuedMessage[]): Promise<void> {
    const producer = this.producer;
    try {
      await (await producer.get()).send({
        topic,
        acks: -1,
        timeout: this.settings.ackTimeoutMs,
        messages: messages.map(({ key, value }) => ({ key, value })),
      });
    } catch (error) {
      // kafkajs keeps every topic a producer ever wrote to in its metadata requests; once one of
      // them is deleted (an inbox whose sender closed) each request fails with this code and the
      // producer can write to no new topic again. A fresh producer forgets them; the caller
      // tries again (a retryable error) or drops the frame (its topic is gone).
      if (kafkaErrorType(error) === "UNKNOWN_TOPIC_OR_PARTITION" && this.producer === producer) {
        this.producer = new Lazy(this.makeProducer);
        void producer.peek()?.then((stale) => stale.disconnect()).catch(() => {});
      }
      throw error;
    }
  }

  async listTopics(): Promise<string[]> {
    return (await this.admin.get()).listTopics();
  }

  async createTopic(topic: string, numPartitions: number, replicationFactor: number, config: Readonly<Record<string, string>>): Promise<void> {
    await (await this.admin.get()).createTopics({
      waitForLeaders: true,
      topics: [{ topic, numPartitions, replicationFactor, configEntries: Object.entries(config).map(([name, value]) => ({ name, value })) }],
    });
  }

  async deleteTopic(topic: string): Promise<void> {
    await (await this.admin.get()).deleteTopics({ topics: [topic], timeout: 5_000 });
  }

  async deleteGroup(groupId: string): Promise<void> {
    await (await this.admin.get()).deleteGroups([groupId]);
  }

  async liveGroups(prefix: string): Promise<string[]> {
    const admin = await this.admin.get();
    const ids = (await admin.listGroups()).groups.map((group) => group.groupId).filter((id) => id.startsWith(prefix));
    if (ids.length === 0) return [];
    return (await admin.describeGroups(ids)).groups.filter((group) => group.members.length > 0).map((group) => group.groupId);
  }

  consumer(request: ConsumerRequest): KafkaConsumer {
    return new KafkajsConsumer(this.kafka, this.settings, request);
  }

  async close(): Promise<void> {
    await Promise.allSettled([this.producer.peek()?.then((p) => p.disconnect()), this.admin.peek()?.then((a) => a.disconnect())]);
  }
}

/**
 * A kafkajs consumer with `eachMessage`: kafkajs awaits each record's handler, and a handler that
 * throws makes it fetch the same record again. It restarts itself after a retriable crash; when it
 * gives up, {@link ConsumerRequest.onFailure} says so.
 */
class KafkajsConsumer implements KafkaConsumer {
  private consumer: Consumer | undefined;
  /** Handled offsets not yet committed, by topic and partition: the next offset to read. */
  private readonly uncommitted = new Map<string, { topic: string; partition: number; offset: string }>();
  private committing: Promise<void> | undefined;
  private closed = false;

  constructor(
    private readonly kafka: { get(): Promise<Kafka> },
    private readonly settings: ResolvedKafkaSettings,
    private readonly request: ConsumerRequest,
  ) {}

  async start(): Promise<void> {
    const s = this.settings;
    const { topic, groupId, fromBeginning } = this.request;
    const consumer = (await this.kafka.get()).consumer({
      groupId,
      sessionTimeout: s.sessionTimeoutMs,
      rebalanceTimeout: s.rebalanceTimeoutMs,
      heartbeatInterval: s.heartbeatIntervalMs,
      maxWaitTimeInMs: s.maxWaitTimeMs,
      maxBytesPerPartition: s.maxBytesPerPartition,
      maxBytes: s.maxBytes,
      // Topics are created by the transport; never let a fetch re-create a deleted inbox.
      allowAutoTopicCreation: false,
    });
    this.consumer = consumer;
    let joined = false;
    const live = new Promise<void>((resolve, reject) => {
      // Reading from the beginning (or from committed offsets), nothing published from now on can
      // be skipped once joined. Starting at the end of the log, the offsets are resolved by the
      // first fetch after the join; only then is a frame published from now on sure to arrive.
      consumer.on(consumer.events.GROUP_JOIN, () => {
        joined = true;
        if (fromBeginning) resolve();
      });
      consumer.on(consumer.events.FETCH, () => joined && resolve());
      consumer.on(consumer.events.CRASH, ({ payload }) => {
        // kafkajs restarts itself after retriable crashes (a dropped connection).
        if (payload.restart || this.closed) return;
        if (joined) this.request.onFailure(payload.error);
        else reject(toTransportError(`consumer of topic ${topic} failed to start`, payload.error));
      });
    });
    live.catch(() => {}); // awaited below; a failed connect() must not leave it unhandled
    await consumer.connect();
    await consumer.subscribe({ topics: [topic], fromBeginning });
    await consumer.run({ autoCommit: false, partitionsConsumedConcurrently: 1, eachMessage: (payload) => this.deliver(consumer, payload) });
    await live;
  }

  /** Keeps the group membership alive while the handler holds the record, then commits its offset. */
  private async deliver(consumer: Consumer, { topic, partition, message, heartbeat }: EachMessagePayload): Promise<void> {
    if (this.closed) return; // not committed: the group redelivers it to whoever comes next
    const value = message.value ?? Buffer.alloc(0);
    const beat = setInterval(() => void heartbeat().catch(() => {}), this.settings.heartbeatIntervalMs);
    let commit: boolean;
    try {
      commit = await this.request.handle(new Uint8Array(value.buffer, value.byteOffset, value.byteLength));
    } finally {
      clearInterval(beat);
    }
    if (commit) this.commitLater(consumer, topic, partition, (BigInt(message.offset) + 1n).toString());
  }

  /**
   * Commits handled offsets in the background, one commit request in flight, each carrying the
   * latest handled offset of every partition: awaiting a commit per record would cost a round trip
   * per frame. A record handled but not committed when a consumer dies is redelivered, and core
   * drops the duplicate.
   */
  private commitLater(consumer: Consumer, topic: string, partition: number, offset: string): void {
    this.uncommitted.set(`${topic}\u0000${partition}`, { topic, partition, offset });
    this.committing ??= (async () => {
      while (this.uncommitted.size > 0) {
        const offsets = [...this.uncommitted.values()];
        this.uncommitted.clear();
        // A rebalance or a lost connection: the partition's next owner reads from the last commit.
        await consumer.commitOffsets(offsets).catch(() => {});
      }
    })().finally(() => (this.committing = undefined));
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.committing; // commit what the handler has taken while the consumer still runs
    // Already gone with its connection: the group forgets it after the session timeout.
    await this.consumer?.disconnect().catch(() => {});
  }
}
