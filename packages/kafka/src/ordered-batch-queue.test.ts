import { describe, expect, test } from "vitest";
import { OrderedBatchQueue, type QueuedMessage } from "./ordered-batch-queue";

const message = (n: number, bytes = 10): QueuedMessage => ({ key: "k", value: Buffer.alloc(bytes, n) });

describe("OrderedBatchQueue", () => {
  test("sends in call order, one request at a time, batching what queued meanwhile", async () => {
    const batches: number[][] = [];
    let inFlight = 0;
    let maxInFlight = 0;
    const queue = new OrderedBatchQueue(
      async (messages) => {
        inFlight++;
        maxInFlight = Math.max(maxInFlight, inFlight);
        batches.push(messages.map((m) => m.value[0]!));
        await new Promise((resolve) => setTimeout(resolve, 5));
        inFlight--;
      },
      35, // three 11-byte messages (10 value + 1 key) per batch
      (reason) => reason,
    );
    await Promise.all(Array.from({ length: 7 }, (_, n) => queue.push(message(n))));
    expect(batches.flat()).toEqual([0, 1, 2, 3, 4, 5, 6]);
    expect(batches.map((batch) => batch.length)).toEqual([3, 3, 1]);
    expect(maxInFlight).toBe(1);
  });

  test("a message larger than a batch goes alone", async () => {
    const sizes: number[] = [];
    const queue = new OrderedBatchQueue(async (messages) => void sizes.push(messages.length), 20, (r) => r);
    await Promise.all([queue.push(message(1, 100)), queue.push(message(2, 100))]);
    expect(sizes).toEqual([1, 1]);
  });

  test("a failed batch rejects its messages only; later ones still go", async () => {
    let call = 0;
    const queue = new OrderedBatchQueue(
      async () => {
        if (call++ === 0) throw new Error("broker down");
      },
      11,
      (r) => r,
    );
    const results = await Promise.allSettled([queue.push(message(1)), queue.push(message(2))]);
    expect(results.map((r) => r.status)).toEqual(["rejected", "fulfilled"]);
  });

  test("an aborted message never reaches the broker when it was still queued", async () => {
    const sent: number[] = [];
    const queue = new OrderedBatchQueue(async (messages) => void sent.push(...messages.map((m) => m.value[0]!)), 11, (reason) => reason);
    const controller = new AbortController();
    const first = queue.push(message(1));
    const second = queue.push(message(2), controller.signal);
    const refused = expect(second).rejects.toThrow("cancelled");
    controller.abort(new Error("cancelled"));
    await first;
    await refused;
    expect(sent).toEqual([1]);
  });

  test("close rejects what was not sent", async () => {
    let release: () => void = () => {};
    const queue = new OrderedBatchQueue(() => new Promise<void>((resolve) => (release = resolve)), 11, (r) => r);
    const first = queue.push(message(1));
    const second = queue.push(message(2));
    await new Promise((resolve) => setTimeout(resolve, 10));
    const closing = queue.close(new Error("closed"));
    release();
    await closing;
    await expect(first).resolves.toBeUndefined();
    await expect(second).rejects.toThrow("closed");
  });

  test("reports idle once everything queued has been sent", async () => {
    let idle = 0;
    const queue = new OrderedBatchQueue(async () => {}, 11, (r) => r, () => idle++);
    await Promise.all([queue.push(message(1)), queue.push(message(2))]);
    await new Promise((resolve) => setImmediate(resolve));
    expect(idle).toBe(1);
    expect(queue.size).toBe(0);
  });
});
