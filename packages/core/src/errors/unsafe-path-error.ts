import { StreamError, type StreamErrorOptions } from "./stream-error";

const marker = "stream.error.unsafe-path-error";
const symbol = Symbol.for(marker);

/** A stream's name would write outside the target folder (`../`, an absolute path, a NUL). Nothing is written. */
export class UnsafePathError extends StreamError {
  private readonly [symbol] = true;

  constructor(options: StreamErrorOptions) {
    super("STREAM_UNSAFE_PATH", { retryable: false, ...options });
    this.name = "UnsafePathError";
  }

  /** Whether `error` is a {@link UnsafePathError} from any copy of `@stream/core`. */
  static override isInstance(error: unknown): error is UnsafePathError {
    return StreamError.hasMarker(error, marker);
  }
}
