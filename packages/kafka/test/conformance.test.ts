import { runConformanceSuite } from "@stream/conformance";
import { describe, test } from "vitest";
import { createKafkaTransport } from "../src/index";
import { CLIENTS } from "./kafka-test-support";

for (const client of CLIENTS) {
  runConformanceSuite({ describe, test, name: `kafka on ${client.name}`, createTransport: () => createKafkaTransport(client.options()) });
}
