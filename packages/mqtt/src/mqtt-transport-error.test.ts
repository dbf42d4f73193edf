import { TransportError } from "@stream/core";
import { describe, expect, test } from "vitest";
import { isRetryable, mqttErrors } from "./mqtt-transport-error";

const withCode = (code: number | string) => Object.assign(new Error(`code ${code}`), { code });

describe("mqttErrors.wrap", () => {
  test("a dropped connection is retryable, with the cause kept and advice given", () => {
    const cause = withCode("ECONNRESET");
    const error = mqttErrors.wrap("publishing to stream/files failed", cause);
    expect(TransportError.isInstance(error)).toBe(true);
    expect(error.retryable).toBe(true);
    expect(error.cause).toBe(cause);
    expect(error.message).toMatch(/^\[stream\] \[mqtt\] publishing to stream\/files failed: code ECONNRESET; retry/);
  });

  test.each([
    [4, "3.1.1 bad user name or password"],
    [5, "3.1.1 not authorized"],
    [0x87, "not authorized"],
    [0x90, "topic name invalid"],
    [0x95, "packet too large"],
    [0x9e, "shared subscriptions not supported"],
  ])("reason code %i (%s) is not retryable", (code) => {
    const error = mqttErrors.wrap("subscribing failed", withCode(code));
    expect(error.retryable).toBe(false);
    expect(error.message).toContain(`(reason code 0x${code.toString(16)})`);
    expect(error.message).toContain("refused for good");
  });

  test.each([
    [3, "3.1.1 server unavailable"],
    [0x80, "unspecified error"],
    [0x89, "server busy"],
    [0x8b, "server shutting down"],
    [0x97, "quota exceeded"],
  ])("reason code %i (%s) is retryable", (code) => {
    expect(isRetryable(withCode(code))).toBe(true);
  });

  test("a TransportError passes through unchanged", () => {
    const original = new TransportError({ message: "[stream] [mqtt] x", retryable: false });
    expect(mqttErrors.wrap("anything", original)).toBe(original);
  });
});
