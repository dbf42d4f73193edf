import { TransportError } from "../errors/transport-error";
import { isTlsCertificateError, tlsCertificateError } from "./tls";

/** How an adapter reads its broker client's errors, for {@link transportErrors}. */
export interface TransportErrorsOptions {
  /** The adapter's name (the transport's `name`), for the `[stream] [<name>]` prefix. */
  readonly name: string;
  /**
   * Whether trying again after a reconnect may help with `cause`: false when the broker said no
   * for good (credentials, permissions, a frame too large). A broker certificate that did not
   * verify is never retryable, whatever this says.
   * @default every error is retryable
   */
  readonly isRetryable?: (cause: unknown) => boolean;
  /**
   * What to do, for the end of the message. Undefined falls back to the default: "retry; the
   * transport reconnects by itself" or "fix the cause; retrying will not help".
   */
  readonly advice?: (cause: unknown, retryable: boolean) => string | undefined;
  /** The cause as it reads in the message. @default its `message`, or `String(cause)` */
  readonly detail?: (cause: unknown) => string;
}

/** An adapter's `TransportError`s, all worded `[stream] [<name>] ...`. Made by {@link transportErrors}. */
export interface TransportErrors {
  /** Whether trying again after a reconnect may help with `cause` (the adapter's rule). */
  isRetryable(cause: unknown): boolean;
  /**
   * Wraps a broker or client error as `[stream] [<name>] <what>: <detail>; <advice>`, with the
   * original as `cause`. A `TransportError` passes through unchanged (it was wrapped already).
   *
   * @param retryable overrides the adapter's rule (a drop the adapter knows is transient); a
   *   certificate that did not verify stays not retryable.
   * @param advice overrides the adapter's advice.
   */
  wrap(what: string, cause: unknown, retryable?: boolean, advice?: string): TransportError;
  /** A `TransportError` of the adapter's own making: `[stream] [<name>] <message>`. */
  error(message: string, retryable: boolean, cause?: unknown): TransportError;
  /** Not retryable: the transport was closed, so a call on it fails the same way every time. */
  closed(): TransportError;
  /**
   * Throws a non-retryable error when `frame` is larger than `maxFrameBytes`: the same frame
   * fails the same way every time, so core must not retry it.
   *
   * @param advice what to raise or lower, for the end of the message.
   */
  assertFrameSize(frame: Uint8Array, maxFrameBytes: number, advice: string): void;
}

const TLS_ADVICE =
  "check the TLS settings: the CA that signed the broker's certificate (tls.ca), a host name that certificate carries, and a client certificate (tls.cert, tls.key) where the broker wants one";

function defaultDetail(cause: unknown): string {
  return cause instanceof Error ? cause.message : String(cause);
}

/**
 * The error mapping every adapter needs, written once: `retryable` from the adapter's rule, the
 * `[stream] [<name>] <what happened>: <cause>; <what to do>` message shape, the original kept as
 * `cause`, and the errors every adapter raises alike (closed, frame too large).
 *
 * @example
 * const errors = transportErrors({ name: "mqtt", isRetryable: (cause) => !PERMANENT.has(codeOf(cause)) });
 * throw errors.wrap(`publishing to ${topic} failed`, cause);
 */
export function transportErrors(options: TransportErrorsOptions): TransportErrors {
  const { name, advice = () => undefined, detail = defaultDetail } = options;
  const adapterRule = options.isRetryable ?? (() => true);
  const isRetryable = (cause: unknown): boolean => !isTlsCertificateError(cause) && adapterRule(cause);
  const error = (message: string, retryable: boolean, cause?: unknown): TransportError =>
    new TransportError({ message: `[stream] [${name}] ${message}`, cause, retryable });
  return {
    isRetryable: (cause) => (TransportError.isInstance(cause) ? cause.retryable : isRetryable(cause)),
    wrap(what, cause, adapterRetryable = isRetryable(cause), whatToDo) {
      if (TransportError.isInstance(cause)) return cause;
      // A certificate that did not verify fails the same way every time, and what to do about it
      // is more to the point than any general advice of the caller's.
      const untrusted = tlsCertificateError(cause);
      const retryable = adapterRetryable && untrusted === undefined;
      const todo =
        (untrusted ? TLS_ADVICE : undefined) ??
        whatToDo ??
        advice(cause, retryable) ??
        (retryable ? "retry; the transport reconnects by itself" : "fix the cause; retrying will not help");
      // A client that wraps the TLS error in its own words ("Listing topics failed.") hides it.
      const said = detail(cause);
      const tlsSaid = untrusted === undefined || said.includes(untrusted.message) ? "" : ` (${untrusted.message})`;
      return error(`${what}: ${said}${tlsSaid}; ${todo}`, retryable, cause);
    },
    error,
    closed: () => error("the transport is closed; create a new one", false),
    assertFrameSize(frame, maxFrameBytes, whatToDo) {
      if (frame.byteLength <= maxFrameBytes) return;
      throw error(`a frame of ${frame.byteLength} bytes is larger than maxFrameBytes (${maxFrameBytes}); ${whatToDo}`, false);
    },
  };
}
