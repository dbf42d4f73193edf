import { TransportError } from "@stream/core";
import type stompit from "stompit";
import { describe, expect, test } from "vitest";
import { isRetryableStompError, toTransportError } from "./activemq-errors";
import { createActivemqTransport, type ActivemqStompClient } from "./index";

const stompError = (message: string, kind: "transport" | "application"): Error =>
  Object.assign(new Error(message), {
    isTransportError: () => kind === "transport",
    isProtocolError: () => false,
    isApplicationError: () => kind === "application",
  });

describe("error mapping", () => {
  test("a dropped or refused connection is retryable", () => {
    const error = toTransportError("the connection to the broker was lost", stompError("connect ECONNREFUSED 127.0.0.1:61613", "transport"));
    expect(TransportError.isInstance(error)).toBe(true);
    expect(error.retryable).toBe(true);
    expect(error.message).toMatch(/^\[stream\] \[activemq\] the connection to the broker was lost: connect ECONNREFUSED/);
    expect(error.cause).toBeInstanceOf(Error);
  });

  test("the broker refusing credentials, permissions or a frame size is not retryable", () => {
    for (const message of [
      "User name [bob] or password is invalid.",
      "User bob is not authorized to write to: queue://files",
      "The maximum data length was exceeded",
    ]) {
      expect(isRetryableStompError(stompError(message, "application")), message).toBe(false);
      expect(toTransportError("the broker refused", stompError(message, "application")).message).toMatch(/retrying will not help/);
    }
    expect(isRetryableStompError(stompError("some transient broker trouble", "application"))).toBe(true);
  });

  test("a CONNECT refused for its password is not retryable, though stompit flags it a transport error once the socket closes", () => {
    expect(isRetryableStompError(stompError("User name [bob] or password is invalid.", "transport"))).toBe(false);
    expect(isRetryableStompError(stompError("The maximum data length was exceeded", "transport"))).toBe(true);
  });

  test("takes tls only with a stomp+ssl:// URL", () => {
    expect(() => createActivemqTransport({ url: "stomp://broker:61613", tls: { ca: "CA" } })).toThrow(/\[stream\] \[activemq\] tls is given but stomp:\/\/ is not TLS/);
    expect(() => createActivemqTransport({ url: "stomp+ssl://broker:61614", tls: { ca: "CA" } })).not.toThrow();
  });

  test("a TransportError passes through unchanged", () => {
    const original = new TransportError({ message: "[stream] [activemq] x", retryable: false });
    expect(toTransportError("wrapped", original)).toBe(original);
  });
});

describe("createActivemqTransport (no broker needed)", () => {
  test("declares the interface version and honest capabilities", () => {
    const transport = createActivemqTransport({ maxFrameBytes: 1024 * 1024 });
    expect(transport.specificationVersion).toBe("stream-transport-v1");
    expect(transport.name).toBe("activemq");
    expect(transport.capabilities).toEqual({
      maxFrameBytes: 1024 * 1024,
      ordering: "per-key",
      redelivery: true,
      retention: "until-consumed",
      exclusiveConsumer: true,
      brokerAcks: true,
      messageExpiry: true,
    });
  });

  test("refuses bad channel names and bad options without touching the network", async () => {
    const transport = createActivemqTransport({ url: "stomp://127.0.0.1:1" });
    const error = await transport.publish("files/../x", new Uint8Array(1), { key: "k", kind: "stream" }).catch((e: unknown) => e);
    expect(TransportError.isInstance(error) && !error.retryable).toBe(true);
    await expect(transport.subscribe("a b", () => {}, { kind: "stream" })).rejects.toThrow(/^\[stream\] \[activemq\] channel name "a b" is invalid/);
    expect(() => createActivemqTransport({ prefetchCount: 0 })).toThrow(RangeError);
    await transport.close();
    const closed = await transport.publish("files", new Uint8Array(1), { key: "k", kind: "stream" }).catch((e: unknown) => e);
    expect((closed as Error).message).toMatch(/closed/);
  });

  test("a malformed URL or another scheme fails at creation", () => {
    expect(() => createActivemqTransport({ url: "amqp://127.0.0.1" })).toThrow(/unsupported URL scheme amqp:/);
    expect(() => createActivemqTransport({ url: "not a url" })).toThrow(/is not a URL/);
    expect(() => createActivemqTransport({ url: "stomp+ssl://user:p%40ss@broker:61612" })).not.toThrow();
  });

  test("a stompit Client fits the client option", () => {
    // Checked by the compiler (`pnpm typecheck`): no cast needed to inject a stompit client.
    const fits = (client: stompit.Client): ActivemqStompClient => client;
    expect(typeof fits).toBe("function");
  });
});
