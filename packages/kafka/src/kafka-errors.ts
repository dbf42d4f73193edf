import { TransportError } from "@stream/core";

/** Error names of kafkajs that a reconnect or a retry cannot fix. */
const PERMANENT_ERROR_NAMES = new Set([
  "KafkaJSSASLAuthenticationError",
  "KafkaJSServerDoesNotSupportApiKey",
  "KafkaJSNotImplemented",
  "KafkaJSUnsupportedMagicByteInMessageSet",
  "KafkaJSInvariantViolation",
  "KafkaJSPartialMessageError",
]);

interface KafkaJsLikeError {
  readonly name?: unknown;
  readonly type?: unknown;
  readonly retriable?: unknown;
  readonly cause?: unknown;
  readonly originalError?: unknown;
}

/** The innermost error kafkajs wrapped (retries exceeded wraps the last attempt's error). */
function rootCause(error: unknown): unknown {
  let current = error;
  for (let depth = 0; depth < 10; depth++) {
    const next = (current as KafkaJsLikeError | null)?.cause ?? (current as KafkaJsLikeError | null)?.originalError;
    if (next === undefined || next === null || next === current) break;
    current = next;
  }
  return current;
}

/** The broker's error code name (`"UNKNOWN_TOPIC_OR_PARTITION"`, ...) under any kafkajs wrapping, or `""`. */
export function kafkaErrorType(error: unknown): string {
  const root = rootCause(error) as KafkaJsLikeError | null;
  return typeof root?.type === "string" ? root.type : "";
}

/**
 * Whether trying again after a reconnect may succeed: false when the broker said no for good
 * (authentication, authorization, a record too large, an invalid topic), true for connection
 * losses, timeouts, leader changes and rebalances.
 */
export function isRetryableKafkaError(error: unknown): boolean {
  const root = rootCause(error) as KafkaJsLikeError | null;
  if (root === null || typeof root !== "object") return true;
  if (typeof root.name === "string" && PERMANENT_ERROR_NAMES.has(root.name)) return false;
  // kafkajs marks each broker error code retriable or not (MESSAGE_TOO_LARGE, *_AUTHORIZATION_FAILED: not).
  if (root.name === "KafkaJSProtocolError" || root.name === "KafkaJSCreateTopicError") return root.retriable !== false;
  return true;
}

/** Advice for the end of an error message, by what went wrong. */
function advice(error: unknown, retryable: boolean): string {
  const root = rootCause(error) as KafkaJsLikeError | null;
  const type = kafkaErrorType(error);
  if (type === "MESSAGE_TOO_LARGE" || type === "RECORD_LIST_TOO_LARGE") {
    return "lower maxFrameBytes/maxBatchBytes or raise the broker's message.max.bytes (topic max.message.bytes)";
  }
  if (type.endsWith("AUTHORIZATION_FAILED") || root?.name === "KafkaJSSASLAuthenticationError") {
    return "check the client's credentials and the broker's ACLs";
  }
  return retryable ? "check that Kafka is reachable; core retries after a reconnect" : "fix the request or the broker settings";
}

/**
 * Wraps a kafkajs error (or anything thrown while talking to Kafka) in core's `TransportError`,
 * with `[stream] [kafka] <what happened>; <what to do>` as message and the original as `cause`.
 */
export function toTransportError(what: string, error: unknown, retryable = isRetryableKafkaError(error)): TransportError {
  if (TransportError.isInstance(error)) return error;
  const detail = error instanceof Error ? error.message : String(error);
  return new TransportError({
    message: `[stream] [kafka] ${what}: ${detail}; ${advice(error, retryable)}`,
    cause: error,
    retryable,
  });
}
