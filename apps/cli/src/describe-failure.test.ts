import { IntegrityError, StreamAbortedError, StreamTimeoutError, TransportError, UnsafePathError } from "@stream/core";
import { describe, expect, it } from "vitest";
import { CliError, UsageError } from "./cli-errors";
import { describeFailure } from "./describe-failure";
import { ExitCode } from "./exit-codes";

/** A TransportError wrapping `cause`, as the adapters build them. */
const wrapped = (message: string, cause: unknown, retryable = true) => new TransportError({ message: `[stream] [x] ${message}`, cause, retryable });
const withCode = (message: string, code: unknown, name = "Error") => Object.assign(new Error(message), { code, name });

describe("describeFailure", () => {
  it.each([
    ["a refused TCP connection", wrapped("connecting failed", withCode("connect ECONNREFUSED 127.0.0.1:1", "ECONNREFUSED")), ExitCode.BrokerUnreachable],
    ["an unknown host", wrapped("connecting failed", withCode("getaddrinfo ENOTFOUND nohost", "ENOTFOUND")), ExitCode.BrokerUnreachable],
    ["several refused addresses", wrapped("connecting failed", new AggregateError([withCode("x", "ECONNREFUSED")])), ExitCode.BrokerUnreachable],
    ["kafkajs' connection error", wrapped("create topic", withCode("Connection error: boom", undefined, "KafkaJSConnectionError")), ExitCode.BrokerUnreachable],
    ["a lost connection", wrapped("the connection dropped", undefined), ExitCode.BrokerUnreachable],
    [
      "RabbitMQ's ACCESS_REFUSED",
      wrapped("connecting failed", new Error('Handshake terminated by server: 403 (ACCESS-REFUSED) with message "ACCESS_REFUSED - Login was refused"'), false),
      ExitCode.AuthenticationFailed,
    ],
    ["MQTT's bad password", wrapped("connect", withCode("Connection refused: Bad username or password", 134)), ExitCode.AuthenticationFailed],
    ["MQTT's not authorized", wrapped("connect", withCode("Connection refused: Not authorized", 5)), ExitCode.AuthenticationFailed],
    ["Kafka's SASL failure", wrapped("connect", withCode("SASL PLAIN authentication failed", undefined, "KafkaJSSASLAuthenticationError")), ExitCode.AuthenticationFailed],
    ["a broker's 404", wrapped("subscribe", withCode("NOT_FOUND - no queue 'x'", 404), false), ExitCode.DestinationMissing],
    ["a checksum mismatch", new IntegrityError({ message: "[stream] chunk 3 failed its CRC-32 check" }), ExitCode.IntegrityMismatch],
    ["an unsafe name", new UnsafePathError({ message: "[stream] [cli] bad name" }), ExitCode.UnsafeName],
    ["an abort by the other side", new StreamAbortedError({ message: "[stream] the receiver aborted" }), ExitCode.StreamAborted],
    ["a usage error", new UsageError("--dest is required"), ExitCode.Usage],
    ["a CLI error", new CliError("no adapter", ExitCode.AdapterMissing, "install it"), ExitCode.AdapterMissing],
    ["core's chunk size check", new RangeError("[stream] chunkBytes 99999999 does not fit"), ExitCode.Usage],
    ["anything else", new Error("disk full"), ExitCode.Failure],
  ])("sorts %s", (_what, error, exitCode) => {
    const failure = describeFailure(error, { broker: "amqp://h:5672", destination: "files" });
    expect(failure.exitCode).toBe(exitCode);
    expect(failure.message.length).toBeGreaterThan(0);
    expect(failure.hint.length).toBeGreaterThan(0);
  });

  it("does not read the adapters' own advice as the broker's words", () => {
    const error = new TransportError({ message: "[stream] [activemq] failed: ECONNREFUSED; check the broker's settings and credentials", retryable: false });
    expect(describeFailure(error).exitCode).toBe(ExitCode.BrokerUnreachable);
  });

  it("calls a sender's timeout with no word from any receiver a missing destination", () => {
    const timeout = new StreamTimeoutError({ message: "[stream] no receiver acknowledged stream" });
    const missing = describeFailure(timeout, { destination: "files", heardFromReceiver: false });
    expect(missing.exitCode).toBe(ExitCode.DestinationMissing);
    expect(missing.hint).toContain("stream receive --dest files");
    expect(describeFailure(timeout, { heardFromReceiver: true }).exitCode).toBe(ExitCode.StreamAborted);
  });

  it("names the broker (as given, masked) and says what happened", () => {
    const failure = describeFailure(wrapped("connecting failed", withCode("connect ECONNREFUSED", "ECONNREFUSED")), { broker: "amqp://***@h:1" });
    expect(failure.code).toBe("BROKER_UNREACHABLE");
    expect(failure.message).toMatch(/^cannot reach the broker at amqp:\/\/\*\*\*@h:1: /);
  });
});
