import { afterEach, describe, expect, it, vi } from "vitest";
import { TransportError } from "../errors/transport-error";
import { isTlsCertificateError, nodeTlsOptions, TLS_UNVERIFIED_WARNING } from "./tls";
import { transportErrors } from "./transport-errors";

describe("nodeTlsOptions", () => {
  afterEach(() => vi.restoreAllMocks());

  it("checks the certificate and the host name by default", () => {
    const warn = vi.spyOn(process, "emitWarning").mockImplementation(() => {});
    expect(nodeTlsOptions("mqtt", { ca: "CA PEM" }, "broker.example")).toEqual({ ca: ["CA PEM"], servername: "broker.example", rejectUnauthorized: true });
    expect(warn).not.toHaveBeenCalled();
  });

  it("sends no IP address as the server name (TLS forbids it; Node checks the IP entries instead)", () => {
    expect(nodeTlsOptions("mqtt", {}, "127.0.0.1")).toEqual({ rejectUnauthorized: true });
    expect(nodeTlsOptions("mqtt", { servername: "localhost" }, "127.0.0.1").servername).toBe("localhost");
  });

  it("passes a client certificate and key as they are, and refuses one without the other", () => {
    const key = new TextEncoder().encode("KEY");
    expect(nodeTlsOptions("kafka", { cert: "CERT", key }, "h")).toMatchObject({ cert: "CERT", key: Buffer.from("KEY") });
    expect(() => nodeTlsOptions("kafka", { cert: "CERT" }, "h")).toThrow(/\[stream\] \[kafka\] tls.cert and tls.key go together/);
  });

  it("warns loudly, naming adapter and host, every time checks are off", () => {
    const warn = vi.spyOn(process, "emitWarning").mockImplementation(() => {});
    expect(nodeTlsOptions("amqp", { verify: false }, "h1").rejectUnauthorized).toBe(false);
    nodeTlsOptions("amqp", { verify: false }, "h1");
    expect(warn).toHaveBeenCalledTimes(2);
    expect(warn.mock.calls[0]?.[0]).toMatch(/\[stream\] \[amqp\] TLS certificate checks are OFF for h1/);
    expect(warn.mock.calls[0]?.[1]).toEqual({ code: TLS_UNVERIFIED_WARNING });
  });
});

describe("isTlsCertificateError", () => {
  const untrusted = Object.assign(new Error("unable to verify the first certificate"), { code: "UNABLE_TO_VERIFY_LEAF_SIGNATURE" });

  it("finds the code along the cause chain", () => {
    expect(isTlsCertificateError(untrusted)).toBe(true);
    expect(isTlsCertificateError(new Error("wrapped", { cause: new Error("again", { cause: untrusted }) }))).toBe(true);
    expect(isTlsCertificateError(new AggregateError([new Error("first"), untrusted], "all attempts failed"))).toBe(true);
    expect(isTlsCertificateError(Object.assign(new Error("refused"), { code: "ECONNREFUSED" }))).toBe(false);
    expect(isTlsCertificateError(undefined)).toBe(false);
  });

  it("makes transportErrors call it permanent, with advice about the CA", () => {
    const errors = transportErrors({ name: "mqtt", isRetryable: () => true });
    const error = errors.wrap("could not connect to mqtts://h:8883", untrusted);
    const hidden = errors.wrap("listing topics", new AggregateError([untrusted], "Listing topics failed."));
    expect(hidden.message).toMatch(/^\[stream\] \[mqtt\] listing topics: Listing topics failed\. \(unable to verify the first certificate\); check the TLS/);
    expect(TransportError.isInstance(error)).toBe(true);
    expect(error.retryable).toBe(false);
    expect(error.message).toMatch(/^\[stream\] \[mqtt\] could not connect to mqtts:\/\/h:8883: unable to verify the first certificate; .*tls\.ca/);
  });
});
