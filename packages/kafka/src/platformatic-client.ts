import type { Admin, Consumer, Message, MessagesStream, Producer } from "@platformatic/kafka";
import { importLibrary, type ConsumerRequest, type KafkaClient, type KafkaConsumer } from "./kafka-client";
import { type KafkaTransportOptions, kafkaTlsOptions, type ResolvedKafkaSettings } from "./kafka-transport-options";
import type { QueuedMessage } from "./ordered-batch-queue";

type Library = typeof import("@platformatic/kafka");

/** Records a consumer's stream holds before it stops fetching more. */
const CONSUMER_BUFFERED_RECORDS = 16;
type Stream = MessagesStream<Buffer, Buffer, Buffer, Buffer>;

/**
 * The {@link KafkaClient} on `@platformatic/kafka`, made from `brokers` and the `platformatic`
 * settings. The library is imported here, on first use. Producer and admin each keep their own
 * connections; every subscription has a consumer of its own.
 */
export async function createPlatformaticClient(options: KafkaTransportOptions, settings: ResolvedKafkaSettings): Promise<KafkaClient> {
  const library = await importLibrary(() => import("@platformatic/kafka"), "@platformatic/kafka");
  const tls = kafkaTlsOptions(options);
  const base = { clientId: "stream", ...(tls === undefined ? {} : { tls }), ...options.platformatic, bootstrapBrokers: settings.brokers };
  return new PlatformaticClient(library, base, settings);
}

class PlatformaticClient implements KafkaClient {
  readonly library = "@platformatic/kafka";
  private producer: Producer | undefined;
  private admin: Admin | undefined;

  constructor(
    private readonly kafka: Library,
    private readonly base: { clientId: string; bootstrapBrokers: string[] },
    private readonly settings: ResolvedKafkaSettings,
  ) {}

  async produce(topic: string, messages: readonly QueuedMessage[]): Promise<void> {
    // Connects on first use and reconnects by itself; created once.
    this.producer ??= new this.kafka.Producer({
      ...this.base,
      timeout: this.settings.ackTimeoutMs,
      autocreateTopics: false,
      // Java's (and kafkajs') key to partition mapping; the library's default differs for partition
      // counts that are not a power of two.
      partitioner: this.kafka.compatibilityPartitioner,
    });
    await this.producer.send({
      acks: -1, // all in-sync replicas
      messages: messages.map(({ key, value }) => ({ topic, key: Buffer.from(key), value })),
    });
  }

  private get adminClient(): Admin {
    this.admin ??= new this.kafka.Admin({ ...this.base });
    return this.admin;
  }

  listTopics(): Promise<string[]> {
    return this.adminClient.listTopics();
  }

  async createTopic(topic: string, numPartitions: number, replicationFactor: number, config: Readonly<Record<string, string>>): Promise<void> {
    await this.adminClient.createTopics({
      topics: [topic],
      partitions: numPartitions,
      replicas: replicationFactor,
      configs: Object.entries(config).map(([name, value]) => ({ name, value })),
    });
    await this.waitForLeaders(topic, numPartitions);
  }

  /**
   * Waits until every partition of a new topic has a leader (kafkajs' `waitForLeaders`). A produce
   * request sent before that fails for some partitions, and the library retries the whole request:
   * the records of the partitions that took them would be written twice.
   */
  private async waitForLeaders(topic: string, numPartitions: number): Promise<void> {
    for (const deadline = Date.now() + 10_000; Date.now() < deadline; ) {
      const metadata = await this.adminClient.metadata({ topics: [topic], forceUpdate: true }).catch(() => undefined);
      const partitions = metadata?.topics.get(topic)?.partitions ?? [];
      if (partitions.length >= numPartitions && partitions.every((partition) => partition.leader >= 0)) return;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }

  deleteTopic(topic: string): Promise<void> {
    return this.adminClient.deleteTopics({ topics: [topic] });
  }

  deleteGroup(groupId: string): Promise<void> {
    return this.adminClient.deleteGroups({ groups: [groupId] });
  }

  async liveGroups(prefix: string): Promise<string[]> {
    const ids = [...(await this.adminClient.listGroups()).keys()].filter((id) => id.startsWith(prefix));
    if (ids.length === 0) return [];
    const groups = await this.adminClient.describeGroups({ groups: ids });
    return [...groups.values()].filter((group) => group.members.size > 0).map((group) => group.id);
  }

  consumer(request: ConsumerRequest): KafkaConsumer {
    const s = this.settings;
    const consumer = new this.kafka.Consumer({
      ...this.base,
      groupId: request.groupId,
      sessionTimeout: s.sessionTimeoutMs,
      rebalanceTimeout: s.rebalanceTimeoutMs,
      heartbeatInterval: s.heartbeatIntervalMs,
      maxWaitTime: s.maxWaitTimeMs,
      maxBytesPerPartition: s.maxBytesPerPartition,
      maxBytes: s.maxBytes,
      // Records the stream buffers before it stops fetching (the library's default is 1024, a GiB
      // of 1 MB frames): with maxBytes, the bound on what a consumer holds ahead of the handler.
      highWaterMark: CONSUMER_BUFFERED_RECORDS,
      // Topics are created by the transport; never let a fetch re-create a deleted inbox.
      autocreateTopics: false,
    });
    return new PlatformaticConsumer(consumer, request);
  }

  async close(): Promise<void> {
    await Promise.allSettled([this.producer?.close(true), this.admin?.close()]);
  }
}

/**
 * A consumer reading a `MessagesStream` one record at a time: the stream is paused while the
 * handler holds a record, so nothing overtakes it. Heartbeats run on the library's own timer,
 * also while the handler is busy. A rejected record is read again by reopening the stream at the
 * committed offsets (the rejected record's own, since nothing after it was committed).
 */
class PlatformaticConsumer implements KafkaConsumer {
  private stream: Stream | undefined;
  private closed = false;

  constructor(
    private readonly consumer: Consumer,
    private readonly request: ConsumerRequest,
  ) {}

  async start(): Promise<void> {
    const stream = await this.open();
    // Reading from the end of the log, the stream looks the offsets up first; a record published
    // before that may be skipped, so the consumer is live only once they are known.
    if (!this.request.fromBeginning) await new Promise<void>((resolve) => (stream.once("offsets", resolve), stream.once("fetch", resolve)));
  }

  private async open(): Promise<Stream> {
    const stream = await this.consumer.consume({
      topics: [this.request.topic],
      // Committed offsets first; a new group starts at the beginning or the end of the log.
      mode: "committed",
      fallbackMode: this.request.fromBeginning ? "earliest" : "latest",
      autocommit: false,
    });
    this.stream = stream;
    stream.on("error", (error) => {
      if (!this.closed && stream === this.stream) this.request.onFailure(error);
    });
    stream.on("data", (message: Message) => {
      stream.pause();
      void this.deliver(stream, message);
    });
    return stream;
  }

  private async deliver(stream: Stream, message: Message): Promise<void> {
    let commit: boolean;
    try {
      commit = await this.request.handle(message.value);
    } catch {
      // Redelivery: drop what the stream read ahead and start again from the committed offsets.
      if (this.closed || stream !== this.stream) return;
      await stream.close().catch(() => {});
      if (this.closed) return;
      await this.open().catch((error: unknown) => this.request.onFailure(error));
      return;
    }
    if (!commit || this.closed) return;
    // Coalesced by the library: one commit request in flight per partition, offsets only move
    // forward. A handled record not yet committed when the consumer dies is redelivered, and core
    // drops the duplicate.
    (message.commit() as Promise<void> | undefined)?.catch(() => {});
    stream.resume();
  }

  async close(): Promise<void> {
    this.closed = true;
    // Closing the stream commits what was handled; then the consumer leaves the group.
    await this.stream?.close().catch(() => {});
    await this.consumer.close(true).catch(() => {});
  }
}
