import { StreamError, type StreamErrorOptions } from "./stream-error";

const marker = "stream.error.integrity-error";
const symbol = Symbol.for(marker);

/** What arrived is not what was sent: a chunk whose CRC-32 does not match, a stream whose SHA-256, byte count or chunk count differs from its end frame, or a manifest whose declared size is a lie. The stream ends with this error, never with `end`. */
export class IntegrityError extends StreamError {
  private readonly [symbol] = true;

  constructor(options: StreamErrorOptions) {
    super("STREAM_INTEGRITY", { retryable: false, ...options });
    this.name = "IntegrityError";
  }

  /** Whether `error` is a {@link IntegrityError} from any copy of `@stream/core`. */
  static override isInstance(error: unknown): error is IntegrityError {
    return StreamError.hasMarker(error, marker);
  }
}
