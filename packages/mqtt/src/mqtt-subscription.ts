import type { FrameHandler } from "@stream/core";
import { FrameQueue } from "@stream/core/adapter-kit";

/**
 * One frame delivered by the broker, shared by every local subscriber of its topic. The broker
 * gets its PUBACK once all of them have handled it.
 */
export class Delivery {
  private remaining: number;
  private refused = false;

  constructor(
    readonly payload: Uint8Array,
    subscribers: number,
    private readonly acknowledge: (refused: boolean) => void,
  ) {
    this.remaining = subscribers;
    if (subscribers === 0) acknowledge(false);
  }

  settle(handled: boolean): void {
    if (!handled) this.refused = true;
    this.remaining -= 1;
    if (this.remaining === 0) this.acknowledge(this.refused);
  }
}

/** One `subscribe()` call: its handler, fed one frame at a time in broker order. */
export class LocalSubscriber {
  private readonly queue: FrameQueue<Delivery>;
  closed = false;

  constructor(handler: FrameHandler) {
    this.queue = new FrameQueue({ handle: (delivery) => handler(delivery.payload), onSettled: (delivery, handled) => delivery.settle(handled) });
  }

  enqueue(delivery: Delivery): void {
    if (this.closed) delivery.settle(true);
    else this.queue.push(delivery);
  }

  /**
   * Stops handing frames over. MQTT cannot give a frame back to the broker, so the frames
   * still queued are acknowledged and dropped; core asks its sender for them again.
   */
  stop(): void {
    this.closed = true;
    for (const delivery of this.queue.clear()) delivery.settle(true);
  }
}

export interface TopicEntry {
  readonly subscribers: Set<LocalSubscriber>;
  /** Resolves once the broker granted the subscription. */
  live: Promise<void>;
}

