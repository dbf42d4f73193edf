import { PendingCall } from "@stream/core/adapter-kit";

/** One message waiting in an {@link OrderedBatchQueue}. */
export interface QueuedMessage {
  readonly key: string;
  readonly value: Buffer;
}

interface Entry extends QueuedMessage {
  readonly bytes: number;
  /** Settles once: sent, failed, or its signal aborted. */
  readonly call: PendingCall;
  /** Set once the entry has been handed to `send`; an abort then only stops the waiting. */
  sent: boolean;
}

/**
 * Sends the messages of one channel in call order, one request at a time, each request carrying
 * every message queued meanwhile up to `maxBatchBytes`. One request in flight per channel is what
 * keeps call order even across kafkajs' internal retries; batching is what keeps throughput when
 * core publishes a window of frames without awaiting each.
 */
export class OrderedBatchQueue {
  private readonly entries: Entry[] = [];
  private running = false;
  private idle: Promise<void> = Promise.resolve();
  private markIdle: () => void = () => {};

  /**
   * @param send Sends one batch; resolves when the broker acknowledged all of it.
   * @param maxBatchBytes Most key and value bytes per batch (a larger single message goes alone).
   * @param abortError Makes the error an aborted publish rejects with.
   * @param onIdle Called when the last queued message has been sent and nothing is in flight.
   */
  constructor(
    private readonly send: (messages: readonly QueuedMessage[]) => Promise<void>,
    private readonly maxBatchBytes: number,
    private readonly abortError: (reason: unknown) => unknown,
    private readonly onIdle: () => void = () => {},
  ) {}

  /** Messages queued or in flight. */
  get size(): number {
    return this.entries.length;
  }

  /** Queues one message; resolves when its batch is acknowledged, rejects with the batch's error. */
  push(message: QueuedMessage, signal?: AbortSignal): Promise<void> {
    const call = new PendingCall(signal, (reason, pending) => pending.reject(this.abortError(reason)));
    if (call.settled) return call.promise;
    this.entries.push({ ...message, bytes: message.value.byteLength + Buffer.byteLength(message.key), call, sent: false });
    if (!this.running) void this.run();
    return call.promise;
  }

  /** Rejects every message not yet handed to the broker, then waits for the request in flight. */
  async close(error: unknown): Promise<void> {
    for (const entry of this.entries) if (!entry.sent) entry.call.reject(error);
    await this.idle;
  }

  private takeBatch(): Entry[] {
    const batch: Entry[] = [];
    let bytes = 0;
    while (this.entries.length > 0) {
      const next = this.entries[0]!;
      if (next.call.settled) {
        this.entries.shift(); // aborted before it was sent: never reaches the broker
        continue;
      }
      if (batch.length > 0 && bytes + next.bytes > this.maxBatchBytes) break;
      this.entries.shift();
      next.sent = true;
      batch.push(next);
      bytes += next.bytes;
    }
    return batch;
  }

  private async run(): Promise<void> {
    this.running = true;
    this.idle = new Promise((resolve) => (this.markIdle = resolve));
    try {
      // A macrotask turn lets the caller queue the rest of its window before the first request.
      await new Promise<void>((resolve) => setImmediate(resolve));
      for (let batch = this.takeBatch(); batch.length > 0; batch = this.takeBatch()) {
        try {
          await this.send(batch);
          for (const entry of batch) entry.call.resolve();
        } catch (error) {
          for (const entry of batch) entry.call.reject(error);
        }
      }
    } finally {
      this.running = false;
      this.markIdle();
      if (this.entries.length === 0) this.onIdle();
    }
  }
}
