import { describe, expect, test } from "vitest";
import { TransportError } from "../errors/transport-error";
import { MAX_CHANNEL_CHARS, MAX_DESTINATION_CHARS, isChannelName, isDestinationName, parseManifest } from "../protocol/frame-codec";
import { assertChannelName } from "./channel-name";

describe("channel names", () => {
  test("1 to 200 characters of [A-Za-z0-9._-]; destinations leave room for .inbox.<12 hex>", () => {
    expect(MAX_CHANNEL_CHARS).toBe(200);
    expect(MAX_DESTINATION_CHARS + ".inbox.".length + 12).toBeLessThanOrEqual(MAX_CHANNEL_CHARS);
    expect(isChannelName("files.in_1-x")).toBe(true);
    expect(isChannelName("a".repeat(200))).toBe(true);
    expect(isChannelName("a".repeat(201))).toBe(false);
    for (const bad of ["", "a b", "a/b", "a+", "é", 7, undefined]) expect(isChannelName(bad)).toBe(false);
    expect(isDestinationName("a".repeat(180))).toBe(true);
    expect(isDestinationName("a".repeat(181))).toBe(false);
    expect(isChannelName(`${"a".repeat(180)}.inbox.0123456789ab`)).toBe(true);
  });

  test("assertChannelName returns a good name and throws core's non-retryable TransportError for a bad one", () => {
    expect(assertChannelName("files", "rabbitmq")).toBe("files");
    let error: unknown;
    try {
      assertChannelName("a b", "rabbitmq");
    } catch (e) {
      error = e;
    }
    expect(TransportError.isInstance(error)).toBe(true);
    expect((error as TransportError).retryable).toBe(false);
    expect((error as Error).message).toMatch(/^\[stream\] \[rabbitmq\] channel name "a b" is invalid: use 1 to 200 characters/);
  });

  test("a manifest's replyTo is a channel name or empty", () => {
    const manifest = {
      streamId: "00000000-0000-4000-8000-000000000000",
      name: "f",
      contentType: "application/octet-stream",
      chunkBytes: 1,
      metadata: {},
      createdAt: new Date(0).toISOString(),
      model: "push",
      windowChunks: 1,
      windowBytes: 1,
    };
    expect(parseManifest({ ...manifest, replyTo: "" }).replyTo).toBe("");
    expect(parseManifest({ ...manifest, replyTo: "a".repeat(200) }).replyTo).toHaveLength(200);
    expect(() => parseManifest({ ...manifest, replyTo: "a b" })).toThrow(/replyTo/);
  });
});
