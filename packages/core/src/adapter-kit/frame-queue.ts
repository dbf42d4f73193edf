/** What a {@link FrameQueue} does with each item. */
export interface FrameQueueOptions<T> {
  /** Hands one item to core, usually `(delivery) => handler(delivery.body)`. */
  readonly handle: (item: T) => Promise<void> | void;
  /**
   * Called once `handle` resolved (`handled` true) or rejected or threw (false): acknowledge or
   * give the frame back here. Awaited before the next item, so a pause here (a redelivery delay)
   * holds the queue. A throw (an ack on a channel that just closed) is ignored.
   */
  readonly onSettled: (item: T, handled: boolean) => Promise<void> | void;
  /**
   * Items for which this says true when their turn comes are dropped without `handle` or
   * `onSettled`: frames of a consumer since replaced, which the broker redelivers anyway.
   * @default never
   */
  readonly isStale?: (item: T) => boolean;
}

/**
 * Hands frames to core one at a time, in arrival order: the next item waits until the previous
 * one's `handle` and `onSettled` have finished. This is the {@link FrameHandler} promise of the
 * transport spec ("the adapter awaits each handler before calling the next") written once;
 * an adapter pushes what its broker client delivers and acknowledges in `onSettled`.
 *
 * @example
 * const queue = new FrameQueue<Message>({
 *   handle: (message) => handler(message.body),
 *   onSettled: (message, handled) => (handled ? channel.ack(message) : channel.nack(message)),
 * });
 * client.on("message", (message) => queue.push(message));
 */
export class FrameQueue<T> {
  readonly #items: T[] = [];
  readonly #options: FrameQueueOptions<T>;
  #running: Promise<void> | undefined;

  constructor(options: FrameQueueOptions<T>) {
    this.#options = options;
  }

  /** Items waiting for their turn (not counting the one being handled). */
  get size(): number {
    return this.#items.length;
  }

  /** Queues `item`; it is handled after every item pushed before it. */
  push(item: T): void {
    this.#items.push(item);
    this.#running ??= this.#drain().finally(() => {
      this.#running = undefined;
    });
  }

  /**
   * Removes the waiting items `match` picks (all when omitted) and returns them, for the adapter
   * to give back to the broker or settle; the item being handled, if any, still finishes.
   */
  clear(match?: (item: T) => boolean): T[] {
    if (match === undefined) return this.#items.splice(0);
    const removed: T[] = [];
    for (let i = this.#items.length - 1; i >= 0; i--) {
      if (match(this.#items[i] as T)) removed.unshift(...this.#items.splice(i, 1));
    }
    return removed;
  }

  /** Resolves once nothing is being handled: at once when idle, else when the queue runs dry or is cleared. */
  idle(): Promise<void> {
    return this.#running ?? Promise.resolve();
  }

  async #drain(): Promise<void> {
    const { handle, onSettled, isStale } = this.#options;
    for (let item = this.#items.shift(); item !== undefined; item = this.#items.shift()) {
      if (isStale?.(item)) continue;
      let handled = true;
      try {
        await handle(item);
      } catch {
        handled = false;
      }
      try {
        await onSettled(item, handled);
      } catch {
        // The adapter could not settle it (its channel closed): the broker redelivers the frame.
      }
    }
  }
}
