import { StreamError, type StreamErrorOptions } from "./stream-error";

const marker = "stream.error.stream-timeout-error";
const symbol = Symbol.for(marker);

/** The other side went quiet: no frame from the sender (a dead producer) or no acknowledgement from the receiver within the configured time. */
export class StreamTimeoutError extends StreamError {
  private readonly [symbol] = true;

  constructor(options: StreamErrorOptions) {
    super("STREAM_TIMEOUT", { retryable: true, ...options });
    this.name = "StreamTimeoutError";
  }

  /** Whether `error` is a {@link StreamTimeoutError} from any copy of `@stream/core`. */
  static override isInstance(error: unknown): error is StreamTimeoutError {
    return StreamError.hasMarker(error, marker);
  }
}
