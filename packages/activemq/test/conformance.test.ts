import { runConformanceSuite, runTransportContract } from "@stream/conformance";
import { describe, test } from "vitest";
import { createActivemqTransport } from "../src/index";
import { connectStomp, takeMessages } from "./support/stomp";

const BROKER_URL = process.env.STREAM_ACTIVEMQ_URL ?? "stomp://127.0.0.1:61613";

runConformanceSuite({
  describe,
  test,
  name: "activemq",
  createTransport: () => createActivemqTransport({ url: BROKER_URL }),
});

runTransportContract({
  describe,
  test,
  name: "activemq",
  brokerPort: Number(new URL(BROKER_URL).port || 61613),
  createTransport: ({ port } = {}) => {
    const url = new URL(BROKER_URL);
    if (port) url.port = String(port);
    return createActivemqTransport({ url: url.toString(), reconnectInitialDelayMs: 50, reconnectMaxDelayMs: 500 });
  },
  injected: {
    make: () => connectStomp(),
    createTransport: (client) => createActivemqTransport({ client }),
    // Take the transport's frame off the queue through the injected client: it works, and the frame is there.
    isOpen: async (client, channel) => (await takeMessages(client, `/queue/${channel}`, 1)).length === 1,
    closeClient: (client) => new Promise<void>((resolve) => client.disconnect(() => resolve())),
  },
});
