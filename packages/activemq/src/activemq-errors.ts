import { TransportError } from "@stream/core";

/**
 * ERROR frames ActiveMQ sends for things a retry will not fix: bad credentials, missing
 * permissions, a frame over `maxDataLength`, a malformed frame.
 */
const PERMANENT_BROKER_ERROR =
  /password|not authori[sz]ed|authenticat|security|maximum data length|exceed|invalid (destination|header)/i;

interface StompitError extends Error {
  isApplicationError?: () => boolean;
  longMessage?: string;
}

/** Whether a STOMP client error is one a reconnect may fix. */
export function isRetryableStompError(error: unknown): boolean {
  if (TransportError.isInstance(error)) return error.retryable;
  const stompError = error as StompitError | undefined;
  if (stompError?.isApplicationError?.() === true) {
    return !PERMANENT_BROKER_ERROR.test(`${stompError.message} ${stompError.longMessage ?? ""}`);
  }
  return true;
}

/**
 * Wraps a STOMP client error (or anything thrown) as a core {@link TransportError}, keeping
 * `cause`, and saying where it came from and what to do.
 */
export function toTransportError(
  what: string,
  cause: unknown,
  { retryable = isRetryableStompError(cause), advice }: { retryable?: boolean; advice?: string } = {},
): TransportError {
  if (TransportError.isInstance(cause)) return cause;
  const detail = cause instanceof Error ? cause.message : String(cause);
  advice ??= retryable
    ? "the adapter reconnects by itself; retry the operation"
    : "check the broker's settings and credentials; retrying will not help";
  return new TransportError({
    message: `[stream] [activemq] ${what}: ${detail}; ${advice}.`,
    cause,
    retryable,
  });
}
