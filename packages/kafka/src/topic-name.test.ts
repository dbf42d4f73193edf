import { describe, expect, test } from "vitest";
import { toTopicName } from "./topic-name";

describe("toTopicName", () => {
  test("keeps core's channel names and prefixes them", () => {
    expect(toTopicName("files.inbox.0a1b2c", "app.")).toBe("app.files.inbox.0a1b2c");
  });
  test("replaces what Kafka does not allow", () => {
    expect(toTopicName("a b/c:d")).toBe("a_b_c_d");
  });
  test("refuses names Kafka cannot hold instead of cutting them", () => {
    expect(() => toTopicName("x".repeat(250))).toThrow(/249/);
    expect(() => toTopicName("..")).toThrow(/no valid topic name/);
  });
});
