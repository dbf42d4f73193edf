import { TRANSPORT_SPECIFICATION_VERSION, TransportError, assertTransport } from "@stream/core";
import { describe, expect, test } from "vitest";
import { createMqttTransport } from "./mqtt-transport";

describe("createMqttTransport (no broker)", () => {
  test("declares the interface version and MQTT's honest capabilities", () => {
    const transport = assertTransport(createMqttTransport());
    expect(transport.specificationVersion).toBe(TRANSPORT_SPECIFICATION_VERSION);
    expect(transport.name).toBe("mqtt");
    expect(transport.capabilities).toEqual({
      maxFrameBytes: 1024 * 1024 + 64 * 1024,
      ordering: "per-key",
      redelivery: false,
      retention: "none",
      exclusiveConsumer: false,
      brokerAcks: false,
      messageExpiry: true,
    });
    // MQTT 3.1.1 has no message expiry interval.
    expect(createMqttTransport({ protocolVersion: 4 }).capabilities.messageExpiry).toBe(false);
  });

  test("maxFrameBytes is configurable within MQTT's packet limit", () => {
    expect(createMqttTransport({ maxFrameBytes: 65_536 }).capabilities.maxFrameBytes).toBe(65_536);
    expect(() => createMqttTransport({ maxFrameBytes: 300 * 1024 * 1024 })).toThrow(RangeError);
    expect(() => createMqttTransport({ maxFrameBytes: 100 })).toThrow(RangeError);
  });

  test("refuses options MQTT cannot honour", () => {
    expect(() => createMqttTransport({ topicPrefix: "a/#/" })).toThrow(TypeError);
    expect(() => createMqttTransport({ topicPrefix: "$SYS/" })).toThrow(TypeError);
    expect(() => createMqttTransport({ protocolVersion: 3 as 4 })).toThrow(RangeError);
    expect(() => createMqttTransport({ qos: 0 as 1 })).toThrow(RangeError);
    expect(() => createMqttTransport({ prefetchFrames: 0 })).toThrow(RangeError);
    expect(() => createMqttTransport({ inflightFrames: 0 })).toThrow(RangeError);
  });

  test("rejects channel names outside [A-Za-z0-9._-] before touching the network", async () => {
    const transport = createMqttTransport({ url: "mqtt://127.0.0.1:1" });
    const error = await transport.publish("a/b", new Uint8Array(1), { key: "k", kind: "stream" }).catch((e: unknown) => e);
    expect(TransportError.isInstance(error) && !error.retryable).toBe(true);
    await expect(transport.subscribe("a+", () => {}, { kind: "stream" })).rejects.toThrow(/^\[stream\] \[mqtt\] channel name "a\+" is invalid/);
    await transport.close();
  });

  test("a frame above maxFrameBytes is refused for good", async () => {
    const transport = createMqttTransport({ url: "mqtt://127.0.0.1:1", maxFrameBytes: 4096 });
    const error = await transport.publish("files", new Uint8Array(4097), { key: "k", kind: "stream" }).catch((e: unknown) => e);
    expect(TransportError.isInstance(error) && !error.retryable).toBe(true);
    await transport.close();
  });

  test("an unreachable broker fails with a retryable TransportError, and close still works", async () => {
    const transport = createMqttTransport({ url: "mqtt://127.0.0.1:1", connectTimeoutMs: 2000 });
    const error = await transport.publish("files", new Uint8Array(1), { key: "k", kind: "stream" }).catch((e: unknown) => e);
    expect(TransportError.isInstance(error)).toBe(true);
    expect((error as TransportError).retryable).toBe(true);
    expect((error as Error).message).toMatch(/^\[stream\] \[mqtt\] could not connect to mqtt:\/\/127\.0\.0\.1:1/);
    await transport.close();
    const closed = await transport.publish("files", new Uint8Array(1), { key: "k", kind: "stream" }).catch((e: unknown) => e);
    expect(TransportError.isInstance(closed) && !closed.retryable).toBe(true);
  });
});
