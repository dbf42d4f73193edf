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

/** How {@link withRetries} decides and reports; every field optional. */
export interface RetryControl {
  /** Whether a failure is worth another attempt. @default always */
  readonly shouldRetry?: (error: unknown) => boolean;
  /** Waits of 50-100 % of the backoff, so many clients do not retry in step. @default false */
  readonly jitter?: boolean;
  /** Stops waiting: the last error is rethrown at once. */
  readonly signal?: AbortSignal;
  /** When the policy's `deadlineMs` began, in epoch ms. @default when the first attempt failed */
  readonly since?: () => number | undefined;
  /** What to throw instead of the last error once the retries or the deadline are spent. */
  readonly giveUp?: (error: unknown, retries: number) => unknown;
}

/**
 * Runs `attempt` until it succeeds, `shouldRetry` says no, the policy's retries or its
 * `deadlineMs` are spent, or `signal` aborts; then rethrows the last error (or `giveUp`'s).
 * Waits `initialDelayMs` doubling up to `maxDelayMs` between attempts, the CPU idle meanwhile.
 * The one retry loop of core: publishes, `saveTo`'s folder, frame handling.
 */
export async function withRetries<T>(
  attempt: (attemptNumber: number) => Promise<T> | T,
  policy: RetryPolicy,
  { shouldRetry = () => true, jitter = false, signal, since, giveUp = (error) => error }: RetryControl = {},
): Promise<T> {
  let firstFailureAt: number | undefined;
  for (let retry = 0; ; retry++) {
    try {
      return await attempt(retry + 1);
    } catch (error) {
      if (signal?.aborted || !shouldRetry(error)) throw error;
      firstFailureAt ??= Date.now();
      const leftMs = (since?.() ?? firstFailureAt) + policy.deadlineMs - Date.now();
      if (retry >= policy.retries || leftMs <= 0) throw giveUp(error, retry);
      await sleep(Math.min(leftMs, retryDelayMs(policy, retry, jitter)), signal);
      if (signal?.aborted) throw error;
    }
  }
}
