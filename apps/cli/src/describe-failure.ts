import {
  isTlsCertificateError,
  IntegrityError,
  SourceChangedError,
  StreamAbortedError,
  StreamError,
  StreamExpiredError,
  StreamTimeoutError,
  TargetFolderError,
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
  [ExitCode.SourceChanged]: "SOURCE_CHANGED",
  [ExitCode.TlsFailed]: "TLS_FAILED",
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
 * Library option names in core's and the adapters' messages, as a CLI user knows them: the
 * `send` option that sets each, or plain words for those the CLI does not expose.
 */
const CLI_WORDS: ReadonlyArray<readonly [RegExp, string]> = [
  [/\bidleTimeoutMs\b/g, "--timeout"],
  [/\bexpireAfterMs\b/g, "--expire"],
  [/\bchunkBytes\b/g, "--chunk-bytes"],
  [/\bwindowChunks\b/g, "--window"],
  [/\bmaxFrameBytes\b/g, "the largest message the adapter sends"],
  [/\bmaxBatchBytes\b/g, "the adapter's batch size"],
  [/\bmaxWindowBytes\b/g, "largest window"],
  [/\bwindowBytes\b/g, "window"],
  [/\b(?:ack|connect|producer|flush|idle)?[Tt]imeoutMs\b/g, "timeout"],
];

/** `text` with library option names replaced by {@link CLI_WORDS}. */
export function cliWords(text: string): string {
  return CLI_WORDS.reduce((out, [name, words]) => out.replace(name, words), text);
}

/**
 * What the adapters and core append to a message for a program that keeps running ("the adapter
 * reconnects by itself; retry", "raise ackTimeoutMs"). A command that exits says what the user
 * should do in its own hint instead.
 */
const LIBRARY_ADVICE =
  /^\s*(?:(?:the )?(?:adapter|transport) reconnects|reconnecting|retry|retrying|try again|it may succeed|core retries|check|fix|lower|raise|send (?:smaller|with|again)|is a receiver running|subscribe again|create a new|the broker refused for good|an injected client|reconnect is off)/i;

/** An error's message as the CLI prints it: the library's advice dropped, option names the CLI's own. */
export function userDetail(error: unknown): string {
  const segments = messageOf(error).split("; ");
  while (segments.length > 1 && LIBRARY_ADVICE.test(segments.at(-1) ?? "")) segments.pop();
  return cliWords(segments.join("; ").replace(/\.$/, ""));
}

/** Core's words for a stream its receiver ended: `[stream] the receiver aborted stream <id>: <reason>`. */
const RECEIVER_ABORT = /^\[stream\] the receiver aborted stream \S+: ([\s\S]*)$/;
/** Core's words for a stream its sender ended, seen by a receiver. */
const SENDER_ENDED = /^\[stream\] (?:the sender (?:aborted|withdrew|cancelled|gave up)|.*\bwithdrawn\b)/;

/**
 * Why the receiver refused or ended a stream, as the receiver said it: a typed refusal from core
 * (any error of the chain with a `reason` string, e.g. a receiver that cannot write to its
 * folder), or the reason its abort frame carried. Read by shape, not by class, so a newer core's
 * refusal error is shown without this CLI importing it.
 */
function receiverReason(chain: readonly unknown[]): { reason: string; refused: boolean } | undefined {
  for (const item of chain) {
    const reason = typeof item === "object" && item !== null ? (item as { reason?: unknown }).reason : undefined;
    if (StreamError.isInstance(item) && typeof reason === "string" && reason !== "") return { reason, refused: true };
  }
  for (const item of chain) {
    const match = StreamAbortedError.isInstance(item) ? RECEIVER_ABORT.exec(item.message) : null;
    if (match?.[1]) return { reason: match[1], refused: false };
  }
  return undefined;
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
  const detail = userDetail(error);
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

  const changed = chain.find((item) => SourceChangedError.isInstance(item));
  if (changed) {
    return make(
      ExitCode.SourceChanged,
      "refused to resume",
      `send ${changed.path} again with \`stream send\` (a new stream); the unfinished entry stays in \`stream ls\` until it expires`,
    );
  }
  if (chain.some((item) => UnsafePathError.isInstance(item))) {
    return make(
      ExitCode.UnsafeName,
      "refused a stream whose name is not a safe file name",
      "ask the sender to pass a plain file name with --name (no `..`, absolute path or drive); nothing was written",
    );
  }
  const folderError = chain.find((item) => TargetFolderError.isInstance(item));
  if (folderError) {
    return {
      exitCode: ExitCode.Usage,
      code: exitCodeName(ExitCode.Usage),
      message: `cannot write to the --out folder ${folderError.folder}: ${folderError.fsCode}; the stream was refused and its sender told why`,
      hint: "make the folder writable (permissions, free space, not a file), or use another --out, then ask the sender to send again",
    };
  }
  if (chain.some((item) => IntegrityError.isInstance(item))) {
    return make(
      ExitCode.IntegrityMismatch,
      "integrity check failed",
      "what arrived differs from what was sent, so it was not kept; send the file again (if it repeats, check the broker's size limits and the network)",
    );
  }
  const fromReceiver = receiverReason(chain);
  if (fromReceiver) {
    // The receiver's own words, verbatim but for library option names: only it knows why (a
    // folder it cannot write to, ...).
    return {
      exitCode: ExitCode.StreamAborted,
      code: exitCodeName(ExitCode.StreamAborted),
      message: `the receiver ${fromReceiver.refused ? "refused" : "ended"} the stream: ${cliWords(fromReceiver.reason)}`,
      hint: "the receiver's reason is above: fix that on the receiving side (e.g. its --out folder), then send the file again",
    };
  }
  if (isTlsCertificateError(error)) {
    return make(
      ExitCode.TlsFailed,
      `the TLS connection to the broker${at} failed over a certificate`,
      "pass the CA that signed the broker's certificate with --ca <file> and use a host name the certificate carries; if the broker wants a client certificate, pass --cert <file> --cert-key <file>",
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
      "check that the broker is running and that the host and port in --broker are right, then run the command again",
    );
  }
  if (chain.some((item) => StreamExpiredError.isInstance(item))) {
    return make(
      ExitCode.StreamAborted,
      "the stream expired (--expire) before a receiver had all of it; the broker drops what is left of it",
      "send it again, with a longer --expire or with the receiver running",
    );
  }
  if (chain.some((item) => StreamTimeoutError.isInstance(item)) && context.heardFromReceiver === false) {
    return make(
      ExitCode.DestinationMissing,
      `no receiver took the stream on${dest || " the destination"}; it was withdrawn, so a receiver started later discards it`,
      `start \`stream receive --dest ${context.destination ?? "<name>"}\` against the same broker (or check the --dest name), then send again: it cannot make two files (--timeout gives a receiver longer to answer)`,
    );
  }
  if (chain.some((item) => StreamError.isInstance(item) && SENDER_ENDED.test(item.message))) {
    return make(
      ExitCode.StreamAborted,
      "the sender ended the stream",
      "nothing of it was kept; ask the sender to send it again (with a longer --timeout if it gave up waiting)",
    );
  }
  if (chain.some((item) => StreamTimeoutError.isInstance(item) || StreamAbortedError.isInstance(item))) {
    return make(ExitCode.StreamAborted, "the stream did not complete", "the other side stopped or went silent part-way; nothing was kept; run the command again");
  }
  const transportError = chain.find((item) => TransportError.isInstance(item));
  if (transportError) {
    return transportError.retryable
      ? make(ExitCode.BrokerUnreachable, `lost the connection to the broker${at}`, "check that the broker is up and reachable, then run the command again")
      : make(ExitCode.Failure, "the broker refused the request", "see the message above; running the command again as is will not help");
  }
  // Options core refuses for this broker or this send (a RangeError, or a TypeError such as
  // --expire on Kafka): the command line is at fault.
  if ((error instanceof RangeError || error instanceof TypeError) && detail.startsWith("[stream]")) {
    return make(ExitCode.Usage, "", "run `stream send --help` for the options");
  }
  return make(ExitCode.Failure, "unexpected error", "if this looks like a bug, report it with the command you ran (credentials are never printed)");
}
