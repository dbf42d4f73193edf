import { StreamError, type StreamErrorOptions } from "./stream-error";

const marker = "stream.error.stream-aborted-error";
const symbol = Symbol.for(marker);

/** The other side, or an `AbortSignal`, ended the stream before it was complete. `retryable` when the reason was transient. */
export class StreamAbortedError extends StreamError {
  private readonly [symbol] = true;

  /** @param code for subclasses only (`StreamRefusedError`). @default "STREAM_ABORTED" */
  constructor(options: StreamErrorOptions, code = "STREAM_ABORTED") {
    super(code, { retryable: false, ...options });
    this.name = "StreamAbortedError";
  }

  /** Whether `error` is a {@link StreamAbortedError} from any copy of `@stream/core`. */
  static override isInstance(error: unknown): error is StreamAbortedError {
    return StreamError.hasMarker(error, marker);
  }
}
