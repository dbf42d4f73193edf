import { IntegrityError, SourceChangedError, StreamAbortedError, StreamError, StreamRefusedError, StreamTimeoutError, TargetFolderError, TransportError, UnsafePathError } from "@stream/core";
import { describe, expect, it } from "vitest";
import { CliError, UsageError } from "./cli-errors";
import { cliWords, describeFailure } from "./describe-failure";
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
    ["an untrusted broker certificate", wrapped("connect", withCode("self-signed certificate in certificate chain", "SELF_SIGNED_CERT_IN_CHAIN"), false), ExitCode.TlsFailed],
    ["a wrong host name", wrapped("connect", new AggregateError([withCode("Hostname/IP does not match", "ERR_TLS_CERT_ALTNAME_INVALID")]), false), ExitCode.TlsFailed],
    ["a client certificate the broker wanted", wrapped("connect", withCode("tlsv13 alert certificate required", "ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED"), false), ExitCode.TlsFailed],
    ["a broker's 404", wrapped("subscribe", withCode("NOT_FOUND - no queue 'x'", 404), false), ExitCode.DestinationMissing],
    ["a checksum mismatch", new IntegrityError({ message: "[stream] chunk 3 failed its CRC-32 check" }), ExitCode.IntegrityMismatch],
    ["an unsafe name", new UnsafePathError({ message: "[stream] [cli] bad name" }), ExitCode.UnsafeName],
    ["a resume of a changed file", new SourceChangedError({ message: "[stream] cannot resume x: /a changed", path: "/a" }), ExitCode.SourceChanged],
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

  // Messages as core and the adapters word them today (packages/*/src), with their advice for a
  // long-running program; the CLI exits, so it says what to do in its own words.
  const LIBRARY_MESSAGES: ReadonlyArray<readonly [string, unknown, FailureContextLike?]> = [
    ["a sender's idle timeout", new StreamTimeoutError({ message: "[stream] no receiver acknowledged stream s1 on files for 300 ms; is a receiver running? Retry, or raise idleTimeoutMs." }), { heardFromReceiver: false }],
    ["a timeout part-way", new StreamTimeoutError({ message: "[stream] no receiver acknowledged stream s1 on files for 300 ms; is a receiver running? Retry, or raise idleTimeoutMs." }), { heardFromReceiver: true }],
    ["core's chunk size check", new RangeError("[stream] chunkBytes 99999999 does not fit: this transport carries frames of at most 1048576 bytes, so chunks of 1 to 1048000 bytes. Lower chunkBytes or raise the broker limit.")],
    ["core's window check", new RangeError("[stream] windowChunks must be a positive integer")],
    ["ActiveMQ's lost connection", wrapped("could not connect to the broker: connect ECONNREFUSED 127.0.0.1:1; the adapter reconnects by itself; retry the operation.", withCode("connect ECONNREFUSED 127.0.0.1:1", "ECONNREFUSED"))],
    ["ActiveMQ's publish while down", new TransportError({ message: "[stream] [activemq] the connection to the broker is down; reconnecting, retry the publish." })],
    ["MQTT's missing PUBACK", new TransportError({ message: "[stream] [mqtt] no acknowledgement for a publish to t within 30000 ms (reconnecting); retry, or raise ackTimeoutMs" })],
    ["MQTT's missing CONNACK", new TransportError({ message: "[stream] [mqtt] no CONNACK from mqtt://h:1883 within 10000 ms; check the URL and that the broker runs, or raise connectTimeoutMs" })],
    ["MQTT's oversized frame", new TransportError({ message: "[stream] [mqtt] a frame of 2000000 bytes exceeds maxFrameBytes 1048576; send smaller chunks or raise maxFrameBytes", retryable: false })],
    ["MQTT's reconnect advice", new TransportError({ message: "[stream] [mqtt] publish failed: client disconnecting; retry; the transport reconnects by itself" })],
    ["RabbitMQ's reconnect advice", new TransportError({ message: "[stream] [rabbitmq] publish failed: Channel closed; it may succeed after a reconnect; try again" })],
    ["Kafka's reconnect advice", new TransportError({ message: "[stream] [kafka] produce failed: boom; check that Kafka is reachable; core retries after a reconnect" })],
    ["Kafka's batch limit", new TransportError({ message: "[stream] [kafka] produce failed: too large; lower maxFrameBytes/maxBatchBytes or raise the broker's message.max.bytes (topic max.message.bytes)", retryable: false })],
    ["a receiver's window refusal", new StreamAbortedError({ message: "[stream] the receiver aborted stream s1: its window of 99 bytes exceeds this receiver's maxWindowBytes 9; send with a smaller windowBytes" })],
  ];
  type FailureContextLike = { heardFromReceiver?: boolean };

  it.each(LIBRARY_MESSAGES)("words %s with CLI options, never library option names or the library's retry advice", (_what, error, context) => {
    const failure = describeFailure(error, { broker: "amqp://h:5672", destination: "files", ...(context as FailureContextLike | undefined) });
    const text = `${failure.message}\n${failure.hint}`;
    expect(text).not.toMatch(/\b[a-z]+[A-Z][A-Za-z]*(?:Ms|Bytes|Chunks)\b/);
    expect(text).not.toMatch(/reconnects by itself|\bretry\b|try again|core retries/i);
    expect(failure.hint).not.toBe("");
  });

  it("maps the library's option names to the send options that set them", () => {
    expect(cliWords("raise idleTimeoutMs, lower chunkBytes or windowChunks")).toBe("raise --timeout, lower --chunk-bytes or --window");
    const chunk = describeFailure(new RangeError("[stream] chunkBytes 99999999 does not fit: frames of at most 1048576 bytes. Lower chunkBytes or raise the broker limit."));
    expect(chunk.exitCode).toBe(ExitCode.Usage);
    expect(chunk.message).toContain("--chunk-bytes 99999999 does not fit");
    const timeout = describeFailure(new StreamTimeoutError({ message: "[stream] no receiver acknowledged stream s1 on files for 300 ms; is a receiver running? Retry, or raise idleTimeoutMs." }), {
      destination: "files",
      heardFromReceiver: false,
    });
    expect(timeout.hint).toContain("--timeout");
  });

  it("says what to do, not to retry, when the connection is gone", () => {
    const failure = describeFailure(wrapped("the connection dropped; the adapter reconnects by itself; retry the operation", undefined));
    expect(failure.exitCode).toBe(ExitCode.BrokerUnreachable);
    expect(failure.message).toBe("lost the connection to the broker: [stream] [x] the connection dropped");
    expect(failure.hint).toBe("check that the broker is up and reachable, then run the command again");
  });

  it.each([
    ["core's typed refusal (any error with a reason)", Object.assign(new StreamError("STREAM_REFUSED", { message: "[stream] the receiver refused stream s1" }), { reason: "cannot write to /srv/inbox: EACCES" }), "refused"],
    ["a refusal carried in an abort", new StreamAbortedError({ message: "[stream] the receiver aborted stream s1: cannot write to /srv/inbox: EACCES" }), "ended"],
  ])("shows %s verbatim to the sender", (_what, error, verb) => {
    const failure = describeFailure(new StreamAbortedError({ message: "[stream] send failed", cause: error }), { destination: "files", heardFromReceiver: false });
    expect(failure.exitCode).toBe(ExitCode.StreamAborted);
    expect(failure.message).toBe(`the receiver ${verb} the stream: cannot write to /srv/inbox: EACCES`);
    expect(failure.hint).toContain("receiving side");
  });

  it("shows core's StreamRefusedError's reason to the sender (exit 7)", () => {
    const reason = "the receiver cannot write to its folder ./inbox: EACCES";
    const refused = new StreamRefusedError({ message: `[stream] the receiver refused stream s1 (f.bin): ${reason}. Nothing was kept.`, reason });
    const failure = describeFailure(refused, { destination: "files", heardFromReceiver: true });
    expect(failure.exitCode).toBe(ExitCode.StreamAborted);
    expect(failure.message).toBe(`the receiver refused the stream: ${reason}`);
  });

  it("tells a receiver its --out folder cannot be written (exit 2), naming the folder and the reason", () => {
    const error = new TargetFolderError({ message: "[stream] cannot write to the folder /srv/inbox: EEXIST", folder: "/srv/inbox", fsCode: "EEXIST" });
    const failure = describeFailure(error);
    expect(failure.exitCode).toBe(ExitCode.Usage);
    expect(failure.message).toBe("cannot write to the --out folder /srv/inbox: EEXIST; the stream was refused and its sender told why");
    expect(failure.hint).toContain("another --out");
  });

  it.each([
    "[stream] the sender aborted stream s1 (f.bin): no acknowledgement from any receiver in time",
    "[stream] stream s1 (f.bin) was withdrawn by its sender after a timeout of 120000 ms",
  ])("tells a receiver the sender withdrew the stream: %s", (message) => {
    const failure = describeFailure(new StreamAbortedError({ message }));
    expect(failure.exitCode).toBe(ExitCode.StreamAborted);
    expect(failure.message).toMatch(/^the sender ended the stream: /);
    expect(failure.hint).toContain("ask the sender to send it again");
  });
});
