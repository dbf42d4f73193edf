import { StreamAbortedError } from "./stream-aborted-error";
import { StreamError, type StreamErrorOptions } from "./stream-error";

const marker = "stream.error.stream-refused-error";
const symbol = Symbol.for(marker);

/**
 * The receiver refused the stream (Abort Rejected) and said why: it cannot write to its folder or
 * its disk is full, its application failed to take the stream, the window is larger than it
 * allows, or the name is unsafe. Nothing was kept. A {@link StreamAbortedError} too, so checks
 * written before this class existed still hold.
 */
export class StreamRefusedError extends StreamAbortedError {
  private readonly [symbol] = true;
  /**
   * The receiver's reason in its own words, e.g. `the receiver cannot write to its folder ./inbox:
   * EACCES`, for programs that show it to a person (the CLI prints it as is).
   */
  readonly reason: string;

  constructor(options: StreamErrorOptions & { readonly reason: string }) {
    super(options, "STREAM_REFUSED");
    this.name = "StreamRefusedError";
    this.reason = options.reason;
  }

  /** Whether `error` is a {@link StreamRefusedError} from any copy of `@stream/core`. */
  static override isInstance(error: unknown): error is StreamRefusedError {
    return StreamError.hasMarker(error, marker);
  }
}
