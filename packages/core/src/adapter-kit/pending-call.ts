/**
 * What a publish (or any call waiting on the broker) returns to core: a promise that settles
 * once, however many things try to settle it (the broker's ack, a dropped connection, a timeout,
 * the caller's `AbortSignal`, `close()`), with the clean-up run once, at the moment it settles.
 *
 * An abort (of a signal already aborted: at once) calls `onAbort`, by default: reject with the
 * signal's reason. An adapter passes its own to reject with an error of its own, or to wait (a
 * frame being written); it gets the call as its second argument, since the constructor is still
 * running when the signal was aborted already.
 *
 * @example
 * const call = new PendingCall(signal);
 * const timer = setTimeout(() => call.reject(errors.error("no ack", true)), ackTimeoutMs);
 * call.onSettled(() => clearTimeout(timer));
 * client.publish(topic, payload, (error) => (error ? call.reject(errors.wrap("publish failed", error)) : call.resolve()));
 * return call.promise;
 */
export class PendingCall<T = void> {
  /** Settles once, with the first `resolve` or `reject`. */
  readonly promise: Promise<T>;
  #settled = false;
  #resolve!: (value: T) => void;
  #reject!: (error: unknown) => void;
  readonly #cleanups: Array<() => void> = [];

  constructor(signal?: AbortSignal, onAbort: (reason: unknown, call: PendingCall<T>) => void = (reason, call) => call.reject(reason)) {
    this.promise = new Promise<T>((resolve, reject) => {
      this.#resolve = resolve;
      this.#reject = reject;
    });
    if (signal === undefined) return;
    if (signal.aborted) {
      onAbort(signal.reason, this);
      return;
    }
    const abort = (): void => onAbort(signal.reason, this);
    signal.addEventListener("abort", abort, { once: true });
    this.onSettled(() => signal.removeEventListener("abort", abort));
  }

  /** Whether it has settled. */
  get settled(): boolean {
    return this.#settled;
  }

  /** Resolves, unless it has settled already. */
  resolve(value: T): void {
    if (this.#settle()) this.#resolve(value);
  }

  /** Rejects, unless it has settled already. */
  reject(error: unknown): void {
    if (this.#settle()) this.#reject(error);
  }

  /** Runs `cleanup` when it settles, or at once when it has. */
  onSettled(cleanup: () => void): void {
    if (this.#settled) cleanup();
    else this.#cleanups.push(cleanup);
  }

  #settle(): boolean {
    if (this.#settled) return false;
    this.#settled = true;
    for (const cleanup of this.#cleanups.splice(0)) cleanup();
    return true;
  }
}
