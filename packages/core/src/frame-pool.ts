/**
 * The sender's frame buffers. A buffer is reused once acknowledged and no publish holds it any
 * more: a stream of any length allocates about one window of them, so memory stays flat instead
 * of waiting for a GC to free a gigabyte of spent chunks.
 */
export class FramePool {
  private readonly spare: Uint8Array[] = [];
  /** Frames a publish still holds, with how many publishes (a retransmission is a second one). */
  private readonly publishing = new Map<Uint8Array, number>();

  /** `frameBytes`: header and chunk; at most `maxSpare + 1` spare buffers are kept. */
  constructor(
    readonly frameBytes: number,
    private readonly maxSpare: number,
  ) {}

  /** A buffer for the next chunk: a spare one, or a new one. */
  take(): Uint8Array {
    return this.spare.pop() ?? Buffer.allocUnsafe(this.frameBytes);
  }

  /** Keeps `frame` for a later chunk; nothing may hold it any more. */
  recycle(frame: Uint8Array): void {
    if (frame.byteLength === this.frameBytes && this.spare.length <= this.maxSpare) this.spare.push(frame);
  }

  /** A publish of `frame` begins: it may not be reused until it settles. */
  hold(frame: Uint8Array): void {
    this.publishing.set(frame, (this.publishing.get(frame) ?? 0) + 1);
  }

  /** A publish of `frame` settled; returns whether no other publish holds it. */
  release(frame: Uint8Array): boolean {
    const count = (this.publishing.get(frame) ?? 1) - 1;
    if (count > 0) {
      this.publishing.set(frame, count);
      return false;
    }
    this.publishing.delete(frame);
    return true;
  }

  /** Whether a publish still holds `frame`. */
  isHeld(frame: Uint8Array): boolean {
    return this.publishing.has(frame);
  }
}
