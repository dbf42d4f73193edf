import { runConformanceSuite } from "@stream/conformance";
import { afterAll, describe, test } from "vitest";
import { createRabbitMQTransport } from "../src/index";
import { RABBITMQ_URL, deleteQueuesStartingWith } from "./helpers";

runConformanceSuite({ describe, test, name: "rabbitmq", createTransport: () => createRabbitMQTransport({ url: RABBITMQ_URL }) });

afterAll(() => deleteQueuesStartingWith("conformance.rabbitmq."));
