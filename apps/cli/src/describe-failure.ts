import {
  IntegrityError,
  StreamAbortedError,
  StreamError,
  StreamTimeoutError,
  TransportError,
  UnsafePathError,
} from "@stream/core";
import { CliError } from "./cli-errors";
import { ExitCode, type ExitCodeValue } from "./exit-codes";

/** What the CLI tells the user about an error: an exit code, a stable name, what happened, what to do. */
export interface Failure {
  readonly exitCode: ExitCodeValue;
  /** Stable, machine-readable: `BROKER_UNREACHABLE`, `AUTHENTICATION_FAILED`, ... */
  readonly code: string;
  readonly message: string;
  readonly hint: string;
}

/** What the command knew when it failed, for a message that names things. */
export interface FailureContext {
  /** The broker URL as printed (credentials masked). */
  readonly broker?: string;
  readonly destination?: string;
  /** A sender that never heard from a receiver: its timeout means nobody is there. */
  readonly heardFromReceiver?: boolean;
}

const CODE_NAMES: Readonly<Record<ExitCodeValue, string>> = {
  [ExitCode.Ok]: "OK",
  [ExitCode.Failure]: "FAILURE",
  [ExitCode.Usage]: "USAGE",
  [ExitCode.BrokerUnreachable]: "BROKER_UNREACHABLE",
  [ExitCode.AuthenticationFailed]: "AUTHENTICATION_FAILED",
  [ExitCode.IntegrityMismatch]: "INTEGRITY_MISMATCH",
  [ExitCode.DestinationMissing]: "DESTINATION_MISSING",
  [ExitCode.StreamAborted]: "STREAM_ABORTED",
  [ExitCode.AdapterMissing]: "ADAPTER_MISSING",
  [ExitCode.UnsafeName]: "UNSAFE_NAME",
  [ExitCode.Interrupted]: "INTERRUPTED",
};

/** The stable name of an exit code, as `--json` error events carry it. */
export function exitCodeName(code: ExitCodeValue): string {
  return CODE_NAMES[code];
}

const NETWORK_CODES = new Set(["ECONNREFUSED", "ENOTFOUND", "EAI_AGAIN", "EHOSTUNREACH", "ENETUNREACH", "ETIMEDOUT", "ECONNRESET", "EPIPE", "ECONNABORTED"]);
const NETWORK_TEXT =
  /ECONNREFUSED|ENOTFOUND|EAI_AGAIN|EHOSTUNREACH|ENETUNREACH|ETIMEDOUT|connect(ion)? time ?out|timed out connecting|no CONNACK|Socket closed abruptly|socket hang up|KafkaJSConnectionError|Connection error/i;
const NETWORK_NAMES = new Set(["KafkaJSConnectionError", "KafkaJSConnectionClosedError", "KafkaJSRequestTimeoutError"]);
const AUTH_TEXT =
  /ACCESS[-_ ]REFUSED|not authori[sz]ed|AUTHORIZATION_FAILED|authentication (failed|error|mechanism)|SASL|bad user ?name or password|password is invalid|invalid (credentials|password|login)|login was refused|Expected ConnectionOpenOk|SecurityException/i;
const AUTH_NAMES = new Set(["KafkaJSSASLAuthenticationError"]);
const MISSING_TEXT = /NOT[-_ ]FOUND|no such (queue|topic|destination|vhost)|UNKNOWN_TOPIC|does not exist/i;

/** The error and every error it wraps (`cause`, kafkajs' `originalError`, `AggregateError.errors`). */
function* causes(error: unknown, depth = 0, seen = new Set<unknown>()): Generator<unknown> {
  if (error === null || error === undefined || seen.has(error) || depth > 12) return;
  seen.add(error);
  yield error;
  if (typeof error !== "object") return;
  const { cause, originalError, errors } = error as { cause?: unknown; originalError?: unknown; errors?: unknown };
  yield* causes(cause, depth + 1, seen);
  yield* causes(originalError, depth + 1, seen);
  if (Array.isArray(errors)) for (const inner of errors) yield* causes(inner, depth + 1, seen);
}

function field(error: unknown, name: "code" | "name" | "message"): unknown {
  return typeof error === "object" && error !== null ? (error as Record<string, unknown>)[name] : undefined;
}

function messageOf(error: unknown): string {
  if (error instanceof Error) return error.message;
  return String(error);
}

/**
 * Sorts any error into the exit codes of {@link ExitCode}, with a message that says what went
 * wrong and a hint that says what to do. Broker clients differ in how they report the same
 * failure, so this reads codes, names and (for the broker's own refusals) message text along the
 * whole `cause` chain. Only the broker's own errors are read for text: the adapters' wrapping
 * messages carry advice ("check the credentials") that would mislead a text match.
 */
export function describeFailure(error: unknown, context: FailureContext = {}): Failure {
  const at = context.broker ? ` at ${context.broker}` : "";
  const dest = context.destination ? ` "${context.destination}"` : "";
  const detail = messageOf(error);
  const make = (exitCode: ExitCodeValue, headline: string, hint: string): Failure => ({
    exitCode,
    code: exitCodeName(exitCode),
    message: headline === detail || headline === "" ? detail : `${headline}: ${detail}`,
    hint,
  });

  if (error instanceof CliError) return { exitCode: error.exitCode, code: exitCodeName(error.exitCode), message: error.message, hint: error.hint ?? "" };

  const chain = [...causes(error)];
  const foreign = chain.filter((item) => !StreamError.isInstance(item));
  const foreignText = foreign.map((item) => `${String(field(item, "name") ?? "")} ${messageOf(item)}`).join("\n");
  const allText = chain.map(messageOf).join("\n");

  if (chain.some((item) => UnsafePathError.isInstance(item))) {
    return make(
      ExitCode.UnsafeName,
      "refused a stream whose name is not a safe file name",
      "ask the sender to pass a plain file name with --name (no `..`, absolute path or drive); nothing was written",
    );
  }
  if (chain.some((item) => IntegrityError.isInstance(item))) {
    return make(
      ExitCode.IntegrityMismatch,
      "integrity check failed",
      "what arrived differs from what was sent, so it was not kept; send the file again (if it repeats, check the broker's size limits and the network)",
    );
  }
  if (foreign.some((item) => AUTH_NAMES.has(String(field(item, "name")))) || AUTH_TEXT.test(foreignText)) {
    return make(
      ExitCode.AuthenticationFailed,
      `the broker${at} refused the credentials or the user's permissions`,
      "check the user and password (in the URL, or STREAM_BROKER_USER / STREAM_BROKER_PASSWORD) and that the user may use this vhost / destination",
    );
  }
  const code404 = foreign.some((item) => field(item, "code") === 404);
  if (code404 || MISSING_TEXT.test(foreignText)) {
    return make(
      ExitCode.DestinationMissing,
      `the destination${dest} does not exist on the broker${at}`,
      "check the --dest name, or create the queue / topic (or let the broker auto-create it)",
    );
  }
  const networkCode = chain.some((item) => NETWORK_CODES.has(String(field(item, "code"))) || NETWORK_NAMES.has(String(field(item, "name"))));
  if (networkCode || NETWORK_TEXT.test(allText)) {
    return make(
      ExitCode.BrokerUnreachable,
      `cannot reach the broker${at}`,
      "check that the broker is running and that the host and port in --broker are right, then retry",
    );
  }
  if (chain.some((item) => StreamTimeoutError.isInstance(item)) && context.heardFromReceiver === false) {
    return make(
      ExitCode.DestinationMissing,
      `no receiver took the stream on${dest || " the destination"}`,
      `start \`stream receive --dest ${context.destination ?? "<name>"}\` against the same broker (or check the --dest name), then send again`,
    );
  }
  if (chain.some((item) => StreamTimeoutError.isInstance(item) || StreamAbortedError.isInstance(item))) {
    return make(ExitCode.StreamAborted, "the stream did not complete", "the other side stopped or went silent part-way; send the file again");
  }
  const transportError = chain.find((item) => TransportError.isInstance(item));
  if (transportError) {
    return transportError.retryable
      ? make(ExitCode.BrokerUnreachable, `lost the connection to the broker${at}`, "check that the broker is up and reachable, then retry")
      : make(ExitCode.Failure, "the broker refused the request", "see the message above; retrying as is will not help");
  }
  if (error instanceof RangeError && detail.startsWith("[stream]")) {
    return make(ExitCode.Usage, "", "run `stream send --help` for the options");
  }
  return make(ExitCode.Failure, "unexpected error", "if this looks like a bug, report it with the command you ran (credentials are never printed)");
}
