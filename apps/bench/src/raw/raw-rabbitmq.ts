import amqplib from "amqplib";
import type { RawClient } from "./raw-client";

const URL = "amqp://guest:guest@127.0.0.1:5672";

/**
 * amqplib by hand: a durable queue, persistent messages on a confirm channel, a consumer with a
 * prefetch of 16 that acknowledges each message once it is written.
 */
export const rawRabbitmq: RawClient = {
  async openPublisher(destination) {
    const connection = await amqplib.connect(URL);
    const channel = await connection.createConfirmChannel();
    await channel.assertQueue(destination, { durable: true });
    return {
      publish: (body) =>
        new Promise<void>((resolve, reject) => {
          channel.publish("", destination, body, { persistent: true }, (error) => (error ? reject(error) : resolve()));
        }),
      async close() {
        await channel.close();
        await connection.close();
      },
    };
  },
  async openConsumer(destination, _chunkBytes, onMessage, onError) {
    const connection = await amqplib.connect(URL);
    connection.on("error", onError);
    const channel = await connection.createChannel();
    await channel.assertQueue(destination, { durable: true });
    await channel.prefetch(16);
    await channel.consume(destination, (message) => {
      if (message) void onMessage(message.content, () => channel.ack(message));
    });
    return {
      async close() {
        await channel.deleteQueue(destination).catch(() => {});
        await connection.close();
      },
    };
  },
};
