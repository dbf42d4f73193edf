import { describe, expect, test, vi } from "vitest";
import { PendingCall } from "./pending-call";
import { withTimeout } from "./timeout";

describe("PendingCall", () => {
  test("settles once; the clean-up runs once, as it settles", async () => {
    const call = new PendingCall<number>();
    const cleanup = vi.fn();
    call.onSettled(cleanup);
    expect(call.settled).toBe(false);
    call.resolve(1);
    call.reject(new Error("late"));
    call.resolve(2);
    expect(call.settled).toBe(true);
    expect(cleanup).toHaveBeenCalledTimes(1);
    await expect(call.promise).resolves.toBe(1);
    const late = vi.fn();
    call.onSettled(late);
    expect(late).toHaveBeenCalledTimes(1);
  });

  test("an abort rejects with the signal's reason; an aborted signal at once; no listener is left", async () => {
    const controller = new AbortController();
    const call = new PendingCall(controller.signal);
    controller.abort(new Error("cancelled"));
    await expect(call.promise).rejects.toThrow("cancelled");
    const early = new PendingCall(AbortSignal.abort(new Error("before")));
    expect(early.settled).toBe(true);
    await expect(early.promise).rejects.toThrow("before");
    const signal = new AbortController().signal;
    const remove = vi.spyOn(signal, "removeEventListener");
    const done = new PendingCall(signal);
    done.resolve();
    expect(remove).toHaveBeenCalledTimes(1);
  });

  test("onAbort decides what an abort does", async () => {
    const controller = new AbortController();
    const seen: unknown[] = [];
    const call = new PendingCall<void>(controller.signal, (reason, pending) => {
      seen.push(reason);
      pending.reject(new Error(`wrapped: ${String(reason)}`));
    });
    controller.abort("stop");
    expect(seen).toEqual(["stop"]);
    await expect(call.promise).rejects.toThrow("wrapped: stop");
    const early = new PendingCall<void>(AbortSignal.abort("before"), (reason, pending) => pending.reject(new Error(`wrapped: ${String(reason)}`)));
    await expect(early.promise).rejects.toThrow("wrapped: before");
  });
});

describe("withTimeout", () => {
  test("passes the promise's outcome through, or rejects once the time is up", async () => {
    await expect(withTimeout(Promise.resolve(7), 1000)).resolves.toBe(7);
    await expect(withTimeout(Promise.reject(new Error("no")), 1000)).rejects.toThrow("no");
    await expect(withTimeout(new Promise(() => {}), 5, () => new Error("no ack within 5 ms"))).rejects.toThrow("no ack within 5 ms");
    await expect(withTimeout(new Promise(() => {}), 5)).rejects.toThrow("timed out after 5 ms");
  });
});
