import { createHash, randomBytes } from "node:crypto";
import { describe, expect, test } from "vitest";
import { createStreamClient } from "./client";
import { BrokerUnreachableError } from "./errors/broker-unreachable-error";
import { StreamAbortedError } from "./errors/stream-aborted-error";
import { TransportError } from "./errors/transport-error";
import { createRetryingTransport } from "./retrying-transport";
import type { SendProgress } from "./sender";
import { createMemoryTransport, MemoryBroker } from "./testing/memory-transport";
import type { Transport } from "./transport";

/** A transport whose connection can be "down": publishes then reject retryable, as an adapter's do while it reconnects. */
function flaky(transport: Transport): Transport & { down: boolean; attempts: number } {
  const flakyTransport = {
    ...transport,
    down: false,
    attempts: 0,
    async publish(...args: Parameters<Transport["publish"]>) {
      flakyTransport.attempts += 1;
      if (flakyTransport.down) throw new TransportError({ message: "[stream] [memory] the connection dropped; try again" });
      return transport.publish(...args);
    },
  };
  return flakyTransport;
}

const frame = new Uint8Array([1, 2, 3]);
const publishOptions = { key: "k", kind: "stream" } as const;

describe("createRetryingTransport", () => {
  test("retries until the deadline since the outage's first failure, then says how long and which option", async () => {
    const inner = flaky(createMemoryTransport());
    inner.down = true;
    const retrying = createRetryingTransport(inner, { deadlineMs: 300, initialDelayMs: 10, maxDelayMs: 40 });
    const started = Date.now();
    const error = await retrying.publish("c", frame, publishOptions).catch((caught: unknown) => caught);
    const tookMs = Date.now() - started;
    expect(BrokerUnreachableError.isInstance(error)).toBe(true);
    expect(TransportError.isInstance(error)).toBe(true);
    expect(error).toMatchObject({ code: "STREAM_BROKER_UNREACHABLE", retryable: true });
    expect((error as BrokerUnreachableError).unreachableMs).toBeGreaterThanOrEqual(300);
    expect((error as Error).message).toMatch(/unreachable for 0\.\d s .*retry: \{ deadlineMs \}/);
    expect(tookMs).toBeGreaterThanOrEqual(290);
    expect(tookMs).toBeLessThan(1000);
    expect(inner.attempts).toBeGreaterThan(5); // more than the old 5 retries: the deadline decides
  });

  test("a cap on retries still holds when given", async () => {
    const inner = flaky(createMemoryTransport());
    inner.down = true;
    const retrying = createRetryingTransport(inner, { retries: 2, initialDelayMs: 1 });
    const error = await retrying.publish("c", frame, publishOptions).catch((caught: unknown) => caught);
    expect((error as Error).message).toMatch(/after 3 attempts \(retry.retries 2\)/);
    expect(inner.attempts).toBe(3);
  });

  test("reports reconnecting from the first failure until a publish goes through; a success ends the outage", async () => {
    const inner = flaky(createMemoryTransport());
    const retrying = createRetryingTransport(inner, { deadlineMs: 200, initialDelayMs: 5, maxDelayMs: 20 });
    const states: string[] = [];
    retrying.watch((state) => states.push(state));
    inner.down = true;
    const publishing = retrying.publish("c", frame, publishOptions);
    await new Promise((resolve) => setTimeout(resolve, 150));
    expect(retrying.state).toBe("reconnecting");
    inner.down = false;
    await publishing;
    expect(states).toEqual(["reconnecting", "connected"]);
    // A new outage gets a full deadline of its own.
    inner.down = true;
    const again = retrying.publish("c", frame, publishOptions);
    await new Promise((resolve) => setTimeout(resolve, 150));
    inner.down = false;
    await expect(again).resolves.toBeUndefined();
  });

  test("an aborted signal stops the wait at once", async () => {
    const inner = flaky(createMemoryTransport());
    inner.down = true;
    const retrying = createRetryingTransport(inner, { initialDelayMs: 60_000 });
    const controller = new AbortController();
    const publishing = retrying.publish("c", frame, { ...publishOptions, signal: controller.signal }).catch((caught: unknown) => caught);
    setTimeout(() => controller.abort(), 20);
    const started = Date.now();
    expect(TransportError.isInstance(await publishing)).toBe(true);
    expect(Date.now() - started).toBeLessThan(1000);
  });
});

describe("a send through an outage", () => {
  test("survives publishes failing for a while, and its progress says reconnecting meanwhile", async () => {
    const broker = new MemoryBroker();
    const inner = flaky(createMemoryTransport({ broker }));
    const sender = createStreamClient({ transport: inner, retry: { deadlineMs: 10_000, initialDelayMs: 10, maxDelayMs: 50 } });
    const receiver = createStreamClient({ transport: createMemoryTransport({ broker }) });
    const streams = receiver.receive("outage");
    await streams.ready;
    const data = randomBytes(64 * 64 * 1024);
    const receiving = (async () => {
      for await (const stream of streams) {
        const pieces: Buffer[] = [];
        for await (const piece of stream) pieces.push(piece as Buffer);
        return Buffer.concat(pieces);
      }
    })();
    const seen: SendProgress["connection"][] = [];
    let cut = false;
    const result = await sender.send(data, {
      destination: "outage",
      chunkBytes: 64 * 1024,
      windowChunks: 8,
      onProgress: (progress) => {
        if (seen.at(-1) !== progress.connection) seen.push(progress.connection);
        if (!cut && progress.bytesSent >= data.byteLength / 2) {
          cut = true;
          inner.down = true;
          setTimeout(() => (inner.down = false), 500);
        }
      },
    });
    expect(result.sha256).toBe(createHash("sha256").update(data).digest("hex"));
    expect((await receiving)?.equals(data)).toBe(true);
    expect(seen).toEqual(["connected", "reconnecting", "connected"]);
    await Promise.all([sender.close(), receiver.close()]);
  });

  test("the send's AbortSignal ends a send whose publishes are being retried; close() stops what is left", async () => {
    const broker = new MemoryBroker();
    const inner = flaky(createMemoryTransport({ broker }));
    const sender = createStreamClient({ transport: inner, retry: { initialDelayMs: 10, maxDelayMs: 20 } });
    const receiver = createStreamClient({ transport: createMemoryTransport({ broker }) });
    await receiver.receive("aborted").ready;
    inner.down = true;
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 200);
    const started = Date.now();
    const error = await sender.send(randomBytes(256 * 1024), { destination: "aborted", signal: controller.signal }).catch((caught: unknown) => caught);
    expect(StreamAbortedError.isInstance(error)).toBe(true);
    expect(Date.now() - started).toBeLessThan(1000);
    // Only the Abort that tells the receiver is still being retried, and close() stops that too.
    await Promise.all([sender.close(), receiver.close()]);
    const attempts = inner.attempts;
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(inner.attempts).toBe(attempts);
  });
});
