import { StreamError, type StreamErrorOptions } from "./stream-error";

const marker = "stream.error.protocol-error";
const symbol = Symbol.for(marker);

/** A frame that does not decode: wrong magic or version, a bad length, an unknown type, a malformed manifest. The frame is dropped; nothing written from it. */
export class ProtocolError extends StreamError {
  private readonly [symbol] = true;

  constructor(options: StreamErrorOptions) {
    super("STREAM_PROTOCOL", { retryable: false, ...options });
    this.name = "ProtocolError";
  }

  /** Whether `error` is a {@link ProtocolError} from any copy of `@stream/core`. */
  static override isInstance(error: unknown): error is ProtocolError {
    return StreamError.hasMarker(error, marker);
  }
}
