import { StreamAbortedError } from "./stream-aborted-error";
import { StreamError, type StreamErrorOptions } from "./stream-error";

const marker = "stream.error.stream-withdrawn-error";
const symbol = Symbol.for(marker);

/**
 * Seen by a receiver: the sender withdrew the stream, as no receiver had acknowledged it within
 * the sender's `idleTimeoutMs` (typically a send made while no receiver ran, met by a receiver
 * started later). Nothing of it is kept, and nobody waits for it: its sender has already failed
 * and may send again. A receiver's `maxStreams` does not count it. A {@link StreamAbortedError}
 * too, so checks written before this class existed still hold.
 */
export class StreamWithdrawnError extends StreamAbortedError {
  private readonly [symbol] = true;

  constructor(options: StreamErrorOptions) {
    super(options, "STREAM_WITHDRAWN");
    this.name = "StreamWithdrawnError";
  }

  /** Whether `error` is a {@link StreamWithdrawnError} from any copy of `@stream/core`. */
  static override isInstance(error: unknown): error is StreamWithdrawnError {
    return StreamError.hasMarker(error, marker);
  }
}
