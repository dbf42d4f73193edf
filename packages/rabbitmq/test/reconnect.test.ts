import { createHash, randomBytes } from "node:crypto";
import { Readable } from "node:stream";
import { createTcpProxy, type TcpProxy } from "@stream/conformance";
import { createStreamClient, type StreamClient } from "@stream/core";
import { afterEach, describe, expect, test } from "vitest";
import { createRabbitmqTransport } from "../src/index";
import type { RabbitmqTransportOptions } from "../src/index";
import { RABBITMQ_URL, closeAllConnections, deleteQueues, freshName, inspectQueue, waitFor } from "./helpers";

// The connection really goes away mid-transfer (the broker closes it, or the network path is cut)
// and the transfer still completes byte-exact: the adapter reconnects and resubscribes, the
// client's retries (core's, on by default) republish what failed, the receiver drops duplicates.

const SIZE_BYTES = 48 * 1024 * 1024;
const CHUNK_BYTES = 256 * 1024;

const clients: StreamClient[] = [];
const queues: string[] = [];
let proxy: TcpProxy | undefined;

afterEach(async () => {
  await Promise.allSettled(clients.splice(0).map((client) => client.close()));
  await proxy?.close();
  proxy = undefined;
  await deleteQueues(...queues.splice(0));
});

function client(options: RabbitmqTransportOptions, onError: (error: Error) => void): StreamClient {
  const created = createStreamClient({ transport: createRabbitmqTransport({ ...options, onError }), retry: { retries: 10 } });
  clients.push(created);
  return created;
}

/**
 * Sends SIZE_BYTES of random data; calls `cut` once, when `cutAtBytes` have been acknowledged.
 * Records how far the transfer was when each side saw its connection drop.
 */
async function transferWithCut(options: RabbitmqTransportOptions, cutAtBytes: number, cut: () => Promise<void>) {
  const destination = freshName("reconnect");
  queues.push(destination);
  const data = randomBytes(SIZE_BYTES);
  const expected = createHash("sha256").update(data).digest("hex");
  const senderErrors: Error[] = [];
  const receiverErrors: Error[] = [];
  let acknowledged = 0;
  const dropsAt: number[] = [];
  const onError = (errors: Error[]) => (error: Error) => {
    errors.push(error);
    if (/dropped; reconnecting/.test(error.message)) dropsAt.push(acknowledged);
  };
  const sender = client(options, onError(senderErrors));
  const receiver = client(options, onError(receiverErrors));

  const streams = receiver.receive(destination);
  await streams.ready;
  const receiving = (async () => {
    for await (const incoming of streams) {
      const hash = createHash("sha256");
      let byteCount = 0;
      for await (const piece of incoming) {
        // A deliberately slow consumer (about 8 s for the whole transfer), so the cut lands
        // mid-transfer however long the broker's admin tool takes to act.
        await new Promise((resolve) => setTimeout(resolve, 40));
        hash.update(piece as Buffer);
        byteCount += (piece as Buffer).byteLength;
      }
      return { sha256: hash.digest("hex"), byteCount, result: await incoming.result };
    }
    throw new Error("the receiver closed before the stream arrived");
  })();

  let cutting: Promise<void> | undefined;
  const sent = await sender.send(Readable.from(chunks(data, 1024 * 1024)), {
    destination,
    name: "reconnect.bin",
    sizeBytes: SIZE_BYTES,
    chunkBytes: CHUNK_BYTES,
    onProgress: ({ bytesAcknowledged }) => {
      acknowledged = bytesAcknowledged;
      if (cutting === undefined && bytesAcknowledged >= cutAtBytes) cutting = cut();
    },
  });
  const received = await receiving;
  await cutting;
  return { expected, sent, received, senderErrors, receiverErrors, destination, dropsAt };
}

function* chunks(data: Buffer, size: number): Generator<Buffer> {
  for (let at = 0; at < data.byteLength; at += size) yield data.subarray(at, at + size);
}

describe("rabbitmq reconnect", () => {
  test("rabbitmqctl close_all_connections mid-transfer: the transfer completes byte-exact", async () => {
    const outcome = await transferWithCut({ url: RABBITMQ_URL }, 1, () => closeAllConnections("stream reconnect test"));
    expect(outcome.sent.sha256).toBe(outcome.expected);
    expect(outcome.received.sha256).toBe(outcome.expected);
    expect(outcome.received.byteCount).toBe(SIZE_BYTES);
    expect(outcome.received.result.sha256).toBe(outcome.expected);
    // The connections really dropped (the broker said so), on both sides.
    const dropped = (errors: Error[]) => errors.some((error) => /dropped; reconnecting.*CONNECTION.FORCED/.test(error.message));
    expect(dropped(outcome.senderErrors)).toBe(true);
    expect(dropped(outcome.receiverErrors)).toBe(true);
    // ... while the transfer was under way.
    expect(Math.max(...outcome.dropsAt)).toBeLessThan(SIZE_BYTES);
    console.log(`[rabbitmq reconnect] connections closed by the broker at ${outcome.dropsAt.map((b) => (b / 1024 / 1024).toFixed(1)).join(", ")} MiB acknowledged`);
    // Everything was consumed and acknowledged: nothing left behind in the queue.
    expect((await inspectQueue(outcome.destination))?.messageCount).toBe(0);
  });

  test("the network path is cut twice mid-transfer (TCP proxy): the transfer completes byte-exact", async () => {
    proxy = await createTcpProxy({ targetPort: Number(new URL(RABBITMQ_URL).port || 5672), targetHost: new URL(RABBITMQ_URL).hostname });
    const url = new URL(RABBITMQ_URL);
    url.port = String(proxy.port);
    const through = proxy;
    const outcome = await transferWithCut({ url: url.toString() }, SIZE_BYTES / 4, async () => {
      through.dropConnections();
      await waitFor(() => through.connectionCount >= 2, 10_000, "both clients to reconnect");
      await new Promise((resolve) => setTimeout(resolve, 300));
      through.dropConnections();
    });
    expect(outcome.sent.sha256).toBe(outcome.expected);
    expect(outcome.received.sha256).toBe(outcome.expected);
    expect(outcome.received.byteCount).toBe(SIZE_BYTES);
    const drops = (errors: Error[]) => errors.filter((error) => /dropped; reconnecting/.test(error.message)).length;
    expect(drops(outcome.senderErrors)).toBeGreaterThanOrEqual(2);
    expect(drops(outcome.receiverErrors)).toBeGreaterThanOrEqual(2);
    expect(Math.max(...outcome.dropsAt)).toBeLessThan(SIZE_BYTES);
    console.log(`[rabbitmq reconnect] proxy cut at ${outcome.dropsAt.map((b) => (b / 1024 / 1024).toFixed(1)).join(", ")} MiB acknowledged`);
  });

  test("the connection state says reconnecting, then connected, each once; a publish meanwhile rejects retryable", async () => {
    const channel = freshName("reconnect");
    queues.push(channel);
    const errors: Error[] = [];
    const transport = createRabbitmqTransport({ url: RABBITMQ_URL, reconnectInitialDelayMs: 500, onError: (e) => errors.push(e) });
    const received: string[] = [];
    const subscription = await transport.subscribe(channel, (frame) => void received.push(Buffer.from(frame).toString()), {
      kind: "stream",
    });
    await transport.publish(channel, Buffer.from("before"), { key: "k", kind: "stream" });
    await waitFor(() => received.length === 1, 10_000, "first frame");
    const states: string[] = [];
    transport.connection?.watch((state) => states.push(state));
    await closeAllConnections("stream reconnect test");
    await waitFor(() => errors.length > 0, 10_000, "the drop to be noticed");
    expect(transport.connection?.state).toBe("reconnecting");
    const during = await transport.publish(channel, Buffer.from("during"), { key: "k", kind: "stream" }).catch((error: unknown) => error);
    expect((during as { retryable?: boolean }).retryable).toBe(true);
    expect((during as Error).message).toMatch(/^\[stream\] \[rabbitmq\] .*; try again/);
    // Once reconnected, publish works again and the subscription, restarted by the adapter, gets the frame.
    let after: unknown;
    const deadline = Date.now() + 15_000;
    for (;;) {
      after = await transport.publish(channel, Buffer.from("after"), { key: "k", kind: "stream" }).then(() => undefined, (error: unknown) => error);
      if (after === undefined || Date.now() > deadline) break;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect(after).toBeUndefined();
    expect(states).toEqual(["reconnecting", "connected"]); // the adapter's own word, each change once
    await waitFor(() => received.includes("after"), 10_000, "the frame after the reconnect");
    await subscription.close();
    await transport.close();
  });
});
