import { transportErrors } from "@stream/core/adapter-kit";

/**
 * AMQP reply codes after which trying again cannot help: 403 ACCESS_REFUSED, 404 NOT_FOUND,
 * 406 PRECONDITION_FAILED (inequivalent queue arguments, a message over `max_message_size`),
 * 530 NOT_ALLOWED (no such vhost).
 */
const PERMANENT_REPLY_CODES = new Set([403, 404, 406, 530]);

/** Handshake failures amqplib reports without a reply code. */
const PERMANENT_MESSAGES = [/ACCESS.REFUSED/i, /Expected ConnectionOpenOk/i, /NOT.ALLOWED/i];

/** Whether a broker or socket error may go away on its own (a drop, a restart) or is for good. */
export function isRetryable(cause: unknown): boolean {
  const code = (cause as { code?: unknown } | null)?.code;
  if (typeof code === "number" && PERMANENT_REPLY_CODES.has(code)) return false;
  const message = cause instanceof Error ? cause.message : String(cause);
  return !PERMANENT_MESSAGES.some((pattern) => pattern.test(message));
}

/** A short "what to do" for the errors RabbitMQ users meet most. */
function adviceFor(cause: unknown, retryable: boolean): string {
  const code = (cause as { code?: unknown } | null)?.code;
  const message = cause instanceof Error ? cause.message : String(cause);
  if (/inequivalent arg/i.test(message)) {
    return "the queue exists with other arguments: delete it or make singleActiveConsumer and queueArguments match it";
  }
  if (/max size|message size/i.test(message)) {
    return "lower maxFrameBytes to the broker's max_message_size";
  }
  if (code === 403 || /ACCESS.REFUSED/i.test(message)) return "check the user, password and its permissions on the vhost";
  if (/Expected ConnectionOpenOk/i.test(message) || code === 530) return "check that the vhost exists and the user may use it";
  if (code === "ECONNREFUSED") return "check that RabbitMQ is running and the URL's host and port";
  return retryable ? "it may succeed after a reconnect; try again" : "fix the cause; retrying will not help";
}

/**
 * This adapter's `TransportError`s (core's `transportErrors`): `wrap` turns an amqplib or socket
 * error into `[stream] [rabbitmq] <what happened>: <cause>; <what to do>`.
 */
export const rabbitmqErrors = transportErrors({ name: "rabbitmq", isRetryable, advice: adviceFor });
export const { wrap: toTransportError } = rabbitmqErrors;

/** A `TransportError` of this adapter's own making, with no broker error behind it. */
export const transportError = (message: string, retryable: boolean, cause?: unknown) => rabbitmqErrors.error(message, retryable, cause);
