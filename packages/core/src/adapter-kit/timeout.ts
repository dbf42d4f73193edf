/**
 * `promise`, or a rejection with `onTimeout()` once `ms` have passed without it settling. The
 * timer does not keep the process alive. For a bounded wait whose outcome does not matter (a
 * graceful close), add `.catch(() => {})`.
 */
export function withTimeout<T>(promise: Promise<T>, ms: number, onTimeout: () => Error = () => new Error(`timed out after ${ms} ms`)): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(onTimeout()), ms);
    timer.unref();
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
