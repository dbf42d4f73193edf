import { StreamError, type StreamErrorOptions } from "./stream-error";
import { TransportError } from "./transport-error";

const marker = "stream.error.broker-unreachable-error";
const symbol = Symbol.for(marker);

/**
 * Core gave up retrying a publish: the broker stayed unreachable (every attempt failed with a
 * retryable error) past `retry.deadlineMs`, or past `retry.retries` attempts when a cap was given.
 * A {@link TransportError} too, and `retryable`: the broker may be back later. The last adapter
 * error is the `cause`.
 */
export class BrokerUnreachableError extends TransportError {
  private readonly [symbol] = true;
  /** How long publishes had been failing when core gave up, in ms (since the outage's first failure). */
  readonly unreachableMs: number;

  constructor(options: StreamErrorOptions & { readonly unreachableMs: number }) {
    super(options, "STREAM_BROKER_UNREACHABLE");
    this.name = "BrokerUnreachableError";
    this.unreachableMs = options.unreachableMs;
  }

  /** Whether `error` is a {@link BrokerUnreachableError} from any copy of `@stream/core`. */
  static override isInstance(error: unknown): error is BrokerUnreachableError {
    return StreamError.hasMarker(error, marker);
  }
}
