import { retryPolicy, withRetries } from "./backoff";
import { ConnectionStatus } from "./adapter-kit/connection-status";
import { BrokerUnreachableError } from "./errors/broker-unreachable-error";
import { StreamError } from "./errors/stream-error";
import type { ConnectionWatch, Transport } from "./transport";

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

/** Publish defaults: 100 ms doubling to 5 s, for 5 minutes from the first failure; see {@link RetryOptions.deadlineMs}. */
const PUBLISH_RETRY = { retries: Number.POSITIVE_INFINITY, initialDelayMs: 100, maxDelayMs: 5000, deadlineMs: 300_000 } as const;

/**
 * Wraps a transport so a publish that fails with a retryable error (a dropped connection the
 * adapter is re-establishing) is tried again with exponential backoff and jitter, until the
 * outage has lasted `deadlineMs` (or `retries` attempts, when given). Retry lives here once, not
 * in every adapter; the receiver drops the duplicates a retry may create.
 *
 * Its `connection` (the client passes it to each send, `SendProgress.connection`) merges two
 * views: `"reconnecting"` while the adapter says so ({@link Transport.connection}, when it has
 * one) or while publishes fail retryably (from the first such failure until a publish goes
 * through), `"connected"` otherwise. Listeners hear each change of the merged state once. The
 * outage `deadlineMs` counts starts when the merged state turns `"reconnecting"`.
 */
export function createRetryingTransport(transport: Transport, options: RetryOptions = {}): Transport & { readonly connection: ConnectionWatch } {
  const policy = retryPolicy(options, PUBLISH_RETRY);
  const status = new ConnectionStatus();
  /** Whether publishes fail retryably: from the first such failure until a publish goes through. */
  let publishesFailing = false;
  /** When the current outage began (in either view), or undefined while connected. */
  let outageSince: number | undefined;
  const update = (): void => {
    const reconnecting = publishesFailing || transport.connection?.state === "reconnecting";
    outageSince = reconnecting ? (outageSince ?? Date.now()) : undefined;
    status.set(reconnecting ? "reconnecting" : "connected");
  };
  const setPublishesFailing = (failing: boolean): void => {
    publishesFailing = failing;
    update();
  };
  const unwatch = transport.connection?.watch(update);
  update();
  /** Aborted by close(): no retry waits on a closed transport. */
  const closing = new AbortController();
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
          if (publishesFailing) setPublishesFailing(false);
        },
        policy,
        {
          shouldRetry: (error) => {
            const retryable = StreamError.isInstance(error) && error.retryable;
            if (retryable && !publishesFailing) setPublishesFailing(true);
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
      unwatch?.();
      return transport.close();
    },
    connection: status,
  };
}
