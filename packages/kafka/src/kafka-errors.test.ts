import { TransportError } from "@stream/core";
import {
  KafkaJSConnectionError,
  KafkaJSNumberOfRetriesExceeded,
  KafkaJSProtocolError,
  KafkaJSSASLAuthenticationError,
} from "kafkajs";
import { AuthenticationError, MultipleErrors, NetworkError, ProtocolError } from "@platformatic/kafka";
import { describe, expect, test } from "vitest";
import { isRetryableKafkaError, toTransportError } from "./kafka-errors";

const protocolError = (type: string, retriable: boolean) =>
  new KafkaJSProtocolError({ type, code: 1, retriable, message: `broker says ${type}` } as never);

describe("kafka error mapping", () => {
  test("a dropped connection is retryable, also once kafkajs gave up retrying it", () => {
    const dropped = new KafkaJSConnectionError("Connection error: ECONNREFUSED");
    expect(isRetryableKafkaError(dropped)).toBe(true);
    expect(isRetryableKafkaError(new KafkaJSNumberOfRetriesExceeded(dropped, { retryCount: 5, retryTime: 300 }))).toBe(true);
  });

  test("a record too large, an authorization failure and a SASL failure are not", () => {
    expect(isRetryableKafkaError(protocolError("MESSAGE_TOO_LARGE", false))).toBe(false);
    expect(isRetryableKafkaError(protocolError("TOPIC_AUTHORIZATION_FAILED", false))).toBe(false);
    expect(isRetryableKafkaError(new (KafkaJSSASLAuthenticationError as new (message: string) => Error)("bad password"))).toBe(false);
    expect(isRetryableKafkaError(protocolError("LEADER_NOT_AVAILABLE", true))).toBe(true);
  });

  test("a SASL refusal that @platformatic/kafka wraps (its root: the closed connection) is not retryable, and says so", () => {
    const refused = new AuthenticationError("SASL authentication failed.", { cause: new NetworkError("Connection closed") } as never);
    const wrapped = new MultipleErrors("Listing topics failed.", [refused]);
    expect(isRetryableKafkaError(wrapped)).toBe(false);
    const error = toTransportError("could not create topic t", wrapped);
    expect(error.retryable).toBe(false);
    expect(error.message).toBe(
      "[stream] [kafka] could not create topic t: Listing topics failed. (SASL authentication failed.); check the client's credentials and the broker's ACLs",
    );
  });

  test("wraps in TransportError with the cause, the source and what to do", () => {
    const cause = protocolError("MESSAGE_TOO_LARGE", false);
    const error = toTransportError("publish to topic t failed", cause);
    expect(TransportError.isInstance(error)).toBe(true);
    expect(error.retryable).toBe(false);
    expect(error.cause).toBe(cause);
    expect(error.message).toMatch(/^\[stream\] \[kafka\] publish to topic t failed: .*; .*message\.max\.bytes/);
    const again = toTransportError("other", error);
    expect(again).toBe(error);
  });

  test("@platformatic/kafka: a dropped connection is retryable, also inside its MultipleErrors; a record too large and bad credentials are not", () => {
    const dropped = new NetworkError("Connection closed");
    expect(isRetryableKafkaError(dropped)).toBe(true);
    expect(isRetryableKafkaError(new MultipleErrors("Produce failed after 3 attempts", [dropped, dropped, dropped]))).toBe(true);
    const tooLarge = new MultipleErrors("Received response with error", [new ProtocolError("MESSAGE_TOO_LARGE")]);
    expect(isRetryableKafkaError(tooLarge)).toBe(false);
    expect(toTransportError("publish to topic t failed", tooLarge).message).toMatch(/message\.max\.bytes/);
    expect(isRetryableKafkaError(new ProtocolError("LEADER_NOT_AVAILABLE"))).toBe(true);
    expect(isRetryableKafkaError(new AuthenticationError("bad password"))).toBe(false);
  });
});
