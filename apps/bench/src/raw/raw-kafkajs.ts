import { Kafka, logLevel } from "kafkajs";
import type { RawClient } from "./raw-client";

const MiB = 1024 * 1024;

function kafka(): Kafka {
  return new Kafka({ clientId: "stream-bench-raw", brokers: ["127.0.0.1:9092"], logLevel: logLevel.NOTHING });
}

/**
 * kafkajs by hand: one `producer.send` per chunk with `acks: -1` (all in-sync replicas), a
 * consumer group reading from the beginning whose `eachMessage` writes the value (offsets
 * committed by kafkajs as it goes). The topic gets one partition, so order is the log's.
 */
export const rawKafkajs: RawClient = {
  async openPublisher(destination) {
    const producer = kafka().producer({ allowAutoTopicCreation: false });
    await producer.connect();
    return {
      publish: async (body) => {
        await producer.send({ topic: destination, acks: -1, messages: [{ value: body }] });
      },
      close: () => producer.disconnect(),
    };
  },
  async openConsumer(destination, chunkBytes, onMessage, onError) {
    const client = kafka();
    const admin = client.admin();
    await admin.connect();
    await admin.createTopics({ topics: [{ topic: destination, numPartitions: 1 }], waitForLeaders: true });
    const maxBytesPerPartition = Math.max(4 * MiB, chunkBytes + 64 * 1024);
    const consumer = client.consumer({ groupId: `bench-${destination}`, maxBytesPerPartition, maxBytes: Math.max(10 * MiB, maxBytesPerPartition) });
    consumer.on(consumer.events.CRASH, ({ payload }) => onError(payload.error));
    await consumer.connect();
    await consumer.subscribe({ topic: destination, fromBeginning: true });
    const joined = new Promise<void>((resolve) => consumer.on(consumer.events.GROUP_JOIN, () => resolve()));
    await consumer.run({
      eachMessage: async ({ message }) => {
        if (message.value) await onMessage(message.value);
      },
    });
    await joined;
    return {
      async close() {
        await consumer.disconnect();
        await admin.deleteTopics({ topics: [destination] }).catch(() => {});
        await admin.deleteGroups([`bench-${destination}`]).catch(() => {});
        await admin.disconnect();
      },
    };
  },
};
