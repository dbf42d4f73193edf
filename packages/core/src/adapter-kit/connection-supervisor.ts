import { retryDelayMs, sleep, withRetries } from "../backoff";
import { TransportError } from "../errors/transport-error";
import type { ConnectionState, ConnectionWatch } from "../transport";
import { ConnectionStatus } from "./connection-status";

/**
 * Where a {@link ConnectionSupervisor} stands:
 * - `"idle"`: no connection yet, or the first attempt failed (the next call tries again);
 * - `"connecting"`: the first connection is being opened;
 * - `"connected"`: a connection is up;
 * - `"reconnecting"`: the connection dropped and is being re-established with backoff;
 * - `"failed"`: it cannot come back (reconnect is off, or its attempts ran out);
 * - `"closed"`: {@link ConnectionSupervisor.close} was called.
 */
export type ConnectionPhase = "idle" | "connecting" | "connected" | "reconnecting" | "failed" | "closed";

/** A subscription that a supervisor starts again on each new connection. */
export interface SupervisedSubscription<C> {
  /**
   * Starts (again) on `connection`. A rejection with a retryable error fails the reconnect
   * attempt (tried again after backoff); a non-retryable one closes this subscription alone.
   */
  start(connection: C): Promise<void> | void;
  /** Stops the subscription for good. */
  close(): Promise<void>;
}

/** Backoff between reconnect attempts: `initialDelayMs` doubling up to `maxDelayMs`, with jitter. */
export interface ReconnectPolicy {
  /** Wait before the first attempt after a drop, in ms. */
  readonly initialDelayMs: number;
  /** Longest wait between two attempts, in ms. */
  readonly maxDelayMs: number;
  /** Attempts after a drop before the supervisor fails for good. @default Infinity */
  readonly maxAttempts?: number;
}

/** What a {@link ConnectionSupervisor} needs from its adapter: how to open, watch and close one connection. */
export interface ConnectionSupervisorOptions<C> {
  /** The adapter's name, for `[stream] [<name>]` messages. */
  readonly name: string;
  /** Opens one connection; rejects when it cannot. */
  open(): Promise<C>;
  /**
   * Starts watching `connection`: calls `lost(cause)` when it drops (calling it again is harmless).
   * Returns a function that stops watching.
   */
  onLost(connection: C, lost: (cause: unknown) => void): () => void;
  /**
   * For a client that re-establishes its own connection (mqtt.js): starts hearing it say it is
   * `"reconnecting"` and `"connected"` again, so that {@link ConnectionSupervisor.status} follows it
   * while the connection stays current (it holds calls meanwhile; it has not dropped for good).
   * Returns a function that stops listening.
   */
  watchState?(connection: C, report: (state: ConnectionState) => void): () => void;
  /** Lets go of a connection: closes it when the adapter owns it. Awaited by `close()`. */
  close(connection: C): Promise<void> | void;
  /**
   * Called when a connection becomes current (the first one, and each re-established one once
   * the tracked subscriptions have started on it), before any caller waiting for it resumes.
   */
  onConnected?(connection: C): void;
  /** Called once per connection that drops, before anything else happens: fail what waits on it. */
  onDisconnect?(connection: C, cause: unknown): void;
  /**
   * How to reconnect after a drop, or a function giving the error to fail with for good (a
   * connection the adapter was handed cannot be re-opened).
   */
  readonly reconnect: ReconnectPolicy | ((cause: unknown) => Error);
  /** Wraps a broker or socket error as the adapter's `TransportError`. */
  toError(what: string, cause: unknown, retryable?: boolean): Error;
  /** Hears each failure the supervisor recovers from (a drop, a failed attempt), for logging. */
  report?(error: Error): void;
}

/**
 * Keeps one broker connection up: opens it on first use, re-opens it with backoff when it drops,
 * starts every tracked subscription again on the new connection, and says where it stands
 * ({@link ConnectionPhase}). `close()` ends every wait. Written once here so that an adapter only
 * says how to open, watch and close its broker's connection.
 *
 * The first connection is one attempt: a failure rejects the call that needed it, and the next
 * call tries again. Only a connection that was up and dropped is retried in the background.
 */
export class ConnectionSupervisor<C> {
  readonly #options: ConnectionSupervisorOptions<C>;
  readonly #subscriptions = new Set<SupervisedSubscription<C>>();
  /** Stops watching each connection, and says it has not dropped yet. */
  readonly #watching = new Map<C, () => void>();
  readonly #closing = new AbortController();
  readonly #waiters = new Set<{ resolve(connection: C): void; reject(error: unknown): void }>();
  #phase: ConnectionPhase = "idle";
  readonly #status = new ConnectionStatus();
  /** What the current connection's client says of itself (`watchState`). */
  #clientState: ConnectionState = "connected";
  #current: C | undefined;
  #connecting: Promise<C> | undefined;
  #failure: Error | undefined;
  #closed: Promise<void> | undefined;

  constructor(options: ConnectionSupervisorOptions<C>) {
    this.#options = options;
  }

  /** Where the connection stands. */
  get phase(): ConnectionPhase {
    return this.#phase;
  }

  /**
   * The phase as a transport's `connection` (`Transport.connection`): `"reconnecting"` while the
   * phase is, `"connected"` in every other phase. An adapter hands it on as it is.
   */
  get status(): ConnectionWatch {
    return this.#status;
  }

  /** The connection while `"connected"`, else undefined. */
  get current(): C | undefined {
    return this.#phase === "connected" ? this.#current : undefined;
  }

  /** Whether `connection` has not dropped (nor been let go) since it opened. */
  isAlive(connection: C): boolean {
    return this.#watching.has(connection);
  }

  /** Why calls fail now (closed, or failed for good), or undefined while they may succeed. */
  refusal(): Error | undefined {
    if (this.#phase === "closed") return this.#error("the transport is closed; create a new one", false);
    return this.#phase === "failed" ? this.#failure : undefined;
  }

  /**
   * The connection: the live one, the one being opened, or a new one when idle. Rejects with a
   * retryable error while reconnecting (the caller retries, core's retrying transport does), and
   * with the reason while failed or closed.
   */
  connection(): Promise<C> {
    switch (this.#phase) {
      case "connected":
        return Promise.resolve(this.#current as C);
      case "connecting":
        return this.#connecting as Promise<C>;
      case "idle":
        this.#setPhase("connecting");
        this.#connecting = this.#openOnce().finally(() => {
          this.#connecting = undefined;
        });
        return this.#connecting;
      case "reconnecting":
        return Promise.reject(this.#error("the connection to the broker dropped and is being re-established; try again shortly", true));
      default:
        return Promise.reject(this.refusal());
    }
  }

  /** Like {@link connection}, but while reconnecting waits for the new connection; `close()` or a failure ends the wait. */
  whenConnected(): Promise<C> {
    if (this.#phase !== "reconnecting") return this.connection();
    return new Promise<C>((resolve, reject) => this.#waiters.add({ resolve, reject }));
  }

  /** Starts `subscription` again on every new connection until it is {@link forget}-ten. */
  track(subscription: SupervisedSubscription<C>): void {
    this.#subscriptions.add(subscription);
  }

  /** Stops starting `subscription` on new connections. */
  forget(subscription: SupervisedSubscription<C>): void {
    this.#subscriptions.delete(subscription);
  }

  /** Fails for good with `error`: every call and wait from now on rejects with it. */
  fail(error: Error): void {
    if (this.#phase === "closed") return;
    this.#setPhase("failed");
    this.#failure = error;
    this.#report(error);
    this.#settleWaiters(error);
  }

  /**
   * Closes: ends the reconnect loop and every wait, closes the tracked subscriptions, waits for
   * a connection being opened, then lets go of the connection (the adapter's `close`).
   */
  close(): Promise<void> {
    this.#closed ??= this.#close();
    return this.#closed;
  }

  async #close(): Promise<void> {
    const connecting = this.#connecting;
    this.#setPhase("closed");
    this.#closing.abort();
    this.#settleWaiters(this.refusal() as Error);
    await Promise.allSettled([...this.#subscriptions].map((subscription) => subscription.close()));
    await connecting?.catch(() => {});
    const connection = this.#current;
    this.#current = undefined;
    if (connection === undefined || !this.#release(connection)) return;
    await this.#options.close(connection);
  }

  async #openOnce(): Promise<C> {
    let connection: C;
    try {
      connection = await this.#open();
    } catch (error) {
      if (this.#phase === "connecting") this.#setPhase("idle");
      throw this.#options.toError("could not connect to the broker", error);
    }
    if (this.#phase !== "connecting" || !this.isAlive(connection)) {
      this.#discard(connection);
      if (this.#phase === "connecting") this.#setPhase("idle");
      throw this.refusal() ?? this.#error("the connection dropped while opening; try again", true);
    }
    this.#current = connection;
    this.#setPhase("connected");
    this.#options.onConnected?.(connection);
    return connection;
  }

  /** Opens a connection and watches it. */
  async #open(): Promise<C> {
    const connection = await this.#options.open();
    const stopLost = this.#options.onLost(connection, (cause) => this.#lost(connection, cause));
    const stopState = this.#options.watchState?.(connection, (state) => {
      if (this.#current !== connection && this.#phase !== "connecting") return;
      this.#clientState = state;
      this.#setPhase(this.#phase);
    });
    this.#watching.set(connection, () => {
      stopLost();
      stopState?.();
    });
    return connection;
  }

  /** Stops watching `connection`; false when it had already dropped or been let go. */
  #release(connection: C): boolean {
    const stop = this.#watching.get(connection);
    if (stop === undefined) return false;
    this.#watching.delete(connection);
    stop();
    return true;
  }

  /** Gives up on a connection that is not (or no longer) the current one. */
  #discard(connection: C): void {
    if (!this.#release(connection)) return;
    Promise.resolve()
      .then(() => this.#options.close(connection))
      .catch(() => {});
  }

  #lost(connection: C, cause: unknown): void {
    if (!this.#release(connection)) return;
    this.#options.onDisconnect?.(connection, cause);
    if (this.#current !== connection) return;
    this.#current = undefined;
    if (this.#phase !== "connected") return; // Closed, or an attempt of the reconnect loop.
    const { reconnect } = this.#options;
    if (typeof reconnect === "function") {
      this.fail(reconnect(cause));
      return;
    }
    this.#report(this.#options.toError("the connection to the broker dropped; reconnecting", cause ?? "connection closed", true));
    void this.#reconnect(reconnect);
  }

  async #reconnect(policy: ReconnectPolicy): Promise<void> {
    this.#setPhase("reconnecting");
    const { signal } = this.#closing;
    const backoff = { initialDelayMs: policy.initialDelayMs, maxDelayMs: policy.maxDelayMs };
    await sleep(retryDelayMs(backoff, 0, true), signal);
    const maxAttempts = policy.maxAttempts ?? Number.POSITIVE_INFINITY;
    const giveUp = () =>
      this.#error(`gave up reconnecting after ${maxAttempts} attempts; check the broker, then create a new transport`, false);
    if (maxAttempts < 1) return this.fail(giveUp());
    try {
      const connection = await withRetries(
        (attempt) => this.#reconnectOnce(attempt),
        { ...backoff, retries: maxAttempts - 1, deadlineMs: Number.POSITIVE_INFINITY },
        {
          shouldRetry: () => this.#phase === "reconnecting",
          jitter: true,
          signal,
          giveUp,
        },
      );
      this.#setPhase("connected");
      this.#options.onConnected?.(connection);
      this.#settleWaiters(undefined, connection);
    } catch (error) {
      if (this.#phase === "reconnecting") this.fail(error as Error);
    }
  }

  async #reconnectOnce(attempt: number): Promise<C> {
    if (this.#phase !== "reconnecting") throw this.refusal();
    let connection: C | undefined;
    try {
      connection = await this.#open();
      if (this.#phase !== "reconnecting") throw this.refusal();
      this.#current = connection;
      for (const subscription of [...this.#subscriptions]) {
        try {
          await subscription.start(connection);
        } catch (error) {
          if ((error as { retryable?: unknown }).retryable !== false) throw error;
          // For good (the broker refuses it now): this one cannot come back; the others can.
          this.#report(error as Error);
          await subscription.close();
        }
      }
      if (!this.isAlive(connection)) throw this.#error("the connection dropped while subscribing again", true);
      return connection;
    } catch (error) {
      if (connection !== undefined) {
        if (this.#current === connection) this.#current = undefined;
        this.#discard(connection);
      }
      if (this.#phase === "reconnecting") this.#report(this.#options.toError(`reconnecting to the broker failed (attempt ${attempt})`, error, true));
      throw error;
    }
  }

  #setPhase(phase: ConnectionPhase): void {
    if (phase !== this.#phase && phase !== "connected") this.#clientState = "connected";
    this.#phase = phase;
    const reconnecting = phase === "reconnecting" || (phase === "connected" && this.#clientState === "reconnecting");
    this.#status.set(reconnecting ? "reconnecting" : "connected");
  }

  #settleWaiters(error: unknown, connection?: C): void {
    for (const waiter of [...this.#waiters]) {
      if (error === undefined) waiter.resolve(connection as C);
      else waiter.reject(error);
    }
    this.#waiters.clear();
  }

  #error(message: string, retryable: boolean): TransportError {
    return new TransportError({ message: `[stream] [${this.#options.name}] ${message}`, retryable });
  }

  #report(error: Error): void {
    try {
      this.#options.report?.(error);
    } catch {
      // A logging callback must not break recovery.
    }
  }
}
