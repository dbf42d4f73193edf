import type { Subscription } from "../transport";

/**
 * The subscriptions a transport has open: each is closed when its `subscribe` call's signal
 * aborts, and all that remain when the transport closes. A subscription removes itself with
 * {@link SubscriptionSet.delete} when it closes.
 */
export class SubscriptionSet<S extends Subscription> {
  /** Each open subscription, with the function that stops listening to its signal. */
  readonly #open = new Map<S, () => void>();

  /** Open subscriptions. */
  get size(): number {
    return this.#open.size;
  }

  /**
   * Keeps `subscription` until {@link delete}, and closes it when `signal` aborts (at once when it
   * has already). Returns `subscription`.
   */
  add(subscription: S, signal?: AbortSignal): S {
    const onAbort = (): void => void subscription.close().catch(() => {});
    signal?.addEventListener("abort", onAbort, { once: true });
    this.#open.set(subscription, () => signal?.removeEventListener("abort", onAbort));
    if (signal?.aborted) onAbort();
    return subscription;
  }

  /** Forgets `subscription` (it closed) and stops listening to its signal. */
  delete(subscription: S): void {
    this.#open.get(subscription)?.();
    this.#open.delete(subscription);
  }

  /** The open subscriptions, for a transport that tells each of them something. */
  [Symbol.iterator](): IterableIterator<S> {
    return this.#open.keys();
  }

  /** Closes every open subscription, and waits for all of them, whether or not they fail. */
  async closeAll(): Promise<void> {
    await Promise.allSettled([...this.#open.keys()].map((subscription) => subscription.close()));
  }
}
