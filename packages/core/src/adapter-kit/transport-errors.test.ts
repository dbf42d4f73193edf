import { describe, expect, test } from "vitest";
import { TransportError } from "../errors/transport-error";
import { transportErrors } from "./transport-errors";

const coded = (code: number | string) => Object.assign(new Error(`code ${code}`), { code });

describe("transportErrors", () => {
  const errors = transportErrors({
    name: "fake",
    isRetryable: (cause) => (cause as { code?: unknown }).code !== 403,
    advice: (cause) => ((cause as { code?: unknown }).code === "ECONNREFUSED" ? "check that the broker runs" : undefined),
  });

  test("wrap: the message shape, retryable from the adapter's rule, the cause kept", () => {
    const dropped = errors.wrap("publishing to files failed", coded("ECONNRESET"));
    expect(TransportError.isInstance(dropped)).toBe(true);
    expect(dropped.retryable).toBe(true);
    expect(dropped.message).toBe("[stream] [fake] publishing to files failed: code ECONNRESET; retry; the transport reconnects by itself");
    expect((dropped.cause as Error).message).toBe("code ECONNRESET");
    const refused = errors.wrap("subscribing failed", coded(403));
    expect(refused.retryable).toBe(false);
    expect(refused.message).toMatch(/: code 403; fix the cause; retrying will not help$/);
    expect(errors.wrap("connecting failed", coded("ECONNREFUSED")).message).toMatch(/; check that the broker runs$/);
  });

  test("wrap: overrides, a non-Error cause, and a TransportError passing through", () => {
    const forced = errors.wrap("the connection dropped", coded(403), true, "try later");
    expect(forced.retryable).toBe(true);
    expect(forced.message).toBe("[stream] [fake] the connection dropped: code 403; try later");
    expect(errors.wrap("x", "socket closed").message).toBe("[stream] [fake] x: socket closed; retry; the transport reconnects by itself");
    expect(errors.wrap("again", forced)).toBe(forced);
    expect(errors.isRetryable(forced)).toBe(true);
    expect(errors.isRetryable(coded(403))).toBe(false);
  });

  test("error, closed, assertFrameSize", () => {
    const own = errors.error("no CONNACK within 10 ms", true);
    expect(own.message).toBe("[stream] [fake] no CONNACK within 10 ms");
    expect(own.retryable).toBe(true);
    expect(errors.closed().retryable).toBe(false);
    expect(errors.closed().message).toMatch(/^\[stream\] \[fake\] the transport is closed/);
    expect(() => errors.assertFrameSize(new Uint8Array(8), 8, "raise it")).not.toThrow();
    const tooLarge = (() => {
      try {
        errors.assertFrameSize(new Uint8Array(9), 8, "raise maxFrameBytes");
      } catch (error) {
        return error as TransportError;
      }
    })();
    expect(tooLarge?.retryable).toBe(false);
    expect(tooLarge?.message).toBe("[stream] [fake] a frame of 9 bytes is larger than maxFrameBytes (8); raise maxFrameBytes");
  });

  test("the defaults: every error retryable, its message as detail", () => {
    const plain = transportErrors({ name: "plain" });
    expect(plain.wrap("x", coded(403)).retryable).toBe(true);
  });
});
