import { StreamError, type StreamErrorOptions } from "./stream-error";

const marker = "stream.error.stream-expired-error";
const symbol = Symbol.for(marker);

/**
 * The stream passed its expiry (`SendOptions.expireAfterMs`, `manifest.expiresAt`) before it was
 * delivered whole: the broker may already have dropped some of its frames, so neither side waits
 * for them. The receiver refuses such a stream on sight (and reports this error to
 * `onFrameError`); a send still going at that instant fails with it. Retryable: send it again,
 * with a longer expiry if the receiver needs more time to start.
 */
export class StreamExpiredError extends StreamError {
  private readonly [symbol] = true;
  /** When the stream expired, ISO 8601 (its `manifest.expiresAt`). */
  readonly expiresAt: string;

  constructor(options: StreamErrorOptions & { readonly expiresAt: string }) {
    super("STREAM_EXPIRED", { retryable: true, ...options });
    this.name = "StreamExpiredError";
    this.expiresAt = options.expiresAt;
  }

  /** Whether `error` is a {@link StreamExpiredError} from any copy of `@stream/core`. */
  static override isInstance(error: unknown): error is StreamExpiredError {
    return StreamError.hasMarker(error, marker);
  }
}
