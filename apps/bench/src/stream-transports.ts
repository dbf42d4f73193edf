import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import type { Transport } from "@stream/core";
import type { BrokerName } from "./brokers";
import { DATA_HEADER_BYTES } from "@stream/core";

const KiB = 1024;
const MiB = 1024 * KiB;

/**
 * The adapter for `broker`, set up as a user of the local brokers (`tooling/brokers/`) would:
 * defaults, except a frame limit raised where a chunk would not fit the adapter's default
 * (Kafka's is 1 000 000 bytes; the broker here takes 10 MiB).
 */
export async function createStreamTransport(broker: Exclude<BrokerName, "memory">, chunkBytes: number): Promise<Transport> {
  const frameBytes = chunkBytes + DATA_HEADER_BYTES;
  switch (broker) {
    case "activemq": {
      const { createActivemqTransport } = await import("@stream/activemq");
      return createActivemqTransport({ url: "stomp://127.0.0.1:61613", ...(frameBytes > 100 * MiB ? { maxFrameBytes: frameBytes } : {}) });
    }
    case "rabbitmq": {
      const { createRabbitmqTransport } = await import("@stream/rabbitmq");
      return createRabbitmqTransport({ url: "amqp://guest:guest@127.0.0.1:5672", ...(frameBytes > 16 * MiB ? { maxFrameBytes: frameBytes } : {}) });
    }
    case "mqtt": {
      const { createMqttTransport } = await import("@stream/mqtt");
      return createMqttTransport({ url: "mqtt://127.0.0.1:1883", ...(frameBytes > MiB + 64 * KiB ? { maxFrameBytes: frameBytes + 64 * KiB } : {}) });
    }
    case "kafka":
    case "kafkajs": {
      const { createKafkaTransport } = await import("@stream/kafka");
      // message.max.bytes is 10 MiB here; leave room for the record batch header and key.
      const maxFrameBytes = 10 * MiB - 64 * KiB;
      if (broker === "kafka") return createKafkaTransport({ brokers: ["127.0.0.1:9092"], maxFrameBytes });
      const { Kafka, logLevel } = await import("kafkajs");
      return createKafkaTransport({ kafkajs: new Kafka({ clientId: "stream", brokers: ["127.0.0.1:9092"], logLevel: logLevel.NOTHING }), maxFrameBytes });
    }
  }
}

/**
 * Removes what a run left on the broker (a durable queue, a topic and its consumer group), with
 * the broker's own client: adapters delete their inboxes, not the destinations they stream to.
 */
export async function removeStreamDestination(broker: BrokerName, destination: string): Promise<void> {
  if (broker === "rabbitmq") {
    const { default: amqplib } = await import("amqplib");
    const connection = await amqplib.connect("amqp://guest:guest@127.0.0.1:5672");
    try {
      const channel = await connection.createChannel();
      await channel.deleteQueue(destination);
    } finally {
      await connection.close();
    }
  } else if (broker === "kafka" || broker === "kafkajs") {
    const { Kafka, logLevel } = await import("kafkajs");
    const admin = new Kafka({ clientId: "stream-bench-cleanup", brokers: ["127.0.0.1:9092"], logLevel: logLevel.NOTHING }).admin();
    await admin.connect();
    try {
      await admin.deleteTopics({ topics: [destination] }).catch(() => {});
      await admin.deleteGroups([`stream.${destination}`]).catch(() => {});
    } finally {
      await admin.disconnect();
    }
  }
  // ActiveMQ queues cannot be deleted over STOMP (they are empty once consumed); MQTT topics hold nothing.
}

const ADAPTER_PACKAGES: Readonly<Record<BrokerName, string>> = {
  memory: "@stream/core/testing",
  activemq: "@stream/activemq",
  rabbitmq: "@stream/rabbitmq",
  mqtt: "@stream/mqtt",
  kafka: "@stream/kafka",
  kafkajs: "@stream/kafka",
};

/** Why `broker`'s adapter cannot be loaded (most often: not built yet), or undefined when it can. */
export async function adapterProblem(broker: BrokerName): Promise<string | undefined> {
  const name = ADAPTER_PACKAGES[broker];
  try {
    await import(name);
    return undefined;
  } catch (error) {
    const reason = error instanceof Error ? error.message.split("\n")[0] : String(error);
    return `${name} does not load (${reason}); build it first: pnpm turbo run build --filter=@stream/bench^...`;
  }
}

/** Whether the built entry of `broker`'s adapter and of core are on disk right now (not cached). */
export function adapterBuilt(broker: BrokerName): boolean {
  return [ADAPTER_PACKAGES[broker], "@stream/core"].every((name) => {
    try {
      return existsSync(fileURLToPath(import.meta.resolve(name)));
    } catch {
      return false;
    }
  });
}
