import { runConformanceSuite } from "@stream/conformance";
import { describe, test } from "vitest";
import { createKafkaTransport } from "../src/index";
import { BROKERS } from "./kafka-test-support";

runConformanceSuite({ describe, test, name: "kafka", createTransport: () => createKafkaTransport({ brokers: BROKERS }) });
