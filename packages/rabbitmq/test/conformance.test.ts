import { runConformanceSuite } from "@stream/conformance";
import { afterAll, describe, test } from "vitest";
import { createRabbitmqTransport } from "../src/index";
import { RABBITMQ_URL, deleteQueuesStartingWith } from "./helpers";

runConformanceSuite({ describe, test, name: "rabbitmq", createTransport: () => createRabbitmqTransport({ url: RABBITMQ_URL }) });

afterAll(() => deleteQueuesStartingWith("conformance.rabbitmq."));
