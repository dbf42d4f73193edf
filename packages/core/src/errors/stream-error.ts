const marker = "stream.error";
const symbol = Symbol.for(marker);

/** Options every {@link StreamError} takes. */
export interface StreamErrorOptions {
  /** What went wrong and what to do about it; prefixed with `[stream]` and the source. */
  readonly message: string;
  /** The error this one wraps (a broker client's error, a decoding failure). */
  readonly cause?: unknown;
  /** Whether trying the same thing again (after a reconnect, a resume) may succeed. */
  readonly retryable?: boolean;
}

/**
 * The base of every error `@stream/*` throws. Check with {@link StreamError.isInstance} rather than
 * `instanceof`: the brand survives two copies of core in one process (a dual ESM/CJS install).
 */
export class StreamError extends Error {
  private readonly [symbol] = true;
  /** Whether trying again (after a reconnect, a resume) may succeed. */
  readonly retryable: boolean;
  /** A stable machine-readable name, e.g. `"STREAM_INTEGRITY"`. */
  readonly code: string;

  constructor(code: string, { message, cause, retryable = false }: StreamErrorOptions) {
    super(message, cause === undefined ? undefined : { cause });
    this.name = "StreamError";
    this.code = code;
    this.retryable = retryable;
  }

  /** Whether `error` is a {@link StreamError} from any copy of `@stream/core`. */
  static isInstance(error: unknown): error is StreamError {
    return StreamError.hasMarker(error, marker);
  }

  protected static hasMarker(error: unknown, name: string): boolean {
    return (
      typeof error === "object" &&
      error !== null &&
      Symbol.for(name) in error &&
      (error as Record<symbol, unknown>)[Symbol.for(name)] === true
    );
  }
}
