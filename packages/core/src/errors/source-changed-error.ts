import { StreamError, type StreamErrorOptions } from "./stream-error";

const marker = "stream.error.source-changed-error";
const symbol = Symbol.for(marker);

/**
 * A resume was refused: the source file is not the one the interrupted send was reading (its
 * size or modification time differ from what the journal recorded), so continuing would splice
 * two different files. Send it again as a new stream. Not retryable.
 */
export class SourceChangedError extends StreamError {
  private readonly [symbol] = true;
  /** The source file. */
  readonly path: string;

  constructor(options: StreamErrorOptions & { readonly path: string }) {
    super("STREAM_SOURCE_CHANGED", { retryable: false, ...options });
    this.name = "SourceChangedError";
    this.path = options.path;
  }

  /** Whether `error` is a {@link SourceChangedError} from any copy of `@stream/core`. */
  static override isInstance(error: unknown): error is SourceChangedError {
    return StreamError.hasMarker(error, marker);
  }
}
