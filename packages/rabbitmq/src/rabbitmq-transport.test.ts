import { TRANSPORT_SPECIFICATION_VERSION, TransportError } from "@stream/core";
import type { ChannelModel } from "amqplib";
import { describe, expect, test } from "vitest";
import type { RabbitmqConnection } from "./rabbitmq-client";
import { isRetryable, toTransportError } from "./rabbitmq-errors";
import { createRabbitmqTransport } from "./rabbitmq-transport";

// Compile-time: what amqplib.connect() resolves to fits the structural connection type.
const fits = (connection: ChannelModel): RabbitmqConnection => connection;

describe("createRabbitmqTransport (no broker)", () => {
  test("declares the capabilities of RabbitMQ with single active consumer", () => {
    expect(typeof fits).toBe("function");
    const transport = createRabbitmqTransport();
    expect(transport.specificationVersion).toBe(TRANSPORT_SPECIFICATION_VERSION);
    expect(transport.name).toBe("rabbitmq");
    expect(transport.capabilities).toEqual({
      maxFrameBytes: 16 * 1024 * 1024,
      ordering: "per-key",
      redelivery: true,
      retention: "until-consumed",
      exclusiveConsumer: true,
      brokerAcks: true,
      messageExpiry: true,
    });
  });

  test("without single active consumer it promises neither order nor one consumer per stream", () => {
    const transport = createRabbitmqTransport({ singleActiveConsumer: false, maxFrameBytes: 1024 });
    expect(transport.capabilities).toMatchObject({ ordering: "none", exclusiveConsumer: false, maxFrameBytes: 1024 });
  });

  test("refuses bad channel names and oversized frames without touching the network", async () => {
    const transport = createRabbitmqTransport({ url: "amqp://127.0.0.1:1", maxFrameBytes: 8 });
    const badName = await transport.publish("no spaces", new Uint8Array(1), { key: "k", kind: "stream" }).catch((error: unknown) => error);
    expect(TransportError.isInstance(badName)).toBe(true);
    expect((badName as TransportError).retryable).toBe(false);
    expect((badName as Error).message).toMatch(/^\[stream\] \[rabbitmq\] channel name/);
    const tooBig = await transport.publish("files", new Uint8Array(9), { key: "k", kind: "stream" }).catch((error: unknown) => error);
    expect((tooBig as TransportError).retryable).toBe(false);
    expect((tooBig as Error).message).toMatch(/larger than maxFrameBytes/);
    await transport.close();
    const closed = await transport.publish("files", new Uint8Array(1), { key: "k", kind: "stream" }).catch((error: unknown) => error);
    expect((closed as TransportError).retryable).toBe(false);
  });

  test("an unreachable broker is a retryable TransportError that says what to do", async () => {
    const transport = createRabbitmqTransport({ url: "amqp://127.0.0.1:1" });
    const error = await transport.publish("files", new Uint8Array(1), { key: "k", kind: "stream" }).catch((e: unknown) => e);
    expect(TransportError.isInstance(error)).toBe(true);
    expect((error as TransportError).retryable).toBe(true);
    expect((error as Error).message).toMatch(/^\[stream\] \[rabbitmq\] .*; check that RabbitMQ is running/);
    expect((error as Error).cause).toBeInstanceOf(Error);
    await transport.close();
  });

  test("rejects option values that cannot work", () => {
    expect(() => createRabbitmqTransport({ prefetchCount: 0 })).toThrow(RangeError);
    expect(() => createRabbitmqTransport({ reconnectMaxDelayMs: -1 })).toThrow(RangeError);
  });
});

describe("error mapping", () => {
  test("AMQP refusals are for good, drops are retryable", () => {
    const coded = (code: number | string, message = "x") => Object.assign(new Error(message), { code });
    expect(isRetryable(coded(403))).toBe(false);
    expect(isRetryable(coded(406))).toBe(false);
    expect(isRetryable(coded(530))).toBe(false);
    expect(isRetryable(new Error("Handshake terminated by server: 403 (ACCESS-REFUSED)"))).toBe(false);
    expect(isRetryable(coded(320))).toBe(true);
    expect(isRetryable(coded("ECONNRESET"))).toBe(true);
    expect(isRetryable(new Error("Channel closed"))).toBe(true);
  });

  test("messages name the adapter, the cause and what to do", () => {
    const cause = Object.assign(new Error("PRECONDITION_FAILED - inequivalent arg 'x-single-active-consumer'"), { code: 406 });
    const error = toTransportError("subscribing to files failed", cause);
    expect(error.retryable).toBe(false);
    expect(error.cause).toBe(cause);
    expect(error.message).toMatch(/^\[stream\] \[rabbitmq\] subscribing to files failed: .*; the queue exists with other arguments/);
    expect(toTransportError("again", error)).toBe(error);
  });
});
