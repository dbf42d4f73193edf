import { runConformanceSuite, runTransportContract } from "@stream/conformance";
import { afterAll, describe, test } from "vitest";
import { createRabbitmqTransport } from "../src/index";
import { RABBITMQ_URL, deleteQueuesStartingWith, plainConnection } from "./helpers";

runConformanceSuite({ describe, test, name: "rabbitmq", createTransport: () => createRabbitmqTransport({ url: RABBITMQ_URL }) });

const broker = new URL(RABBITMQ_URL);
runTransportContract({
  describe,
  test,
  name: "rabbitmq",
  brokerPort: Number(broker.port || 5672),
  brokerHost: broker.hostname,
  createTransport: ({ port } = {}) => {
    const url = new URL(RABBITMQ_URL);
    if (port) url.port = String(port);
    return createRabbitmqTransport({ url: url.toString() });
  },
  injected: {
    make: plainConnection,
    createTransport: (connection) => createRabbitmqTransport({ connection }),
    // Read the transport's frame back through the injected connection: it works, and the frame is there.
    isOpen: async (connection, queue) => {
      const channel = await connection.createChannel();
      const message = await channel.get(queue, { noAck: true });
      await channel.close();
      return message !== false;
    },
    closeClient: (connection) => connection.close(),
  },
});

afterAll(() => deleteQueuesStartingWith("conformance.rabbitmq."));
