import { describe, expect, test } from "vitest";
import { FrameQueue } from "./frame-queue";

const tick = () => new Promise((resolve) => setTimeout(resolve, 1));

describe("FrameQueue", () => {
  test("hands items over one at a time, in order, settling each before the next starts", async () => {
    const log: string[] = [];
    const release = new Map<number, () => void>();
    const queue = new FrameQueue<number>({
      handle: (n) => {
        log.push(`handle ${n}`);
        return new Promise<void>((resolve) => release.set(n, resolve));
      },
      onSettled: (n, handled) => void log.push(`settled ${n} ${handled}`),
    });
    queue.push(1);
    queue.push(2);
    queue.push(3);
    await tick();
    expect(log).toEqual(["handle 1"]);
    expect(queue.size).toBe(2);
    release.get(1)?.();
    await tick();
    expect(log).toEqual(["handle 1", "settled 1 true", "handle 2"]);
    release.get(2)?.();
    await tick();
    release.get(3)?.();
    await queue.idle();
    expect(log).toEqual(["handle 1", "settled 1 true", "handle 2", "settled 2 true", "handle 3", "settled 3 true"]);
  });

  test("a handler that rejects or throws settles as not handled; the queue goes on", async () => {
    const settled: Array<[string, boolean]> = [];
    const queue = new FrameQueue<string>({
      handle: (item) => {
        if (item === "throw") throw new Error("sync");
        if (item === "reject") return Promise.reject(new Error("async"));
      },
      onSettled: (item, handled) => void settled.push([item, handled]),
    });
    for (const item of ["ok", "throw", "reject", "after"]) queue.push(item);
    await queue.idle();
    expect(settled).toEqual([["ok", true], ["throw", false], ["reject", false], ["after", true]]);
  });

  test("awaits onSettled before the next item, and survives one that throws", async () => {
    const log: string[] = [];
    const queue = new FrameQueue<number>({
      handle: (n) => void log.push(`handle ${n}`),
      onSettled: async (n) => {
        await tick();
        log.push(`settled ${n}`);
        if (n === 1) throw new Error("channel closed");
      },
    });
    queue.push(1);
    queue.push(2);
    await queue.idle();
    expect(log).toEqual(["handle 1", "settled 1", "handle 2", "settled 2"]);
  });

  test("skips stale items, and clear() returns the waiting items it removes", async () => {
    const handled: number[] = [];
    let block: (() => void) | undefined;
    const queue = new FrameQueue<number>({
      handle: (n) => {
        handled.push(n);
        if (n === 0) return new Promise<void>((resolve) => (block = resolve));
      },
      onSettled: () => {},
      isStale: (n) => n === 3,
    });
    for (const n of [0, 1, 2, 3, 4, 5]) queue.push(n);
    await tick();
    expect(queue.clear((n) => n === 1 || n === 5)).toEqual([1, 5]);
    block?.();
    await queue.idle();
    expect(handled).toEqual([0, 2, 4]);
    queue.push(6);
    queue.push(7);
    expect(queue.clear()).toEqual([7]);
    await queue.idle();
    expect(handled).toEqual([0, 2, 4, 6]);
  });

  test("idle() resolves at once when nothing runs", async () => {
    const queue = new FrameQueue<number>({ handle: () => {}, onSettled: () => {} });
    await expect(queue.idle()).resolves.toBeUndefined();
  });
});
