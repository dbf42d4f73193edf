import { describe, expect, test } from "vitest";
import { AckWindow } from "./ack-window";
import { DATA_HEADER_BYTES } from "./protocol/frame-codec";

const frame = (payloadBytes: number) => new Uint8Array(DATA_HEADER_BYTES + payloadBytes);

describe("AckWindow", () => {
  test("holds at most windowChunks frames: the next send waits for an acknowledgement", async () => {
    const window = new AckWindow(2, 1_000_000);
    await window.waitForRoom();
    window.add(0, frame(10));
    window.add(1, frame(10));
    let roomy = false;
    const waiting = window.waitForRoom().then(() => (roomy = true));
    await new Promise((resolve) => setTimeout(resolve, 10));
    expect(roomy).toBe(false);
    expect(window.acknowledgeThrough(1)).toBe(true);
    await waiting;
    expect(window.size).toBe(1);
    expect(window.acknowledged).toBe(1);
  });

  test("holds at most windowBytes of payload", async () => {
    const window = new AckWindow(100, 25);
    window.add(0, frame(20));
    window.add(1, frame(20));
    expect(window.bytes).toBe(40);
    let roomy = false;
    void window.waitForRoom().then(() => (roomy = true));
    await new Promise((resolve) => setTimeout(resolve, 10));
    expect(roomy).toBe(false);
    window.acknowledgeThrough(2);
    expect(window.bytes).toBe(0);
  });

  test("stale acknowledgements are not news; frames from a sequence can be sent again", () => {
    const window = new AckWindow(8, 1000);
    for (let i = 0; i < 4; i++) window.add(i, frame(1));
    expect(window.acknowledgeThrough(2)).toBe(true);
    expect(window.acknowledgeThrough(1)).toBe(false);
    expect(window.framesFrom(3)).toHaveLength(1);
    expect(window.framesFrom(0)).toHaveLength(2);
  });

  test("broker confirms release single frames, in any order", () => {
    const window = new AckWindow(8, 1000);
    for (let i = 0; i < 3; i++) window.add(i, frame(1));
    window.release(1);
    expect(window.acknowledged).toBe(0);
    window.release(0);
    expect(window.acknowledged).toBe(2);
    window.release(2);
    expect(window.acknowledged).toBe(3);
    expect(window.size).toBe(0);
  });

  test("a failure wakes waiters with the error and frees the frames", async () => {
    const window = new AckWindow(1, 1000);
    window.add(0, frame(1));
    const waiting = window.waitForRoom();
    window.fail(new Error("boom"));
    await expect(waiting).rejects.toThrow("boom");
    expect(window.size).toBe(0);
  });
});
