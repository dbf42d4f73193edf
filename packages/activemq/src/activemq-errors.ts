import { TransportError } from "@stream/core";
import { transportErrors } from "@stream/core/adapter-kit";

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

/**
 * ActiveMQ's refusal of a CONNECT's login and passcode. stompit re-flags the ERROR frame's error
 * as a transport error when the connection closes after it, so this is read whatever the flags say.
 */
const CREDENTIALS_REFUSED = /password is invalid|not authori[sz]ed|authentication failed/i;

/** Whether a STOMP client error is one a reconnect may fix. */
export function isRetryableStompError(error: unknown): boolean {
  if (TransportError.isInstance(error)) return error.retryable;
  const stompError = error as StompitError | undefined;
  const text = `${stompError?.message ?? ""} ${stompError?.longMessage ?? ""}`;
  if (stompError?.isApplicationError?.() === true) return !PERMANENT_BROKER_ERROR.test(text);
  return !CREDENTIALS_REFUSED.test(text);
}

/**
 * This adapter's `TransportError`s (core's `transportErrors`): `wrap` turns a STOMP client error
 * into `[stream] [activemq] <what happened>: <cause>; <what to do>`.
 */
export const activemqErrors = transportErrors({
  name: "activemq",
  isRetryable: isRetryableStompError,
  advice: (_, retryable) =>
    retryable ? "the adapter reconnects by itself; retry the operation" : "check the broker's settings and credentials; retrying will not help",
});
export const { wrap: toTransportError } = activemqErrors;
