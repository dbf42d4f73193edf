import { retryPolicy, withRetries } from "./backoff";
import { StreamError } from "./errors/stream-error";
import type { Transport } from "./transport";

/** Options of {@link createRetryingTransport}. */
export interface RetryOptions {
  /** Attempts after the first. @default 5 for publishes; 2 for a receiver (`ReceiveOptions.retry`) */
  readonly retries?: number;
  /** Delay before the first retry, in ms; doubles each time (publishes add jitter). @default 100 for publishes; 1000 for a receiver */
  readonly initialDelayMs?: number;
  /** Largest delay between attempts, in ms. @default 5000 for publishes; 8000 for a receiver */
  readonly maxDelayMs?: number;
}

/**
 * Wraps a transport so a publish that fails with a retryable error (a dropped connection the
 * adapter is re-establishing) is tried again with exponential backoff. Retry lives here once,
 * not in every adapter; the receiver drops the duplicates a retry may create.
 */
export function createRetryingTransport(transport: Transport, options: RetryOptions = {}): Transport {
  const policy = retryPolicy(options, { retries: 5, initialDelayMs: 100, maxDelayMs: 5000 });
  return {
    specificationVersion: transport.specificationVersion,
    name: transport.name,
    capabilities: transport.capabilities,
    publish: (channel, frame, publishOptions) =>
      withRetries(() => transport.publish(channel, frame, publishOptions), policy, {
        shouldRetry: (error) => StreamError.isInstance(error) && error.retryable,
        jitter: true,
        ...(publishOptions.signal ? { signal: publishOptions.signal } : {}),
      }),
    subscribe: (channel, handler, subscribeOptions) => transport.subscribe(channel, handler, subscribeOptions),
    close: () => transport.close(),
  };
}
