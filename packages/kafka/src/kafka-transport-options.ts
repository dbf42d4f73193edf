import type { Kafka, KafkaConfig } from "kafkajs";

/**
 * Options of {@link createKafkaTransport}. Give either `client` (a ready kafkajs `Kafka`, or a
 * factory returning one) or `brokers` (and optionally `kafkaConfig`) for the transport to create
 * its own. Either way the transport creates and owns its producer, admin and consumers, and
 * disconnects them on `close()`; an injected `Kafka` instance holds no connection of its own.
 */
export interface KafkaTransportOptions {
  /**
   * A ready kafkajs client, or a function returning one (called once, on first use). Use it to
   * share settings (TLS, SASL, a custom `socketFactory`) with the rest of an application.
   */
  readonly client?: Kafka | (() => Kafka | Promise<Kafka>);
  /**
   * Bootstrap brokers, `host:port`, used when no `client` is given.
   * @default ["127.0.0.1:9092"]
   */
  readonly brokers?: string[];
  /**
   * Extra kafkajs client settings (`ssl`, `sasl`, `clientId`, `retry`, `logLevel`, ...) used when no
   * `client` is given.
   * @default { clientId: "stream", logLevel: logLevel.NOTHING }
   */
  readonly kafkaConfig?: Omit<KafkaConfig, "brokers">;
  /**
   * The largest frame this transport accepts and declares to core (`capabilities.maxFrameBytes`),
   * in bytes. The default fits a stock broker (`message.max.bytes` 1048588) with room for the record
   * batch header and key. To raise it, raise the broker's `message.max.bytes` (or the topic's
   * `max.message.bytes`, which this transport sets on topics it creates when the value needs it)
   * and keep `maxBytesPerPartition` at least as large.
   * @default 1_000_000
   */
  readonly maxFrameBytes?: number;
  /**
   * Most value and key bytes the transport puts in one produce request to one channel. Frames
   * published without awaiting each other are sent together up to this size; each partition's
   * record batch must stay under the broker's `message.max.bytes`. Larger batches cost memory:
   * kafkajs copies a request several times while encoding it.
   * @default min(maxFrameBytes, 1 MiB); a larger frame always goes alone
   */
  readonly maxBatchBytes?: number;
  /**
   * Partitions of a stream channel topic the transport creates. Frames are keyed by stream id, so
   * a stream stays on one partition and so on one consumer of the group; more partitions let more
   * receivers share a destination.
   * @default 4
   */
  readonly numPartitions?: number;
  /**
   * Replication factor of topics the transport creates; `-1` takes the broker's
   * `default.replication.factor`.
   * @default -1
   */
  readonly replicationFactor?: number;
  /**
   * Prepended to every topic name, e.g. `"stream."`, to keep this application's topics apart.
   * @default ""
   */
  readonly topicPrefix?: string;
  /**
   * Consumer group of a stream channel: every receiver of one destination joins it, so each stream
   * goes to one of them (competing consumers). Inbox channels always use a group unique to the
   * subscriber, so every subscriber sees every frame.
   * @default (topic) => `stream.${topic}`
   */
  readonly groupId?: (topic: string) => string;
  /**
   * Where a stream channel's new consumer group starts: `true` reads frames published before any
   * receiver subscribed, as a durable queue would; `false` starts at the end of the log.
   * @default true
   */
  readonly fromBeginning?: boolean;
  /**
   * Deletes an inbox's topic and consumer group when its subscription closes, so one inbox per
   * client does not leave a topic behind. Needs `delete.topic.enable` (on by default).
   * @default true
   */
  readonly deleteInboxOnClose?: boolean;
  /**
   * Consumer session timeout, in milliseconds: how long the broker waits for a heartbeat before it
   * gives a dead consumer's partitions to another. Must lie within the broker's
   * `group.min.session.timeout.ms` (6 s) and `group.max.session.timeout.ms`.
   * @default 10_000
   */
  readonly sessionTimeoutMs?: number;
  /**
   * How long the group coordinator waits for members to rejoin during a rebalance, in milliseconds.
   * @default 20_000
   */
  readonly rebalanceTimeoutMs?: number;
  /**
   * Consumer heartbeat interval, in milliseconds. The transport also heartbeats while a frame
   * handler is pending, so a slow reader does not lose its partitions.
   * @default 1_000
   */
  readonly heartbeatIntervalMs?: number;
  /**
   * Longest time a fetch waits for new records, in milliseconds. Short waits make joins and
   * rebalances fast (a member notices them between fetches).
   * @default 500
   */
  readonly maxWaitTimeMs?: number;
  /**
   * Most bytes one fetch takes from one partition: with `maxBytes`, the bound on what a consumer
   * holds before the handler has taken it. At least `maxFrameBytes`.
   * @default max(1 MiB, maxFrameBytes)
   */
  readonly maxBytesPerPartition?: number;
  /**
   * Most bytes one fetch takes in all.
   * @default max(4 MiB, maxBytesPerPartition)
   */
  readonly maxBytes?: number;
  /**
   * How long the broker may take to acknowledge a produce request with `acks=all`, in milliseconds.
   * @default 30_000
   */
  readonly ackTimeoutMs?: number;
  /**
   * How long `subscribe` waits for the consumer to join its group and be assigned partitions, in
   * milliseconds, before it rejects.
   * @default 60_000
   */
  readonly subscribeTimeoutMs?: number;
}
