import { Admin, Consumer, Producer } from "@platformatic/kafka";
import type { RawClient } from "./raw-client";

const MiB = 1024 * 1024;
const connection = { clientId: "stream-bench-raw", bootstrapBrokers: ["127.0.0.1:9092"] };

/**
 * @platformatic/kafka by hand: one `producer.send` per chunk with `acks: -1` (all in-sync
 * replicas), a consumer group reading from the beginning whose stream writes each value (offsets
 * committed by the library as it goes, paused while the file's buffer is full). The topic gets
 * one partition, so order is the log's.
 */
export const rawKafka: RawClient = {
  async openPublisher(destination) {
    const producer = new Producer({ ...connection, autocreateTopics: false });
    return {
      publish: async (body) => {
        await producer.send({ acks: -1, messages: [{ topic: destination, value: body }] });
      },
      close: () => producer.close(),
    };
  },
  async openConsumer(destination, chunkBytes, onMessage, onError) {
    const admin = new Admin(connection);
    await admin.createTopics({ topics: [destination], partitions: 1, replicas: -1 });
    const maxBytesPerPartition = Math.max(4 * MiB, chunkBytes + 64 * 1024);
    const groupId = `bench-${destination}`;
    const consumer = new Consumer({ ...connection, groupId, maxBytesPerPartition, maxBytes: Math.max(10 * MiB, maxBytesPerPartition) });
    const stream = await consumer.consume({ topics: [destination], mode: "earliest", autocommit: true });
    stream.on("error", onError);
    stream.on("data", (message) => {
      const taken = onMessage(message.value);
      if (!taken) return;
      stream.pause();
      void taken.then(() => stream.resume());
    });
    return {
      async close() {
        await stream.close();
        await consumer.close(true);
        await admin.deleteTopics({ topics: [destination] }).catch(() => {});
        await admin.deleteGroups({ groups: [groupId] }).catch(() => {});
        await admin.close();
      },
    };
  },
};
