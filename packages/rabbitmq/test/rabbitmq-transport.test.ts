import { randomBytes } from "node:crypto";
import { TransportError, type Transport } from "@stream/core";
import { afterEach, describe, expect, test } from "vitest";
import { createRabbitmqTransport } from "../src/index";
import { RABBITMQ_URL, deleteQueues, freshName, inspectQueue, plainConnection, queuesStartingWith, waitFor } from "./helpers";

// What the adapter does on RabbitMQ itself, checked through a second door (plain amqplib).

const transports: Transport[] = [];
const queues: string[] = [];

function transport(options: Parameters<typeof createRabbitmqTransport>[0] = {}): Transport {
  const created = createRabbitmqTransport({ url: RABBITMQ_URL, ...options });
  transports.push(created);
  return created;
}

function destination(): string {
  const name = freshName("rmq");
  queues.push(name);
  return name;
}

afterEach(async () => {
  await Promise.allSettled(transports.splice(0).map((t) => t.close()));
  await deleteQueues(...queues.splice(0));
});

describe("rabbitmq transport on the broker", () => {
  test("a stream frame is a persistent message in a durable single-active-consumer queue", async () => {
    const channel = destination();
    const frame = randomBytes(1000);
    await transport().publish(channel, frame, { key: "stream-1", kind: "stream" });

    const connection = await plainConnection();
    try {
      const amqp = await connection.createChannel();
      const message = await amqp.get(channel, { noAck: true });
      expect(message).not.toBe(false);
      if (message === false) return;
      expect(Buffer.compare(message.content, frame)).toBe(0);
      expect(message.properties.deliveryMode).toBe(2);
      // Redeclaring with the adapter's arguments succeeds; without x-single-active-consumer it is refused.
      await amqp.assertQueue(channel, { durable: true, arguments: { "x-single-active-consumer": true } });
      amqp.on("error", () => {});
      const refused = await amqp.assertQueue(channel, { durable: true }).catch((error: { code?: number }) => error);
      expect((refused as { code?: number }).code).toBe(406);
    } finally {
      await connection.close();
    }
  });

  test("a frame with expiresAtMs carries it as its expiration, and RabbitMQ drops it from the queue once due", async () => {
    const [expiring, kept] = [destination(), destination()];
    const publisher = transport();
    await publisher.publish(expiring, randomBytes(100), { key: "stream-1", kind: "stream", expiresAtMs: Date.now() + 60_000 });
    for (let i = 0; i < 3; i++) await publisher.publish(expiring, randomBytes(100), { key: "stream-2", kind: "stream", expiresAtMs: Date.now() + 1000 });
    await publisher.publish(kept, randomBytes(100), { key: "stream-3", kind: "stream" });
    const connection = await plainConnection();
    try {
      const amqp = await connection.createChannel();
      const first = await amqp.get(expiring, { noAck: true });
      expect(first === false ? undefined : Number(first.properties.expiration)).toBeGreaterThan(55_000);
      expect((await inspectQueue(expiring))?.messageCount).toBe(3);
      await new Promise((resolve) => setTimeout(resolve, 1500));
      expect((await inspectQueue(expiring))?.messageCount).toBe(0);
      const plain = await amqp.get(kept, { noAck: true });
      expect(plain === false ? "gone" : plain.properties.expiration).toBeUndefined();
    } finally {
      await connection.close();
    }
  });

  test("frames published with the plain client arrive through the adapter in order, acked only after the handler", async () => {
    const channel = destination();
    const count = 300;
    const connection = await plainConnection();
    const amqp = await connection.createConfirmChannel();
    await amqp.assertQueue(channel, { durable: true, arguments: { "x-single-active-consumer": true } });
    for (let i = 0; i < count; i++) amqp.sendToQueue(channel, Buffer.from(`frame-${i}`));
    await amqp.waitForConfirms();
    await connection.close();

    const received: string[] = [];
    let inHandler = 0;
    let overlapped = false;
    const subscription = await transport({ prefetchCount: 8 }).subscribe(
      channel,
      async (frame) => {
        if (++inHandler > 1) overlapped = true;
        await new Promise((resolve) => setImmediate(resolve));
        received.push(Buffer.from(frame).toString());
        inHandler--;
      },
      { kind: "stream" },
    );
    await waitFor(() => received.length === count, 20_000, "all frames");
    expect(overlapped).toBe(false);
    expect(received).toEqual(Array.from({ length: count }, (_, i) => `frame-${i}`));
    await subscription.close();
    expect((await inspectQueue(channel))?.messageCount).toBe(0);
  });

  // A rejected frame's redelivery: the transport contract (test/conformance.test.ts).
  test("a frame whose handler never finished goes back on close", async () => {
    const channel = destination();
    await transport().publish(channel, Buffer.from("b"), { key: "k", kind: "stream" });
    let started = false;
    const hanging = await transport().subscribe(
      channel,
      () => {
        started = true;
        return new Promise<void>(() => {});
      },
      { kind: "stream" },
    );
    await waitFor(() => started, 10_000, "delivery");
    await hanging.close();
    expect((await inspectQueue(channel))?.messageCount).toBe(1);
  });

  test("a frame whose handler resolves as the subscription closes is acked, not redelivered", async () => {
    const channel = destination();
    await transport().publish(channel, Buffer.from("last"), { key: "k", kind: "stream" });
    let closing: Promise<void> | undefined;
    const subscription = await transport().subscribe(
      channel,
      () => {
        // What a receiver does on a stream's last frame: done, close.
        closing = subscription.close();
      },
      { kind: "stream" },
    );
    await waitFor(() => closing !== undefined, 10_000, "delivery");
    await closing;
    expect((await inspectQueue(channel))?.messageCount).toBe(0);
  });

  test("single active consumer: one subscriber takes the destination, the next takes over when it leaves", async () => {
    const channel = destination();
    const sender = transport();
    const a: string[] = [];
    const b: string[] = [];
    const first = await transport().subscribe(channel, (f) => void a.push(Buffer.from(f).toString()), { kind: "stream" });
    const second = await transport().subscribe(channel, (f) => void b.push(Buffer.from(f).toString()), { kind: "stream" });
    await Promise.all(Array.from({ length: 20 }, (_, i) => sender.publish(channel, Buffer.from(`x${i}`), { key: "k", kind: "stream" })));
    await waitFor(() => a.length === 20, 10_000, "first subscriber");
    expect(b).toEqual([]);
    await first.close();
    await Promise.all(Array.from({ length: 5 }, (_, i) => sender.publish(channel, Buffer.from(`y${i}`), { key: "k", kind: "stream" })));
    await waitFor(() => b.length === 5, 10_000, "second subscriber");
    expect(b).toEqual(["y0", "y1", "y2", "y3", "y4"]);
    await second.close();
  });

  test("an inbox delivers every frame to every subscriber, is removed when they close, and drops late frames", async () => {
    const inbox = `${freshName("rmq")}.inbox.${randomBytes(6).toString("hex")}`;
    const receiver = transport();
    const a: Uint8Array[] = [];
    const b: Uint8Array[] = [];
    const first = await receiver.subscribe(inbox, (f) => void a.push(f), { kind: "inbox" });
    const second = await transport().subscribe(inbox, (f) => void b.push(f), { kind: "inbox" });
    const senderErrors: Error[] = [];
    const sender = transport({ onError: (error) => senderErrors.push(error) });
    for (let i = 0; i < 10; i++) await sender.publish(inbox, Uint8Array.of(i), { key: "k", kind: "inbox" });
    await waitFor(() => a.length === 10 && b.length === 10, 10_000, "both inbox subscribers");
    expect(a.map((f) => f[0])).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    await first.close();
    await second.close();
    // Nothing is left behind: neither the subscribers' queues nor a queue of the inbox's name.
    expect(await queuesStartingWith(inbox)).toEqual([]);
    // A late frame for the inbox is dropped by the broker, not refused: the sender's channel lives on.
    await sender.publish(inbox, Uint8Array.of(10), { key: "k", kind: "inbox" });
    const other = destination();
    await Promise.all([sender.publish(inbox, Uint8Array.of(11), { key: "k", kind: "inbox" }), sender.publish(other, Uint8Array.of(1), { key: "k", kind: "stream" })]);
    expect((await inspectQueue(other))?.messageCount).toBe(1);
    // Nor does a connection's first frame for the inbox leave anything behind.
    await transport().publish(inbox, Uint8Array.of(12), { key: "k", kind: "inbox" });
    expect(await queuesStartingWith(inbox)).toEqual([]);
    expect(senderErrors).toEqual([]);
  });

  test("many 1 MiB frames in flight at once: all confirmed, in order, byte-exact", async () => {
    const channel = destination();
    const frames = Array.from({ length: 48 }, () => randomBytes(1024 * 1024));
    const sender = transport();
    const received: Buffer[] = [];
    const subscription = await transport().subscribe(channel, (f) => void received.push(Buffer.from(f)), { kind: "stream" });
    await Promise.all(frames.map((frame) => sender.publish(channel, frame, { key: "big", kind: "stream" })));
    await waitFor(() => received.length === frames.length, 30_000, "big frames");
    expect(received.every((frame, i) => frame.equals(frames[i] as Buffer))).toBe(true);
    await subscription.close();
  });

  // An injected connection left open: the transport contract (test/conformance.test.ts).
  test("a factory's connection is closed", async () => {
    const channel = destination();
    let made: Awaited<ReturnType<typeof plainConnection>> | undefined;
    let madeClosed = false;
    const withFactory = createRabbitmqTransport({
      connection: async () => {
        made = await plainConnection();
        made.on("close", () => {
          madeClosed = true;
        });
        return made;
      },
    });
    await withFactory.publish(channel, Buffer.from("2"), { key: "k", kind: "stream" });
    await withFactory.close();
    expect(made).toBeDefined();
    expect(madeClosed).toBe(true);
    expect((await inspectQueue(channel))?.messageCount).toBe(1);
  });

  test("a queue declared with other arguments is a non-retryable error that says what to do", async () => {
    const channel = destination();
    const connection = await plainConnection();
    const amqp = await connection.createChannel();
    await amqp.assertQueue(channel, { durable: true, arguments: { "x-max-length": 10 } });
    await connection.close();
    const error = await transport()
      .subscribe(channel, () => {}, { kind: "stream" })
      .catch((e: unknown) => e);
    expect(TransportError.isInstance(error)).toBe(true);
    expect((error as TransportError).retryable).toBe(false);
    expect((error as Error).message).toMatch(/^\[stream\] \[rabbitmq\] subscribing to .*inequivalent arg.*; the queue exists with other arguments/);
  });

  test("wrong credentials are a non-retryable TransportError", async () => {
    const url = new URL(RABBITMQ_URL);
    url.username = "guest";
    url.password = "not-the-password";
    const error = await transport({ url: url.toString() })
      .publish(destination(), Buffer.from("x"), { key: "k", kind: "stream" })
      .catch((e: unknown) => e);
    expect(TransportError.isInstance(error)).toBe(true);
    expect((error as TransportError).retryable).toBe(false);
    expect((error as Error).message).toMatch(/ACCESS.REFUSED.*; check the user, password/);
  });
});
