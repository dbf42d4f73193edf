import mqtt from "mqtt";
import type { RawClient } from "./raw-client";

const URL = "mqtt://127.0.0.1:1883";

/**
 * mqtt.js by hand: QoS 1 publishes (resolved by PUBACK) and a QoS 1 subscription. mqtt.js sends
 * the subscriber's PUBACK as a message arrives; nothing slows the publisher down when the
 * subscriber falls behind, so the broker queues, and Mosquitto drops QoS 1 messages past its
 * `max_queued_messages` (1000 by default). That loss is what this baseline shows.
 */
export const rawMqtt: RawClient = {
  async openPublisher(destination) {
    const client = await mqtt.connectAsync(URL, { clean: true, reconnectPeriod: 0 });
    return {
      publish: async (body) => {
        await client.publishAsync(`bench/${destination}`, body, { qos: 1 });
      },
      close: () => client.endAsync(),
    };
  },
  async openConsumer(destination, _chunkBytes, onMessage, onError) {
    const client = await mqtt.connectAsync(URL, { clean: true, reconnectPeriod: 0 });
    client.on("error", onError);
    client.on("message", (_topic, payload) => void onMessage(payload));
    await client.subscribeAsync(`bench/${destination}`, { qos: 1 });
    return { close: () => client.endAsync() };
  },
};
