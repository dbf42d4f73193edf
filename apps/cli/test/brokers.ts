import { connect } from "amqplib";
import { Kafka, logLevel } from "kafkajs";

/** A broker the end-to-end tests run against, with a way to clean up after them. */
export interface BrokerUnderTest {
  readonly name: string;
  /** The key of `BROKERS=` (as in tooling/brokers) that selects it. */
  readonly key: "rabbitmq" | "mqtt" | "activemq" | "kafka";
  /** `--broker` for a running broker. */
  readonly url: string;
  /** `--broker` for the same kind of broker on a closed port. */
  unreachableUrl(port: number): string;
  /** Removes what a test left on the broker under `destination`, through the plain client library. */
  cleanUp(destination: string): Promise<void>;
}

const RABBITMQ_URL = process.env.STREAM_RABBITMQ_URL ?? "amqp://127.0.0.1:5672";
const KAFKA_BROKERS = process.env.KAFKA_BROKERS ?? "127.0.0.1:9092";

/** Every broker tooling/brokers starts, in the order they are tested. */
export const BROKERS: readonly BrokerUnderTest[] = [
  {
    name: "RabbitMQ",
    key: "rabbitmq",
    url: RABBITMQ_URL,
    unreachableUrl: (port) => `amqp://guest:guest-secret@127.0.0.1:${port}`,
    async cleanUp(destination) {
      const connection = await connect(RABBITMQ_URL);
      try {
        const channel = await connection.createChannel();
        await channel.deleteQueue(destination);
        await channel.close();
      } finally {
        await connection.close();
      }
    },
  },
  {
    name: "Mosquitto (MQTT)",
    key: "mqtt",
    url: process.env.STREAM_MQTT_URL ?? "mqtt://127.0.0.1:1883",
    unreachableUrl: (port) => `mqtt://user:mqtt-secret@127.0.0.1:${port}`,
    // Topics hold nothing once the subscribers are gone (QoS 1, no retained frames).
    async cleanUp() {},
  },
  {
    name: "ActiveMQ (STOMP)",
    key: "activemq",
    url: process.env.STREAM_ACTIVEMQ_URL ?? "stomp://127.0.0.1:61613",
    unreachableUrl: (port) => `stomp://admin:stomp-secret@127.0.0.1:${port}`,
    // The queue is empty once the stream is received; ActiveMQ offers no STOMP command to delete it.
    async cleanUp() {},
  },
  {
    name: "Kafka",
    key: "kafka",
    url: process.env.STREAM_KAFKA_URL ?? `kafka://${KAFKA_BROKERS}`,
    unreachableUrl: (port) => `kafka://127.0.0.1:${port}`,
    async cleanUp(destination) {
      const admin = new Kafka({ clientId: "stream-cli-test", brokers: KAFKA_BROKERS.split(","), logLevel: logLevel.NOTHING }).admin();
      await admin.connect();
      try {
        await admin.deleteTopics({ topics: [destination] }).catch(() => {});
        await admin.deleteGroups([`stream.${destination}`]).catch(() => {});
      } finally {
        await admin.disconnect();
      }
    },
  },
];

/** The brokers picked by `BROKERS=rabbitmq,mqtt` (all four by default), as tooling/brokers reads it. */
export function selectedBrokers(): BrokerUnderTest[] {
  const wanted = (process.env.BROKERS ?? "").split(/[\s,]+/).filter(Boolean);
  return wanted.length === 0 ? [...BROKERS] : BROKERS.filter((broker) => wanted.includes(broker.key));
}
