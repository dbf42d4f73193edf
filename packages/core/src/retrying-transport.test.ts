import { createHash, randomBytes } from "node:crypto";
import { describe, expect, test } from "vitest";
import { createStreamClient } from "./client";
import { BrokerUnreachableError } from "./errors/broker-unreachable-error";
import { StreamAbortedError } from "./errors/stream-aborted-error";
import { TransportError } from "./errors/transport-error";
import { ConnectionStatus } from "./adapter-kit/connection-status";
import { createRetryingTransport } from "./retrying-transport";
import type { SendOptions, SendProgress } from "./sender";
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

/**
 * A transport that says its connection state, as an adapter does (`Transport.connection`), and
 * holds publishes while "reconnecting" instead of failing them, as mqtt.js does.
 */
function announcing(transport: Transport): Transport & { readonly connection: ConnectionStatus; held: number } {
  const connection = new ConnectionStatus();
  const waiting: Array<() => void> = [];
  connection.watch((state) => {
    if (state === "connected") for (const release of waiting.splice(0)) release();
  });
  const announcingTransport = {
    ...transport,
    connection,
    held: 0,
    async publish(...args: Parameters<Transport["publish"]>) {
      if (connection.state === "reconnecting") {
        announcingTransport.held += 1;
        await new Promise<void>((resolve) => waiting.push(resolve));
      }
      return transport.publish(...args);
    },
  };
  return announcingTransport;
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
    retrying.connection.watch((state) => states.push(state));
    inner.down = true;
    const publishing = retrying.publish("c", frame, publishOptions);
    await new Promise((resolve) => setTimeout(resolve, 150));
    expect(retrying.connection.state).toBe("reconnecting");
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

  test("merges the adapter's state with failing publishes: reconnecting while either says so, each change heard once", async () => {
    const inner = announcing(createMemoryTransport());
    let failing = false;
    const both: Transport & { readonly connection: ConnectionStatus; held: number } = {
      ...inner,
      publish: async (...args) => {
        if (failing) throw new TransportError({ message: "[stream] [memory] the connection dropped; try again" });
        return inner.publish(...args);
      },
    };
    const retrying = createRetryingTransport(both, { deadlineMs: 10_000, initialDelayMs: 5, maxDelayMs: 10 });
    const states: string[] = [];
    retrying.connection.watch((state) => states.push(state));
    expect(retrying.connection.state).toBe("connected");

    // The adapter alone: no publish needs to fail.
    inner.connection.set("reconnecting");
    expect(retrying.connection.state).toBe("reconnecting");
    inner.connection.set("connected");
    expect(states).toEqual(["reconnecting", "connected"]);

    // Publishes fail, then the adapter says so too, then it is back but publishes still fail:
    // one outage, heard once, over until a publish goes through.
    failing = true;
    const publishing = retrying.publish("c", frame, publishOptions);
    await new Promise((resolve) => setTimeout(resolve, 30));
    inner.connection.set("reconnecting");
    inner.connection.set("connected");
    expect(retrying.connection.state).toBe("reconnecting");
    failing = false;
    await publishing;
    expect(retrying.connection.state).toBe("connected");
    expect(states).toEqual(["reconnecting", "connected", "reconnecting", "connected"]);
  });

  test("an outage the adapter announced counts toward the deadline from then, not from the first failed publish", async () => {
    const inner = flaky(createMemoryTransport());
    const connection = new ConnectionStatus();
    const retrying = createRetryingTransport(Object.assign(inner, { connection }), { deadlineMs: 300, initialDelayMs: 10, maxDelayMs: 40 });
    connection.set("reconnecting");
    await new Promise((resolve) => setTimeout(resolve, 200));
    inner.down = true;
    const started = Date.now();
    const error = await retrying.publish("c", frame, publishOptions).catch((caught: unknown) => caught);
    expect(BrokerUnreachableError.isInstance(error)).toBe(true);
    expect((error as BrokerUnreachableError).unreachableMs).toBeGreaterThanOrEqual(300);
    expect(Date.now() - started).toBeLessThan(250);
  });

  test("close() stops watching the adapter", async () => {
    const inner = announcing(createMemoryTransport());
    const retrying = createRetryingTransport(inner);
    const states: string[] = [];
    retrying.connection.watch((state) => states.push(state));
    await retrying.close();
    inner.connection.set("reconnecting");
    expect(states).toEqual([]);
    expect(retrying.connection.state).toBe("connected");
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

/**
 * Sends 4 MiB from a client on `transport` to one on the memory broker, calling `strike` once at
 * half the bytes sent; checks the bytes arrived whole and returns each change of the progress's
 * `connection`.
 */
async function sendThroughOutage(broker: MemoryBroker, transport: Transport, strike: () => void, sendOptions: Partial<SendOptions> = {}) {
  const sender = createStreamClient({ transport, retry: { deadlineMs: 10_000, initialDelayMs: 10, maxDelayMs: 50 } });
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
  let struck = false;
  const result = await sender.send(data, {
    destination: "outage",
    chunkBytes: 64 * 1024,
    windowChunks: 8,
    ...sendOptions,
    onProgress: (progress) => {
      if (seen.at(-1) !== progress.connection) seen.push(progress.connection);
      if (!struck && progress.bytesSent >= data.byteLength / 2) {
        struck = true;
        strike();
      }
    },
  });
  expect(result.sha256).toBe(createHash("sha256").update(data).digest("hex"));
  expect((await receiving)?.equals(data)).toBe(true);
  await Promise.all([sender.close(), receiver.close()]);
  return seen;
}

describe("a send through an outage", () => {
  test("survives publishes failing for a while, and its progress says reconnecting meanwhile", async () => {
    const broker = new MemoryBroker();
    const inner = flaky(createMemoryTransport({ broker }));
    const seen = await sendThroughOutage(broker, inner, () => {
      inner.down = true;
      setTimeout(() => (inner.down = false), 500);
    });
    expect(seen).toEqual(["connected", "reconnecting", "connected"]);
  });

  test("a send whose adapter holds its publishes through an outage reports reconnecting, then connected, on the adapter's word", async () => {
    const broker = new MemoryBroker();
    const inner = announcing(createMemoryTransport({ broker }));
    const seen = await sendThroughOutage(
      broker,
      inner,
      () => {
        inner.connection.set("reconnecting");
        setTimeout(() => inner.connection.set("connected"), 600);
      },
      // Far shorter than the outage: the watchdog must take "reconnecting" as expected silence.
      { idleTimeoutMs: 200 },
    );
    expect(inner.held).toBeGreaterThan(0); // no publish failed: only the adapter's word said it
    expect(seen).toEqual(["connected", "reconnecting", "connected"]);
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
