import { StreamError, type StreamErrorOptions } from "./stream-error";

const marker = "stream.error.partial-file-mismatch-error";
const symbol = Symbol.for(marker);

/**
 * A partial file that `saveTo` was about to continue does not match what the journal recorded of
 * it (the SHA-256 of its verified prefix at a checkpoint): it was changed after its receiver wrote
 * it. It is not continued past the last checkpoint that still matches (from byte 0 when none
 * does); the stream goes on from there and the saved file is still verified whole. Reported to
 * `ReceiveOptions.onFrameError`, never thrown: nothing is lost but the bytes asked for again.
 */
export class PartialFileMismatchError extends StreamError {
  private readonly [symbol] = true;
  /** The partial file. */
  readonly path: string;
  /** Bytes of it that matched the journal and were kept: where the stream continues. */
  readonly keptBytes: number;
  /** Bytes it held (cut to whole chunks) before the check. */
  readonly claimedBytes: number;

  constructor(options: StreamErrorOptions & { readonly path: string; readonly keptBytes: number; readonly claimedBytes: number }) {
    super("STREAM_PARTIAL_FILE_MISMATCH", { retryable: false, ...options });
    this.name = "PartialFileMismatchError";
    this.path = options.path;
    this.keptBytes = options.keptBytes;
    this.claimedBytes = options.claimedBytes;
  }

  /** Whether `error` is a {@link PartialFileMismatchError} from any copy of `@stream/core`. */
  static override isInstance(error: unknown): error is PartialFileMismatchError {
    return StreamError.hasMarker(error, marker);
  }
}
