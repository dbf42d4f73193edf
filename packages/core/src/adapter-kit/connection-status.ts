import type { ConnectionState, ConnectionWatch } from "../transport";

/**
 * A {@link ConnectionWatch} its owner sets: an adapter's `connection`, a supervisor's status,
 * the retrying transport's merged view. Listeners hear each change once, in the order they
 * started watching; setting the state it already has tells nobody.
 */
export class ConnectionStatus implements ConnectionWatch {
  #state: ConnectionState = "connected";
  readonly #listeners = new Set<(state: ConnectionState) => void>();

  get state(): ConnectionState {
    return this.#state;
  }

  /** Changes the state and tells the listeners, if it is a change. */
  set(state: ConnectionState): void {
    if (state === this.#state) return;
    this.#state = state;
    for (const listener of [...this.#listeners]) {
      try {
        listener(state);
      } catch {
        // A listener (a progress callback) must not break the connection's bookkeeping.
      }
    }
  }

  watch(listener: (state: ConnectionState) => void): () => void {
    // A listener watching twice would hear each change once anyway (a Set): wrap it so that each
    // call's stop function stops that call's watching only.
    const own = (state: ConnectionState): void => listener(state);
    this.#listeners.add(own);
    return () => void this.#listeners.delete(own);
  }
}
