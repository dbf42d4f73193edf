import { runConformanceSuite } from "@stream/conformance";
import { describe, test } from "vitest";
import { createKafkaTransport } from "../src/index";
import { CLIENTS } from "./kafka-test-support";

for (const client of CLIENTS) {
  runConformanceSuite({ describe, test, name: client.label, createTransport: () => createKafkaTransport(client.options()) });
}
