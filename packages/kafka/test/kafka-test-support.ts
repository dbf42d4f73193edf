import { randomUUID } from "node:crypto";
import { connect } from "node:net";
import { Connection } from "@platformatic/kafka";
import { Kafka, logLevel, type ISocketFactory, type KafkaMessage } from "kafkajs";
import type { KafkaTransportOptions } from "../src/index";

/** The broker the tests use: `STREAM_KAFKA_BROKERS` (comma-separated) or the one `tooling/brokers` starts. */
export const BROKERS = (process.env.STREAM_KAFKA_BROKERS ?? "127.0.0.1:9092").split(",");

/** A client library the transport runs on, and the options that pick it. */
export interface ClientUnderTest {
  readonly name: "@platformatic/kafka" | "kafkajs";
  /** The name in test titles and channel names (`[A-Za-z0-9._-]`). */
  readonly label: string;
  /** Options for the local broker on this client, plus `extra`. */
  options(extra?: KafkaTransportOptions): KafkaTransportOptions;
}

/** Every broker-backed suite runs once per client. */
export const CLIENTS: readonly ClientUnderTest[] = [
  { name: "@platformatic/kafka", label: "kafka-platformatic", options: (extra = {}) => ({ brokers: BROKERS, ...extra }) },
  { name: "kafkajs", label: "kafka-kafkajs", options: (extra = {}) => ({ kafkajs: plainKafka(), ...extra }) },
];

/** A fresh channel name, so tests never see each other's leftovers. */
export const freshChannel = (label: string): string => `test.kafka.${label}.${randomUUID().slice(0, 8)}`;

/** A plain kafkajs client: the second door through which tests check what reached the broker. */
export const plainKafka = (): Kafka => new Kafka({ brokers: BROKERS, clientId: "stream-test", logLevel: logLevel.NOTHING });

/** Reads every record of `topic` from the beginning with a plain kafkajs consumer, until `count` arrived. */
export async function readTopic(topic: string, count: number, timeoutMs = 20_000): Promise<Array<KafkaMessage & { partition: number }>> {
  const consumer = plainKafka().consumer({ groupId: `second-door.${randomUUID()}`, maxWaitTimeInMs: 200 });
  const records: Array<KafkaMessage & { partition: number }> = [];
  await consumer.connect();
  try {
    await consumer.subscribe({ topics: [topic], fromBeginning: true });
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`only ${records.length} of ${count} records on ${topic}`)), timeoutMs);
      void consumer.run({
        eachMessage: async ({ partition, message }) => {
          records.push({ ...message, partition });
          if (records.length >= count) {
            clearTimeout(timer);
            resolve();
          }
        },
      });
    });
  } finally {
    await consumer.disconnect();
  }
  return records;
}

/**
 * A kafkajs socket factory that sends every connection to the broker through `proxyPort`. The
 * broker advertises its own address in metadata, so pointing `brokers` at a proxy is not enough:
 * kafkajs would reconnect straight to the advertised address after the first request.
 */
export function throughProxy(brokerPort: number, proxyPort: () => number): ISocketFactory {
  return ({ host, port, onConnect }) => {
    const socket = connect({ host, port: port === brokerPort ? proxyPort() : port }, onConnect);
    socket.setKeepAlive(true, 30_000);
    return socket;
  };
}

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls `check` until it is true or `timeoutMs` passed. */
export async function waitFor(check: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(25);
  }
}

let platformaticRoute: { brokerPort: number; proxyPort: () => number } | undefined;

/**
 * Sends every `@platformatic/kafka` connection of this test file to the broker through `proxyPort`,
 * like {@link throughProxy} does for kafkajs. The library has no socket factory, so its
 * `Connection.connect` is wrapped (once per process; the route can be changed).
 */
export function routePlatformaticThroughProxy(brokerPort: number, proxyPort: () => number): void {
  if (!platformaticRoute) {
    const connect = Connection.prototype.connect;
    Connection.prototype.connect = function (this: Connection, host: string, port: number, ...rest: unknown[]) {
      const target = platformaticRoute && port === platformaticRoute.brokerPort ? platformaticRoute.proxyPort() : port;
      return (connect as (...args: unknown[]) => unknown).call(this, host, target, ...rest);
    } as typeof connect;
  }
  platformaticRoute = { brokerPort, proxyPort };
}
