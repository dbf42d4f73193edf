import { runConformanceSuite } from "@stream/conformance";
import { describe, test } from "vitest";
import { createActivemqTransport } from "../src/index";

runConformanceSuite({
  describe,
  test,
  name: "activemq",
  createTransport: () => createActivemqTransport({ url: process.env.STREAM_ACTIVEMQ_URL ?? "stomp://127.0.0.1:61613" }),
});
