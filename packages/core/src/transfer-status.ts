import { StreamError } from "./errors/stream-error";
import type { ConnectionState } from "./transport";

/** Which way a transfer goes: an `OutgoingStream` sends, an `IncomingStream` receives. */
export type TransferDirection = "send" | "receive";

/** Why a transfer failed, in {@link TransferStatus.failure}. */
export interface TransferFailure {
  /** The error's class name, e.g. `"IntegrityError"`, `"StreamTimeoutError"`, `"TargetFolderError"`. */
  readonly type: string;
  /** The `StreamError`'s stable code, e.g. `"STREAM_INTEGRITY"`; absent for an error that is not one. */
  readonly code?: string;
  readonly message: string;
  /** Whether trying again (a resume, sending again) may succeed: the error's `retryable`. */
  readonly retryable: boolean;
  /** The error itself, as `result` rejects with it. */
  readonly error: unknown;
}

/**
 * Where one transfer is, as `'status'` events, `status` and `events()` report it on both sides
 * (`OutgoingStream`, `IncomingStream`), every `statusIntervalMs` and at once on each phase change.
 */
export interface TransferStatus<P extends string = string> {
  readonly streamId: string;
  readonly direction: TransferDirection;
  /** The stream's name (the manifest's; while a send is opening, `SendOptions.name` or the file's base name). */
  readonly name: string;
  /** The phase: a `SendPhase` or a `ReceivePhase`. */
  readonly phase: P;
  /**
   * Payload bytes done: acknowledged by the receiver (or, with `flowControl: "broker"`, the
   * broker) on a send; received, verified and handed on (to the application, the file, the
   * spool) on a receive. It may go back on a send whose stream another receiver took over.
   */
  readonly bytesTransferred: number;
  /** Total bytes, when known: the manifest's `sizeBytes`, a file's size, or every byte once completed. */
  readonly sizeBytes?: number;
  /** Chunks done, as {@link bytesTransferred} counts them. */
  readonly chunksTransferred: number;
  /** Total chunks, when {@link sizeBytes} is known. */
  readonly chunkCount?: number;
  /**
   * Bytes per second over the last few seconds (3 s, or the status interval when longer), not
   * since the start: a stall shows as a falling rate. 0 until two readings are apart.
   */
  readonly bytesPerSecond: number;
  /**
   * Seconds left at {@link bytesPerSecond}, to a tenth: when {@link sizeBytes} is known and the
   * rate is above 0; 0 once completed; absent after a failure or a cancel.
   */
  readonly etaSeconds?: number;
  /**
   * The broker connection as a send sees it (`SendProgress.connection`): `"reconnecting"` while
   * publishes are retried. Always `"connected"` on a receive.
   */
  readonly connection: ConnectionState;
  /** Set in the final status of a transfer that failed or was cancelled. */
  readonly failure?: TransferFailure;
}

/**
 * What `events()` yields: a phase change (with the status at that moment) or a periodic status.
 * The last is the phase change to the final phase (`"completed"`, `"failed"`, `"cancelled"`).
 */
export type TransferEvent<P extends string = string> =
  | { readonly type: "phase"; readonly phase: P; readonly status: TransferStatus<P> }
  | { readonly type: "status"; readonly status: TransferStatus<P> };

/** How often `'status'` is emitted while a transfer goes on, unless told otherwise. */
export const DEFAULT_STATUS_INTERVAL_MS = 1000;
/** The span the rate is measured over: short enough to show a stall, long enough to smooth a window's bursts. */
const RATE_WINDOW_MS = 3000;
/** Readings closer than this share one sample: polling `status` in a loop does not grow the window. */
const MIN_SAMPLE_GAP_MS = 50;
/**
 * Most events an `events()` iterator holds for a consumer that does not read: periodic statuses
 * are coalesced (only the newest waits), and past this the oldest events go (the final one never).
 */
export const MAX_BUFFERED_EVENTS = 32;

/** @internal Throws a `RangeError` unless `intervalMs` is a usable status interval. */
export function checkStatusInterval(intervalMs: number | undefined, what: string): void {
  if (intervalMs !== undefined && !(Number.isFinite(intervalMs) && intervalMs > 0)) {
    throw new RangeError(`[stream] ${what} must be a number of milliseconds above 0; got ${intervalMs}`);
  }
}

function describeFailure(error: unknown): TransferFailure {
  const stream = StreamError.isInstance(error);
  return {
    type: error instanceof Error ? error.name : typeof error,
    ...(stream ? { code: error.code } : {}),
    message: error instanceof Error ? error.message : String(error),
    retryable: stream ? error.retryable : false,
    error,
  };
}

/** @internal What an owner says of itself at a reading. */
export interface StatusReading<P extends string> {
  readonly phase: P;
  readonly name: string;
  readonly bytes: number;
  readonly sizeBytes?: number | undefined;
  readonly connection: ConnectionState;
}

/** @internal What a {@link TransferStatusTracker} is given by its owner. */
export interface StatusOwner<P extends string> {
  readonly streamId: string;
  readonly direction: TransferDirection;
  readonly chunkBytes: number;
  /** The phases a transfer ends in. */
  readonly finalPhases: readonly P[];
  read(): StatusReading<P>;
  /** The owner's `result`: a failure whose error is not known when the final phase comes rejects it. */
  result(): Promise<unknown>;
  /** Emits `'status'` on the owner. */
  emit(status: TransferStatus<P>): void;
}

/**
 * @internal The status listener of one transfer, the same for both directions: samples its bytes
 * into a sliding window for the rate, emits `'status'` every interval (an unref'd timer, stopped
 * once the transfer ends) and at once on each phase change, and feeds the `events()` iterators.
 * The owner calls {@link phaseChanged} from its `'phase'` events.
 */
export class TransferStatusTracker<P extends string> {
  private readonly samples: Array<{ atMs: number; bytes: number }> = [];
  private readonly queues = new Set<EventQueue<P>>();
  private timer: NodeJS.Timeout | undefined;
  private failure: unknown;
  /** Why the transfer ended, once it has: every status from then on carries it. */
  private endedBy: unknown;
  private finalEvent: TransferEvent<P> | undefined;
  private ending = false;

  constructor(
    private readonly owner: StatusOwner<P>,
    intervalMs = DEFAULT_STATUS_INTERVAL_MS,
  ) {
    this.sample(Date.now(), 0);
    this.setInterval(intervalMs);
  }

  /** (Re)starts the periodic `'status'` at `intervalMs`, e.g. when `saveTo` asks for another one. */
  setInterval(intervalMs: number): void {
    if (this.ending) return;
    clearInterval(this.timer);
    this.timer = setInterval(() => this.publish({ type: "status", status: this.snapshot() }), intervalMs);
    this.timer.unref();
  }

  /** Records why the transfer failed, when its owner knows before the final phase (the first one counts). */
  fail(error: unknown): void {
    this.failure ??= error;
  }

  /** The status now. */
  snapshot(failure: unknown = this.endedBy): TransferStatus<P> {
    const { streamId, direction, chunkBytes, finalPhases } = this.owner;
    const { phase, name, bytes, sizeBytes, connection } = this.owner.read();
    const atMs = Date.now();
    const bytesPerSecond = Math.round(this.sample(atMs, bytes));
    const ended = finalPhases.includes(phase);
    const left = sizeBytes === undefined ? undefined : Math.max(0, sizeBytes - bytes);
    const etaSeconds = phase === "completed" ? 0 : ended || left === undefined || bytesPerSecond <= 0 ? undefined : Math.round((left / bytesPerSecond) * 10) / 10;
    return {
      streamId,
      direction,
      name,
      phase,
      bytesTransferred: bytes,
      ...(sizeBytes === undefined ? {} : { sizeBytes, chunkCount: Math.ceil(sizeBytes / chunkBytes) }),
      chunksTransferred: Math.ceil(bytes / chunkBytes),
      bytesPerSecond,
      ...(etaSeconds === undefined ? {} : { etaSeconds }),
      connection,
      ...(failure === undefined ? {} : { failure: describeFailure(failure) }),
    };
  }

  /** The owner's phase changed: a `'status'` at once; a final phase stops the timer and ends the iterators. */
  phaseChanged(phase: P): void {
    if (this.ending) return;
    if (!this.owner.finalPhases.includes(phase)) {
      this.publish({ type: "phase", phase, status: this.snapshot() });
      return;
    }
    this.ending = true;
    clearInterval(this.timer);
    if (phase === "completed") {
      this.finish(phase, undefined);
    } else if (this.failure !== undefined) {
      this.finish(phase, this.failure);
    } else {
      // The error comes with `result`'s rejection, a moment after the phase.
      this.owner.result().then(
        () => this.finish(phase, this.failure),
        (error: unknown) => this.finish(phase, this.failure ?? error),
      );
    }
  }

  /**
   * An iterator of this transfer's events from now on, ending after the final one (at once after
   * it, when the transfer has ended already). Holds at most {@link MAX_BUFFERED_EVENTS}.
   */
  events(): AsyncIterableIterator<TransferEvent<P>> {
    const queue = new EventQueue<P>(() => this.queues.delete(queue));
    if (this.finalEvent) queue.end(this.finalEvent);
    else this.queues.add(queue);
    return queue;
  }

  private finish(phase: P, failure: unknown): void {
    this.endedBy = failure;
    const status = this.snapshot(failure);
    this.finalEvent = { type: "phase", phase, status };
    this.owner.emit(status);
    for (const queue of this.queues) queue.end(this.finalEvent);
    this.queues.clear();
  }

  private publish(event: TransferEvent<P>): void {
    this.owner.emit(event.status);
    for (const queue of this.queues) queue.push(event);
  }

  /** Adds a reading to the window and returns the rate over it, in bytes per second. */
  private sample(atMs: number, bytes: number): number {
    const { samples } = this;
    const last = samples.at(-1);
    // Fewer bytes than before (a send another receiver took over from further back): start afresh.
    if (last && bytes < last.bytes) samples.length = 0;
    if (!last || samples.length === 0 || atMs - last.atMs >= MIN_SAMPLE_GAP_MS) samples.push({ atMs, bytes });
    // Keep one reading at or before the window's start, so the rate spans the whole window.
    while (samples.length > 2 && atMs - (samples[1] as { atMs: number }).atMs >= RATE_WINDOW_MS) samples.shift();
    const first = samples[0] as { atMs: number; bytes: number };
    const spanMs = atMs - first.atMs;
    return spanMs > 0 ? ((bytes - first.bytes) * 1000) / spanMs : 0;
  }
}

/**
 * @internal One `events()` iterator's buffer: a periodic status replaces one still waiting, phase
 * changes are kept, and past {@link MAX_BUFFERED_EVENTS} the oldest go.
 */
export class EventQueue<P extends string> implements AsyncIterableIterator<TransferEvent<P>> {
  private readonly buffer: Array<TransferEvent<P>> = [];
  private waiting: ((result: IteratorResult<TransferEvent<P>>) => void) | undefined;
  private ended = false;

  constructor(private readonly detach: () => void) {}

  /** Events waiting to be read. */
  get size(): number {
    return this.buffer.length;
  }

  push(event: TransferEvent<P>): void {
    if (this.ended) return;
    if (this.deliver(event)) return;
    if (event.type === "status" && this.buffer.at(-1)?.type === "status") this.buffer.pop();
    this.buffer.push(event);
    if (this.buffer.length > MAX_BUFFERED_EVENTS) this.buffer.shift();
  }

  /** Queues `last` and ends: `next()` yields what waits, then `last`, then is done. */
  end(last: TransferEvent<P>): void {
    if (this.ended) return;
    if (!this.deliver(last)) {
      this.buffer.push(last);
      if (this.buffer.length > MAX_BUFFERED_EVENTS) this.buffer.shift();
    }
    this.ended = true;
    this.release();
  }

  next(): Promise<IteratorResult<TransferEvent<P>>> {
    const event = this.buffer.shift();
    if (event) return Promise.resolve({ value: event, done: false });
    if (this.ended) return Promise.resolve({ value: undefined, done: true });
    return new Promise((resolve) => (this.waiting = resolve));
  }

  return(): Promise<IteratorResult<TransferEvent<P>>> {
    this.ended = true;
    this.buffer.length = 0;
    this.detach();
    this.release();
    return Promise.resolve({ value: undefined, done: true });
  }

  [Symbol.asyncIterator](): AsyncIterableIterator<TransferEvent<P>> {
    return this;
  }

  /** Hands `event` to a `next()` waiting for one; false when none waits. */
  private deliver(event: TransferEvent<P>): boolean {
    const waiting = this.waiting;
    if (!waiting) return false;
    this.waiting = undefined;
    waiting({ value: event, done: false });
    return true;
  }

  /** Tells a `next()` still waiting that there is nothing more. */
  private release(): void {
    const waiting = this.waiting;
    this.waiting = undefined;
    waiting?.({ value: undefined, done: true });
  }
}
