import { transportErrors } from "@stream/core/adapter-kit";

/** Error names of kafkajs, and codes of `@platformatic/kafka`, that a reconnect or a retry cannot fix. */
const PERMANENT_ERROR_NAMES = new Set([
  "KafkaJSSASLAuthenticationError",
  "KafkaJSServerDoesNotSupportApiKey",
  "KafkaJSNotImplemented",
  "KafkaJSUnsupportedMagicByteInMessageSet",
  "KafkaJSInvariantViolation",
  "KafkaJSPartialMessageError",
  "PLT_KFK_AUTHENTICATION",
  "PLT_KFK_UNSUPPORTED_API",
  "PLT_KFK_UNSUPPORTED_COMPRESSION",
  "PLT_KFK_UNSUPPORTED_FORMAT",
  "PLT_KFK_UNSUPPORTED",
  "PLT_KFK_USER",
]);

/** The fields of a kafkajs or `@platformatic/kafka` error that the mapping reads. */
interface KafkaLikeError {
  readonly name?: unknown;
  /** kafkajs: the broker's error code name. */
  readonly type?: unknown;
  /** @platformatic/kafka: the broker's error code name. */
  readonly apiId?: unknown;
  /** @platformatic/kafka: `PLT_KFK_...`. */
  readonly code?: unknown;
  readonly retriable?: unknown;
  readonly canRetry?: unknown;
  readonly cause?: unknown;
  readonly originalError?: unknown;
  /** @platformatic/kafka's `MultipleErrors` (an `AggregateError`): one per failed attempt or partition. */
  readonly errors?: unknown;
}

/**
 * The innermost error a client wrapped: kafkajs wraps the last attempt's error when retries are
 * exceeded; `@platformatic/kafka` nests `MultipleErrors` (the last of them is the latest attempt).
 */
function rootCause(error: unknown): KafkaLikeError | null {
  let current = error as KafkaLikeError | null;
  for (let depth = 0; depth < 10; depth++) {
    if (current === null || typeof current !== "object") return null;
    const errors = Array.isArray(current.errors) ? (current.errors as unknown[]) : [];
    const next = (current.cause ?? current.originalError ?? errors.at(-1)) as KafkaLikeError | null | undefined;
    if (next === undefined || next === null || next === current) break;
    current = next;
  }
  return current;
}

/** The first of `error` and the errors it wraps (`cause`, `originalError`, `errors`) that matches `test`. */
function findInChain(error: unknown, test: (item: KafkaLikeError) => boolean, depth = 0): KafkaLikeError | undefined {
  if (error === null || typeof error !== "object" || depth > 10) return undefined;
  const item = error as KafkaLikeError;
  if (test(item)) return item;
  const inner = [item.cause, item.originalError, ...(Array.isArray(item.errors) ? (item.errors as unknown[]) : [])];
  for (const next of inner) {
    const found = next === error ? undefined : findInChain(next, test, depth + 1);
    if (found) return found;
  }
  return undefined;
}

/** A SASL refusal (a wrong user or password) in `error`: `@platformatic/kafka` keeps it above the root ("Connection closed"). */
const authenticationError = (error: unknown): KafkaLikeError | undefined =>
  findInChain(error, (item) => item.name === "KafkaJSSASLAuthenticationError" || item.code === "PLT_KFK_AUTHENTICATION");
const isAuthenticationError = (error: unknown): boolean => authenticationError(error) !== undefined;

/** The message, and a SASL refusal's own words where a wrapper's message hides them ("Listing topics failed."). */
function detail(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  const refusal = authenticationError(error);
  const said = refusal instanceof Error ? refusal.message : "";
  return refusal === undefined || refusal === error || message.includes(said) ? message : `${message} (${said || "authentication failed"})`;
}

/** The broker's error code name (`"UNKNOWN_TOPIC_OR_PARTITION"`, ...) under any client's wrapping, or `""`. */
export function kafkaErrorType(error: unknown): string {
  const root = rootCause(error);
  if (typeof root?.type === "string") return root.type;
  return typeof root?.apiId === "string" ? root.apiId : "";
}

/**
 * Whether trying again after a reconnect may succeed: false when the broker said no for good
 * (authentication, authorization, a record too large, an invalid topic), true for connection
 * losses, timeouts, leader changes and rebalances.
 */
export function isRetryableKafkaError(error: unknown): boolean {
  if (isAuthenticationError(error)) return false;
  const root = rootCause(error);
  if (root === null) return true;
  if (typeof root.name === "string" && PERMANENT_ERROR_NAMES.has(root.name)) return false;
  if (typeof root.code === "string" && PERMANENT_ERROR_NAMES.has(root.code)) return false;
  // Both clients mark each broker error code retriable or not (MESSAGE_TOO_LARGE, *_AUTHORIZATION_FAILED: not).
  if (root.name === "KafkaJSProtocolError" || root.name === "KafkaJSCreateTopicError") return root.retriable !== false;
  if (root.code === "PLT_KFK_PROTOCOL") return root.canRetry !== false;
  return true;
}

/** Advice for the end of an error message, by what went wrong. */
function advice(error: unknown, retryable: boolean): string {
  const type = kafkaErrorType(error);
  if (type === "MESSAGE_TOO_LARGE" || type === "RECORD_LIST_TOO_LARGE") {
    return "lower maxFrameBytes/maxBatchBytes or raise the broker's message.max.bytes (topic max.message.bytes)";
  }
  if (type.endsWith("AUTHORIZATION_FAILED") || isAuthenticationError(error)) {
    return "check the client's credentials and the broker's ACLs";
  }
  return retryable ? "check that Kafka is reachable; core retries after a reconnect" : "fix the request or the broker settings";
}

/**
 * This adapter's `TransportError`s (core's `transportErrors`): `wrap` turns a kafkajs or
 * `@platformatic/kafka` error into `[stream] [kafka] <what happened>: <cause>; <what to do>`.
 */
export const kafkaErrors = transportErrors({ name: "kafka", isRetryable: isRetryableKafkaError, advice, detail });
export const { wrap: toTransportError } = kafkaErrors;
