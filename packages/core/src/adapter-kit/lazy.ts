/**
 * A value made on first use and shared after that: a broker client, a producer, an admin
 * connection. A failed attempt is forgotten, so the next call tries again rather than repeating
 * one failure for the life of the transport.
 */
export class Lazy<T> {
  readonly #create: () => Promise<T>;
  #value: Promise<T> | undefined;

  constructor(create: () => Promise<T>) {
    this.#create = create;
  }

  /** The value: made now on first use (or after a failed attempt), else the one being made or made. */
  get(): Promise<T> {
    this.#value ??= this.#create().catch((error: unknown) => {
      this.#value = undefined;
      throw error;
    });
    return this.#value;
  }

  /** The value if one was asked for (it may still be being made, or fail), without making one. */
  peek(): Promise<T> | undefined {
    return this.#value;
  }
}
