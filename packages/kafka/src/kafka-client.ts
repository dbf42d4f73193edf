import { kafkaErrors } from "./kafka-errors";
import type { QueuedMessage } from "./ordered-batch-queue";

/**
 * What the transport needs of a Kafka client library, and nothing more. `@platformatic/kafka`
 * (`platformatic-client.ts`) and kafkajs (`kafkajs-client.ts`) each implement it; the transport,
 * its subscriptions and core never see which one runs.
 */
export interface KafkaClient {
  /** The library, for error messages: `"@platformatic/kafka"` or `"kafkajs"`. */
  readonly library: string;
  /** Sends `messages` to `topic` in one produce request with `acks=all`; resolves once the broker has them all. */
  produce(topic: string, messages: readonly QueuedMessage[]): Promise<void>;
  /** Names of the topics the broker has. */
  listTopics(): Promise<string[]>;
  /** Creates a topic and waits for its partitions to have leaders. */
  createTopic(topic: string, numPartitions: number, replicationFactor: number, config: Readonly<Record<string, string>>): Promise<void>;
  deleteTopic(topic: string): Promise<void>;
  deleteGroup(groupId: string): Promise<void>;
  /** Ids of the consumer groups whose id starts with `prefix` and that have members now. */
  liveGroups(prefix: string): Promise<string[]>;
  /** A consumer of one topic in one group; not started. */
  consumer(request: ConsumerRequest): KafkaConsumer;
  /** Disconnects the producer and admin connections this client opened (consumers close themselves). */
  close(): Promise<void>;
}

/** What a {@link KafkaConsumer} reads and whom it hands records to. */
export interface ConsumerRequest {
  readonly topic: string;
  readonly groupId: string;
  /** A group without committed offsets starts at the beginning of the log (else at its end). */
  readonly fromBeginning: boolean;
  /**
   * Takes one record's value; the consumer calls it for one record at a time, in partition order.
   * Resolving `true` commits the record's offset; `false` (the subscription is closing) commits
   * nothing; rejecting has the same record delivered again before any record after it.
   */
  handle(value: Uint8Array): Promise<boolean>;
  /** The consumer gave up after its library's own retries; the subscription starts a fresh one. */
  onFailure(error: unknown): void;
}

/** One group member reading one topic. */
export interface KafkaConsumer {
  /**
   * Connects, joins the group and starts delivering. Resolves once the consumer is live: a record
   * published from then on reaches it (reading from the end of the log, once its offsets are known).
   */
  start(): Promise<void>;
  /** Stops delivering, commits what was handled, leaves the group. */
  close(): Promise<void>;
}

/** Imports a client library (an optional peer dependency), saying what to install when it is missing. */
export async function importLibrary<T>(load: () => Promise<T>, library: string): Promise<T> {
  try {
    return await load();
  } catch (error) {
    const code = (error as { code?: unknown } | null)?.code;
    if (code !== "ERR_MODULE_NOT_FOUND" && code !== "MODULE_NOT_FOUND") throw error;
    throw kafkaErrors.error(`${library} is not installed; add it beside @stream/kafka (npm install ${library}) or pick the other client`, false, error);
  }
}
