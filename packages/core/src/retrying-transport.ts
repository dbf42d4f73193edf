import { retryPolicy, withRetries } from "./backoff";
import { BrokerUnreachableError } from "./errors/broker-unreachable-error";
import { StreamError } from "./errors/stream-error";
import type { Transport } from "./transport";

/** Options of {@link createRetryingTransport}. */
export interface RetryOptions {
  /**
   * Attempts after the first, a cap on top of `deadlineMs`.
   * @default no cap for publishes (the deadline decides); 2 for a receiver (`ReceiveOptions.retry`)
   */
  readonly retries?: number;
  /** Delay before the first retry, in ms; doubles each time (publishes add jitter). @default 100 for publishes; 1000 for a receiver */
  readonly initialDelayMs?: number;
  /** Largest delay between attempts, in ms. @default 5000 for publishes; 8000 for a receiver */
  readonly maxDelayMs?: number;
  /**
   * Publishes only: how long, in ms, publishes keep being retried from the first failure of an
   * outage (publishes failing one after another with retryable errors; a publish that succeeds
   * ends the outage). Past it a publish fails with `BrokerUnreachableError`.
   *
   * Minutes rather than seconds, because what it waits out is a broker restarting, a failover,
   * a load balancer or VPN re-routing, a laptop changing networks: tens of seconds to a few
   * minutes, and giving up sooner throws away a transfer that was fine. The CPU idles meanwhile
   * (backoff up to `maxDelayMs`), and an `AbortSignal` on the send stops the wait at once.
   * End to end, the receiver's `producerTimeoutMs` (60 s) and the sender's `idleTimeoutMs`
   * (120 s) still bound how long a stream may go silent: raise them too for longer outages.
   * @default 300000 (5 minutes) for publishes; unused by a receiver
   */
  readonly deadlineMs?: number;
}

/** Whether publishes go through, or are being retried while the adapter reconnects. */
export type ConnectionState = "connected" | "reconnecting";

/** What a retrying transport says of its connection; the client passes it to each send (`SendProgress.connection`). */
export interface ConnectionWatch {
  readonly state: ConnectionState;
  /** Calls `listener` on each change of `state` until the returned function is called. */
  watch(listener: (state: ConnectionState) => void): () => void;
}

/** Publish defaults: 100 ms doubling to 5 s, for 5 minutes from the first failure; see {@link RetryOptions.deadlineMs}. */
const PUBLISH_RETRY = { retries: Number.POSITIVE_INFINITY, initialDelayMs: 100, maxDelayMs: 5000, deadlineMs: 300_000 } as const;

/**
 * Wraps a transport so a publish that fails with a retryable error (a dropped connection the
 * adapter is re-establishing) is tried again with exponential backoff and jitter, until the
 * outage has lasted `deadlineMs` (or `retries` attempts, when given). Retry lives here once, not
 * in every adapter; the receiver drops the duplicates a retry may create.
 *
 * The returned transport is also a {@link ConnectionWatch}: `"reconnecting"` from the first
 * retryable failure until a publish goes through again.
 */
export function createRetryingTransport(transport: Transport, options: RetryOptions = {}): Transport & ConnectionWatch {
  const policy = retryPolicy(options, PUBLISH_RETRY);
  /** When the current outage began (its first retryable failure), or undefined while publishes go through. */
  let outageSince: number | undefined;
  const listeners = new Set<(state: ConnectionState) => void>();
  /** Aborted by close(): no retry waits on a closed transport. */
  const closing = new AbortController();
  const setOutage = (since: number | undefined): void => {
    const changed = (since === undefined) !== (outageSince === undefined);
    outageSince = since;
    if (changed) for (const listener of [...listeners]) listener(since === undefined ? "connected" : "reconnecting");
  };
  const giveUp = (error: StreamError, retry: number): BrokerUnreachableError => {
    const unreachableMs = Date.now() - (outageSince ?? Date.now());
    const why =
      retry >= policy.retries
        ? `gave up after ${retry + 1} attempts (retry.retries ${policy.retries}); raise or drop retry.retries to retry until retry.deadlineMs instead`
        : `gave up at retry.deadlineMs ${policy.deadlineMs} ms; pass createStreamClient({ retry: { deadlineMs } }) to wait longer`;
    return new BrokerUnreachableError({
      message: `[stream] [${transport.name}] the broker has been unreachable for ${(unreachableMs / 1000).toFixed(1)} s (every publish failed), so core ${why}. Last error: ${error.message}`,
      cause: error,
      unreachableMs,
    });
  };
  return {
    specificationVersion: transport.specificationVersion,
    name: transport.name,
    capabilities: transport.capabilities,
    publish: (channel, frame, publishOptions) =>
      withRetries(
        async () => {
          await transport.publish(channel, frame, publishOptions);
          setOutage(undefined);
        },
        policy,
        {
          shouldRetry: (error) => {
            const retryable = StreamError.isInstance(error) && error.retryable;
            if (retryable) setOutage(outageSince ?? Date.now());
            return retryable;
          },
          jitter: true,
          since: () => outageSince,
          giveUp: (error, retry) => giveUp(error as StreamError, retry),
          signal: publishOptions.signal ? AbortSignal.any([publishOptions.signal, closing.signal]) : closing.signal,
        },
      ),
    subscribe: (channel, handler, subscribeOptions) => transport.subscribe(channel, handler, subscribeOptions),
    close: () => {
      closing.abort();
      return transport.close();
    },
    get state(): ConnectionState {
      return outageSince === undefined ? "connected" : "reconnecting";
    },
    watch(listener) {
      listeners.add(listener);
      return () => void listeners.delete(listener);
    },
  };
}
