import { StreamError, type StreamErrorOptions } from "./stream-error";

const marker = "stream.error.transport-error";
const symbol = Symbol.for(marker);

/** The broker could not be reached, refused us, or dropped the connection. Retryable unless the broker said no for good (authentication, a frame too large). */
export class TransportError extends StreamError {
  private readonly [symbol] = true;

  /** @param code for subclasses only (`BrokerUnreachableError`). @default "STREAM_TRANSPORT" */
  constructor(options: StreamErrorOptions, code = "STREAM_TRANSPORT") {
    super(code, { retryable: true, ...options });
    this.name = "TransportError";
  }

  /** Whether `error` is a {@link TransportError} from any copy of `@stream/core`. */
  static override isInstance(error: unknown): error is TransportError {
    return StreamError.hasMarker(error, marker);
  }
}
