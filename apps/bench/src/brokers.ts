import { connect } from "node:net";
import { MiB } from "./sizes";

/**
 * The transports the bench knows. `memory` is core's in-process transport: no broker, one process.
 * Kafka is benched on both clients @stream/kafka runs on: `kafka` is its default,
 * @platformatic/kafka; `kafkajs` is the same broker through an injected kafkajs client.
 */
export const BROKER_NAMES = ["memory", "activemq", "rabbitmq", "mqtt", "kafka", "kafkajs"] as const;
export type BrokerName = (typeof BROKER_NAMES)[number];

/** What the bench needs to know of one broker. */
export interface BrokerProfile {
  readonly name: BrokerName;
  /** The raw client library the baseline uses. */
  readonly rawClient: string;
  /** Where the local broker listens (`tooling/brokers/`); undefined for `memory`. */
  readonly port?: number;
  /**
   * The largest chunk worth benching on this broker as configured by `tooling/brokers/`, in
   * bytes, and why. Benched as an extra cell when larger than 1 MiB.
   */
  readonly practicalMaxChunkBytes: number;
  readonly practicalMaxWhy: string;
}

/** The catalogue, in the order of the report. */
export const BROKERS: Readonly<Record<BrokerName, BrokerProfile>> = {
  memory: {
    name: "memory",
    rawClient: "file copy (read, write)",
    practicalMaxChunkBytes: MiB,
    practicalMaxWhy: "in-process; no broker limit to probe, so no extra cell",
  },
  activemq: {
    name: "activemq",
    rawClient: "stompit",
    port: 61613,
    practicalMaxChunkBytes: 8 * MiB,
    practicalMaxWhy: "STOMP maxDataLength is 100 MiB, but the broker's memory limit (30 % of its 1 GiB heap) must hold 16 prefetched frames: 8 MiB keeps that at 128 MiB",
  },
  rabbitmq: {
    name: "rabbitmq",
    rawClient: "amqplib",
    port: 5672,
    practicalMaxChunkBytes: 8 * MiB,
    practicalMaxWhy: "the adapter's default maxFrameBytes is 16 MiB (RabbitMQ 4.x max_message_size); 8 MiB keeps a window of 2 chunks",
  },
  mqtt: {
    name: "mqtt",
    rawClient: "mqtt (mqtt.js)",
    port: 1883,
    practicalMaxChunkBytes: MiB,
    practicalMaxWhy: "Mosquitto keeps queued messages in memory (up to 1000 per client): 1 MiB, the adapter's default, is the sane top",
  },
  kafka: {
    name: "kafka",
    rawClient: "@platformatic/kafka",
    port: 9092,
    practicalMaxChunkBytes: 8 * MiB,
    practicalMaxWhy: "message.max.bytes is 10 MiB (tooling/brokers/kafka.sh); 8 MiB chunks plus framing fit",
  },
  kafkajs: {
    name: "kafkajs",
    rawClient: "kafkajs",
    port: 9092,
    practicalMaxChunkBytes: 8 * MiB,
    practicalMaxWhy: "the Kafka broker above, through kafkajs",
  },
};

/** The chunk sizes of a full run, before each broker's practical maximum is added. */
export const DEFAULT_CHUNK_BYTES: readonly number[] = [64 * 1024, 256 * 1024, MiB];

/**
 * The chunk sizes to bench on `broker`: `requested` (where `"max"` is the broker's practical
 * maximum), or the defaults plus the practical maximum when it is larger. Sorted, no repeats.
 */
export function chunkSizesFor(broker: BrokerProfile, requested?: ReadonlyArray<number | "max">): number[] {
  const sizes = requested
    ? requested.map((size) => (size === "max" ? broker.practicalMaxChunkBytes : size))
    : [...DEFAULT_CHUNK_BYTES, broker.practicalMaxChunkBytes];
  return [...new Set(sizes)].sort((a, b) => a - b);
}

/** Resolves once a TCP connection to the broker's port opens; false after `timeoutMs`. */
export function isReachable(broker: BrokerProfile, timeoutMs = 2000): Promise<boolean> {
  const { port } = broker;
  if (port === undefined) return Promise.resolve(true);
  return new Promise((resolve) => {
    const socket = connect({ host: "127.0.0.1", port });
    const done = (ok: boolean): void => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once("connect", () => done(true));
    socket.once("error", () => done(false));
  });
}
