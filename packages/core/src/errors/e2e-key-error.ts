import { StreamError, type StreamErrorOptions } from "./stream-error";

const marker = "stream.error.e2e-key-error";
const symbol = Symbol.for(marker);

/**
 * A key for end-to-end encryption is missing or unusable: the receiver has no key under the
 * stream's key id (or no keys at all), a receiver that takes only encrypted streams met a plain
 * one, or a key file or variable does not hold a key. The receiver refuses such a stream (Abort
 * Rejected naming only the key id) and writes nothing of it. Not retryable: give the receiver the
 * sender's key (`ReceiveOptions.keys`, `stream receive --e2e-key FILE`).
 */
export class E2eKeyError extends StreamError {
  private readonly [symbol] = true;
  /** The key id the stream names, when it names one. */
  readonly keyId: string | undefined;

  constructor(options: StreamErrorOptions & { readonly keyId?: string | undefined }) {
    super("STREAM_E2E_KEY", { retryable: false, ...options });
    this.name = "E2eKeyError";
    this.keyId = options.keyId;
  }

  /** Whether `error` is an {@link E2eKeyError} from any copy of `@stream/core`. */
  static override isInstance(error: unknown): error is E2eKeyError {
    return StreamError.hasMarker(error, marker);
  }
}
