import { integerOptions, nodeTlsOptions, type TlsOptions } from "@stream/core/adapter-kit";
/**
 * The part of a kafkajs `Kafka` the transport uses. Typed structurally so that a project without
 * kafkajs installed still type-checks this package's declarations.
 */
export interface KafkajsLike {
  producer(config?: object): unknown;
  consumer(config: { groupId: string }): unknown;
  admin(config?: object): unknown;
}

/**
 * Connection settings of `@platformatic/kafka` (its `BaseOptions` without `bootstrapBrokers`):
 * `clientId`, `tls`, `sasl`, `connectTimeout`, `requestTimeout`, `retries`, `retryDelay`, ...
 * Typed loosely here so that a project without `@platformatic/kafka` still type-checks.
 */
export type PlatformaticConnectionOptions = Readonly<Record<string, unknown>>;

/**
 * Options of {@link createKafkaTransport}. The client library is picked here:
 *
 * - by default, `@platformatic/kafka`, created from `brokers` (and `platformatic` settings);
 * - `kafkajs: new Kafka({...})` (or a factory of one), or `kafkaConfig`, runs on kafkajs instead.
 *
 * Either way the transport creates and owns its producer, admin and consumers and disconnects them
 * on `close()`; an injected kafkajs `Kafka` holds no connection of its own and stays usable.
 */
export interface KafkaTransportOptions {
  /**
   * Bootstrap brokers, `host:port`, unless a ready kafkajs client is injected.
   * @default ["127.0.0.1:9092"]
   */
  readonly brokers?: string[];
  /**
   * Connect over TLS: the CA to trust, a client certificate for mutual TLS; each broker's
   * certificate must name the host it is reached by, unless `verify: false`. Becomes
   * `@platformatic/kafka`'s `tls` or kafkajs' `ssl`; a `tls` / `ssl` in {@link platformatic} /
   * {@link kafkaConfig} wins. SASL (SCRAM) stays the library's own setting (`sasl`).
   */
  readonly tls?: TlsOptions;
  /**
   * Extra `@platformatic/kafka` settings (TLS, SASL, timeouts, retries), spread over the transport's
   * own for every producer, admin and consumer it creates.
   * @default { clientId: "stream" }
   */
  readonly platformatic?: PlatformaticConnectionOptions;
  /**
   * Runs the transport on kafkajs with this client, or with the one this function returns (called
   * once, on first use): for applications that already configure kafkajs (TLS, SASL, a
   * `socketFactory`). Needs the `kafkajs` package.
   */
  readonly kafkajs?: KafkajsLike | (() => KafkajsLike | Promise<KafkajsLike>);
  /**
   * Runs the transport on kafkajs, with a client it creates from `brokers` and these settings
   * (kafkajs' `KafkaConfig` without `brokers`: `ssl`, `sasl`, `clientId`, `retry`, `logLevel`, ...). Ignored when `kafkajs` is given.
   * @default kafkajs is not used; when given: { clientId: "stream", logLevel: logLevel.NOTHING, ...kafkaConfig }
   */
  readonly kafkaConfig?: Readonly<Record<string, unknown>>;
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
   * each client copies a request while encoding it (kafkajs several times).
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
   * @default max(4 MiB, maxFrameBytes)
   */
  readonly maxBytesPerPartition?: number;
  /**
   * Most bytes one fetch takes in all.
   * @default max(8 MiB, maxBytesPerPartition)
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

/** Every setting with its default applied, checked. */
export type ResolvedKafkaSettings = Required<Omit<KafkaTransportOptions, "kafkajs" | "kafkaConfig" | "platformatic" | "tls">>;

const MiB = 1024 * 1024;
/**
 * Most bytes per produce request by default. kafkajs copies a request several times while encoding
 * it; batches the size of a 16 MiB window put the sender past 250 MB of RSS in the bench.
 */
const DEFAULT_MAX_BATCH_BYTES = MiB;

const positiveInteger = integerOptions("kafka");

/** Applies the defaults; throws a `RangeError` naming a bad value. */
export function resolveKafkaSettings(options: KafkaTransportOptions): ResolvedKafkaSettings {
  const maxFrameBytes = positiveInteger("maxFrameBytes", options.maxFrameBytes ?? 1_000_000);
  const maxBatchBytes = positiveInteger("maxBatchBytes", options.maxBatchBytes ?? Math.min(maxFrameBytes, DEFAULT_MAX_BATCH_BYTES));
  const maxBytesPerPartition = positiveInteger("maxBytesPerPartition", options.maxBytesPerPartition ?? Math.max(4 * MiB, maxFrameBytes));
  return {
    brokers: options.brokers ?? ["127.0.0.1:9092"],
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

/**
 * Node's `tls.connect` options of {@link KafkaTransportOptions.tls}, for either library; undefined
 * without TLS. No server name is fixed: each connection checks the host of the broker it reaches.
 */
export function kafkaTlsOptions(options: KafkaTransportOptions): Readonly<Record<string, unknown>> | undefined {
  return options.tls === undefined ? undefined : { ...nodeTlsOptions("kafka", options.tls) };
}
