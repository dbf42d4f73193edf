import { runConformanceSuite, runTransportContract } from "@stream/conformance";
import { Kafka, logLevel } from "kafkajs";
import { describe, test } from "vitest";
import { createKafkaTransport } from "../src/index";
import { BROKERS, CLIENTS, plainKafka, routePlatformaticThroughProxy, throughProxy } from "./kafka-test-support";

const [brokerHost = "127.0.0.1", port = "9092"] = BROKERS[0]!.split(":");
const brokerPort = Number(port);

for (const client of CLIENTS) {
  runConformanceSuite({ describe, test, name: client.label, createTransport: () => createKafkaTransport(client.options()) });

  runTransportContract({
    describe,
    test,
    name: client.label,
    brokerPort,
    brokerHost,
    // With `port`, every connection (also to the address the broker advertises) goes there.
    createTransport: ({ port: proxyPort } = {}) => {
      if (client.name === "kafkajs") {
        const socketFactory = throughProxy(brokerPort, () => proxyPort ?? brokerPort);
        return createKafkaTransport({ kafkajs: new Kafka({ brokers: BROKERS, logLevel: logLevel.NOTHING, socketFactory }) });
      }
      routePlatformaticThroughProxy(brokerPort, () => proxyPort ?? brokerPort); // process-wide: set for each transport
      return createKafkaTransport(client.options());
    },
    injected: {
      make: async () => plainKafka(),
      createTransport: (kafka) => createKafkaTransport({ kafkajs: kafka }),
      // A Kafka object is no connection: it still works if a producer of it can send.
      isOpen: async (kafka, topic) => {
        const producer = kafka.producer();
        await producer.connect();
        await producer.send({ topic, messages: [{ key: "k", value: "still open" }] });
        await producer.disconnect();
        return true;
      },
      closeClient: async () => {},
    },
  });
}
