import { DATA_HEADER_BYTES } from "./protocol/frame-codec";

/** The sequence number in a data frame's header. */
const frameSequence = (frame: Uint8Array): number => new DataView(frame.buffer, frame.byteOffset).getUint32(20);

/**
 * The sender's side of flow control: the data frames of one stream that are in flight (sent,
 * not yet acknowledged), at most `windowChunks` of them and `windowBytes` of payload.
 *
 * It holds the frames themselves, so a lost or corrupted chunk can be sent again without
 * re-reading the source; that is also the sender's whole memory. Acknowledgements come from the
 * receiver (end-to-end credit, {@link acknowledgeThrough}) or from the broker
 * ({@link release}, publisher confirms), whichever the sender was told to trust.
 */
export class AckWindow {
  private readonly frames = new Map<number, Uint8Array>();
  private payloadBytes = 0;
  private wake: (() => void) | undefined;
  private failure: unknown;
  private sent = 0;
  /** Every chunk below this sequence has been acknowledged. */
  acknowledged = 0;

  /**
   * @param onAcknowledged called with each frame the window lets go of once acknowledged, so the
   * sender can reuse its buffer.
   */
  constructor(
    private windowChunks: number,
    private readonly windowBytes: number,
    private readonly onAcknowledged: (frame: Uint8Array) => void = () => {},
  ) {}

  /** Whether `frame` is in flight. */
  holds(frame: Uint8Array): boolean {
    const sequence = frameSequence(frame);
    return this.frames.get(sequence) === frame;
  }

  /** Sets the most chunks in flight (a receiver's credit); frames already in flight stay. */
  limit(windowChunks: number): void {
    if (windowChunks === this.windowChunks) return;
    this.windowChunks = windowChunks;
    this.notify();
  }

  /** Chunks in flight. */
  get size(): number {
    return this.frames.size;
  }

  /** Payload bytes in flight. */
  get bytes(): number {
    return this.payloadBytes;
  }

  private get hasRoom(): boolean {
    return this.frames.size < this.windowChunks && this.payloadBytes < this.windowBytes;
  }

  /** Resolves once another chunk may be sent; rejects once {@link fail} was called. */
  async waitForRoom(): Promise<void> {
    while (!this.hasRoom) await this.changed();
    if (this.failure !== undefined) throw this.failure;
  }

  /** Resolves once nothing is in flight; rejects once {@link fail} was called. */
  async waitForEmpty(): Promise<void> {
    while (this.frames.size > 0) await this.changed();
    if (this.failure !== undefined) throw this.failure;
  }

  private changed(): Promise<void> {
    if (this.failure !== undefined) return Promise.reject(this.failure);
    return new Promise((resolve) => {
      this.wake = resolve;
    });
  }

  private notify(): void {
    const wake = this.wake;
    this.wake = undefined;
    wake?.();
  }

  /** Records a data frame as sent. */
  add(sequence: number, frame: Uint8Array): void {
    this.frames.set(sequence, frame);
    this.sent = Math.max(this.sent, sequence + 1);
    this.payloadBytes += frame.byteLength - DATA_HEADER_BYTES;
  }

  /** End-to-end credit: the receiver has everything below `nextSequence`. Returns whether that was news. */
  acknowledgeThrough(nextSequence: number): boolean {
    if (nextSequence <= this.acknowledged) return false;
    for (const sequence of this.frames.keys()) {
      if (sequence >= nextSequence) break;
      this.drop(sequence);
    }
    this.acknowledged = nextSequence;
    this.notify();
    return true;
  }

  /** Broker acknowledgement of one frame (a publisher confirm). */
  release(sequence: number): void {
    if (!this.frames.has(sequence)) return;
    this.drop(sequence);
    this.acknowledged = this.frames.keys().next().value ?? this.sent;
    this.notify();
  }

  private drop(sequence: number): void {
    const frame = this.frames.get(sequence);
    if (frame === undefined) return;
    this.frames.delete(sequence);
    this.payloadBytes -= frame.byteLength - DATA_HEADER_BYTES;
    this.onAcknowledged(frame);
  }

  /**
   * Lets go of every frame in flight and starts again at `sequence`: a receiver that took the
   * stream over asked for it from there, so what was in flight for the old one is of no use.
   */
  reset(sequence: number): void {
    for (const at of [...this.frames.keys()]) this.drop(at);
    this.acknowledged = sequence;
    this.sent = sequence;
    this.notify();
  }

  /** The frames in flight from `sequence` on, oldest first, to send again. */
  framesFrom(sequence: number): Uint8Array[] {
    const frames: Uint8Array[] = [];
    for (const [at, frame] of this.frames) if (at >= sequence) frames.push(frame);
    return frames;
  }

  /** Wakes every waiter with `error`; the window is dead. */
  fail(error: unknown): void {
    this.failure ??= error;
    this.frames.clear();
    this.payloadBytes = 0;
    this.notify();
  }
}
