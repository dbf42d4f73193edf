/** One message waiting in an {@link OrderedBatchQueue}. */
export interface QueuedMessage {
  readonly key: string;
  readonly value: Buffer;
}

interface Entry extends QueuedMessage {
  readonly bytes: number;
  readonly resolve: () => void;
  readonly reject: (error: unknown) => void;
  /** Set once the entry's promise has settled (sent, failed, or its signal aborted). */
  done: boolean;
  /** Set once the entry has been handed to `send`; an abort then only stops the waiting. */
  sent: boolean;
  cleanup?: () => void;
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
    if (signal?.aborted) return Promise.reject(this.abortError(signal.reason));
    return new Promise<void>((resolve, reject) => {
      const entry: Entry = {
        ...message,
        bytes: message.value.byteLength + Buffer.byteLength(message.key),
        done: false,
        sent: false,
        resolve: () => {
          if (entry.done) return;
          entry.done = true;
          entry.cleanup?.();
          resolve();
        },
        reject: (error) => {
          if (entry.done) return;
          entry.done = true;
          entry.cleanup?.();
          reject(error);
        },
      };
      if (signal) {
        const onAbort = (): void => entry.reject(this.abortError(signal.reason));
        signal.addEventListener("abort", onAbort, { once: true });
        entry.cleanup = () => signal.removeEventListener("abort", onAbort);
      }
      this.entries.push(entry);
      if (!this.running) void this.run();
    });
  }

  /** Rejects every message not yet handed to the broker, then waits for the request in flight. */
  async close(error: unknown): Promise<void> {
    for (const entry of this.entries) if (!entry.sent) entry.reject(error);
    await this.idle;
  }

  private takeBatch(): Entry[] {
    const batch: Entry[] = [];
    let bytes = 0;
    while (this.entries.length > 0) {
      const next = this.entries[0]!;
      if (next.done) {
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
          for (const entry of batch) entry.resolve();
        } catch (error) {
          for (const entry of batch) entry.reject(error);
        }
      }
    } finally {
      this.running = false;
      this.markIdle();
      if (this.entries.length === 0) this.onIdle();
    }
  }
}
