import { StreamError } from "./errors/stream-error";
import type { Transport } from "./transport";

/** Options of {@link createRetryingTransport}. */
export interface RetryOptions {
  /** Attempts after the first. @default 5 */
  readonly retries?: number;
  /** Delay before the first retry; doubles each time, with jitter. @default 100 */
  readonly initialDelayMs?: number;
  /** Largest delay between attempts. @default 5000 */
  readonly maxDelayMs?: number;
}

/**
 * Wraps a transport so a publish that fails with a retryable error (a dropped connection the
 * adapter is re-establishing) is tried again with exponential backoff. Retry lives here once,
 * not in every adapter; the receiver drops the duplicates a retry may create.
 */
export function createRetryingTransport(transport: Transport, options: RetryOptions = {}): Transport {
  const retries = options.retries ?? 5;
  const initialDelayMs = options.initialDelayMs ?? 100;
  const maxDelayMs = options.maxDelayMs ?? 5000;
  return {
    specificationVersion: transport.specificationVersion,
    name: transport.name,
    capabilities: transport.capabilities,
    async publish(channel, frame, publishOptions) {
      for (let attempt = 0; ; attempt++) {
        try {
          return await transport.publish(channel, frame, publishOptions);
        } catch (error) {
          const retryable = StreamError.isInstance(error) && error.retryable;
          if (!retryable || attempt >= retries || publishOptions.signal?.aborted) throw error;
          const delay = Math.min(maxDelayMs, initialDelayMs * 2 ** attempt) * (0.5 + Math.random() / 2);
          await new Promise((resolve) => setTimeout(resolve, delay));
        }
      }
    },
    subscribe: (channel, handler, subscribeOptions) => transport.subscribe(channel, handler, subscribeOptions),
    close: () => transport.close(),
  };
}
