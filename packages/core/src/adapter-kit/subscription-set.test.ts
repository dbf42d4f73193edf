import { describe, expect, test, vi } from "vitest";
import { SubscriptionSet } from "./subscription-set";

function subscription(set: SubscriptionSet<{ close(): Promise<void> }>) {
  const closing = { close: vi.fn(async () => set.delete(closing)) };
  return closing;
}

describe("SubscriptionSet", () => {
  test("closes a subscription when its signal aborts, and every open one on closeAll", async () => {
    const set = new SubscriptionSet<{ close(): Promise<void> }>();
    const controller = new AbortController();
    const a = set.add(subscription(set), controller.signal);
    const b = set.add(subscription(set));
    expect(set.size).toBe(2);
    controller.abort();
    expect(a.close).toHaveBeenCalledTimes(1);
    expect([...set]).toEqual([b]);
    await set.closeAll();
    expect(b.close).toHaveBeenCalledTimes(1);
    expect(set.size).toBe(0);
  });

  test("a signal already aborted closes at once; one that aborts after the subscription closed does nothing", () => {
    const set = new SubscriptionSet<{ close(): Promise<void> }>();
    const aborted = set.add(subscription(set), AbortSignal.abort());
    expect(aborted.close).toHaveBeenCalledTimes(1);
    const controller = new AbortController();
    const closed = set.add(subscription(set), controller.signal);
    void closed.close();
    controller.abort();
    expect(closed.close).toHaveBeenCalledTimes(1);
  });

  test("a subscription whose close rejects does not stop the others", async () => {
    const set = new SubscriptionSet<{ close(): Promise<void> }>();
    const failing = set.add({ close: vi.fn(async () => Promise.reject(new Error("gone"))) });
    const other = set.add(subscription(set));
    await set.closeAll();
    expect(failing.close).toHaveBeenCalled();
    expect(other.close).toHaveBeenCalled();
  });
});
