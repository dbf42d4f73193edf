import type { RetryOptions } from "./retrying-transport";

/** {@link RetryOptions} with every field given. */
export type RetryPolicy = Required<RetryOptions>;

/**
 * What a receiver does when it cannot take a stream (its `saveTo` folder, its disk, a `'stream'`
 * listener that throws): 3 attempts in all, 1 s then 2 s apart, then the stream is refused.
 */
export const RECEIVE_RETRY: RetryPolicy = { retries: 2, initialDelayMs: 1000, maxDelayMs: 8000, deadlineMs: Number.POSITIVE_INFINITY };

/** Fills in `options` from `defaults`; `false` means a single attempt. */
export function retryPolicy(options: RetryOptions | false | undefined, defaults: RetryPolicy): RetryPolicy {
  if (options === false) return { ...defaults, retries: 0 };
  return {
    retries: options?.retries ?? defaults.retries,
    initialDelayMs: options?.initialDelayMs ?? defaults.initialDelayMs,
    maxDelayMs: options?.maxDelayMs ?? defaults.maxDelayMs,
    deadlineMs: options?.deadlineMs ?? defaults.deadlineMs,
  };
}

/** The wait before retry number `retry + 1`: `initialDelayMs` doubling up to `maxDelayMs`, with `jitter` 50-100 % of that. */
export function retryDelayMs(policy: Pick<RetryPolicy, "initialDelayMs" | "maxDelayMs">, retry: number, jitter: boolean): number {
  const delayMs = Math.min(policy.maxDelayMs, policy.initialDelayMs * 2 ** Math.min(retry, 30));
  return jitter ? delayMs * (0.5 + Math.random() / 2) : delayMs;
}

/** Waits `ms`, or less if `signal` aborts; never rejects. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const done = (): void => {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener("abort", done, { once: true });
  });
}

/**
 * Runs `attempt` until it succeeds, `shouldRetry` says no, the policy's retries are spent or
 * `signal` aborts; rethrows the last error. Waits `initialDelayMs` doubling up to `maxDelayMs`
 * between attempts, the CPU idle meanwhile (with `jitter`, 50-100 % of that, so many clients do
 * not retry in step). The one retry loop of core: publishes, `saveTo`'s folder, frame handling.
 */
export async function withRetries<T>(
  attempt: (attemptNumber: number) => Promise<T> | T,
  policy: RetryPolicy,
  { shouldRetry = () => true, jitter = false, signal }: { shouldRetry?: (error: unknown) => boolean; jitter?: boolean; signal?: AbortSignal } = {},
): Promise<T> {
  for (let retry = 0; ; retry++) {
    try {
      return await attempt(retry + 1);
    } catch (error) {
      if (retry >= policy.retries || signal?.aborted || !shouldRetry(error)) throw error;
      await sleep(retryDelayMs(policy, retry, jitter), signal);
      if (signal?.aborted) throw error;
    }
  }
}
