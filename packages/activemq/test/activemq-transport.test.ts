import { randomBytes } from "node:crypto";
import { TransportError, type Transport } from "@stream/core";
import stompit from "stompit";
import { afterEach, describe, expect, test } from "vitest";
import { createActivemqTransport } from "../src/index";
import { connectStomp, drainQueue, sendPlain, takeMessages } from "./support/stomp";

// What the adapter itself promises about ActiveMQ, checked where it matters through a second
// door: the plain stompit client talking to the broker directly.

const URL = process.env.STREAM_ACTIVEMQ_URL ?? "stomp://127.0.0.1:61613";
const open: Array<{ close(): unknown }> = [];
const track = <T extends { close(): unknown }>(thing: T): T => {
  open.push(thing);
  return thing;
};
const transport = (options: Parameters<typeof createActivemqTransport>[0] = {}): Transport =>
  track(createActivemqTransport({ url: URL, ...options }));
const plain = async (): Promise<stompit.Client> => {
  const client = await connectStomp();
  open.push({ close: () => new Promise<void>((resolve) => client.disconnect(() => resolve())) });
  return client;
};
const channel = (prefix: string): string => `amq-test.${prefix}.${randomBytes(4).toString("hex")}`;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
async function until(condition: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error("timed out waiting");
    await sleep(10);
  }
}
/** A payload that is mostly NUL bytes, which would end an unframed STOMP body early. */
const nulPayload = (size: number, marker: number): Buffer => {
  const bytes = Buffer.alloc(size);
  if (size >= 4) bytes.writeUInt32BE(marker, size - 4);
  return bytes;
};

afterEach(async () => {
  await Promise.allSettled(open.splice(0).reverse().map((thing) => thing.close()));
});

describe("activemq transport: what reaches the broker", () => {
  test("declares the capabilities of ActiveMQ over STOMP", () => {
    expect(transport().capabilities).toEqual({
      maxFrameBytes: 104_857_600,
      ordering: "per-key",
      redelivery: true,
      retention: "until-consumed",
      exclusiveConsumer: true,
      brokerAcks: true,
      messageExpiry: true,
    });
  });

  test("a stream frame is a persistent binary message on /queue/<channel> once publish resolves", async () => {
    const name = channel("door");
    const frame = nulPayload(300_000, 0xdeadbeef);
    await transport().publish(name, frame, { key: "stream-a", kind: "stream" });
    // Read with the plain client only after the adapter closed: the broker kept it on disk.
    const [message] = await takeMessages(await plain(), `/queue/${name}`, 1);
    expect(message!.body.equals(frame)).toBe(true);
    expect(message!.headers.persistent).toBe("true");
    expect(message!.headers["content-length"]).toBe(300_000);
  });

  test("frames the plain client sends arrive through the adapter byte-exact, NUL bytes included", async () => {
    const name = channel("in");
    const received: Buffer[] = [];
    await transport().subscribe(name, (frame) => void received.push(Buffer.from(frame)), { kind: "stream" });
    const client = await plain();
    const bodies = [Buffer.alloc(0), nulPayload(1, 0), nulPayload(1024 * 1024, 7), randomBytes(65_537)];
    for (const body of bodies) await sendPlain(client, { destination: `/queue/${name}` }, body);
    await until(() => received.length === bodies.length);
    received.forEach((frame, index) => expect(frame.equals(bodies[index]!)).toBe(true));
  });

  // Order per key with many publishes in flight: the transport contract (test/conformance.test.ts).
  test("message groups keep every frame of one key on one consumer", async () => {
    const name = channel("groups");
    const seen = new Map<string, Set<string>>();
    for (const consumerName of ["A", "B"]) {
      await transport({ prefetchCount: 2 }).subscribe(
        name,
        async (frame) => {
          const key = Buffer.from(frame).toString("utf8").split(":")[0]!;
          seen.set(key, (seen.get(key) ?? new Set()).add(consumerName));
          await sleep(2);
        },
        { kind: "stream" },
      );
    }
    const producer = transport();
    const keys = ["k0", "k1", "k2", "k3", "k4", "k5"];
    await Promise.all(
      Array.from({ length: 120 }, (_, i) => {
        const key = keys[i % keys.length]!;
        return producer.publish(name, Buffer.from(`${key}:${i}`), { key, kind: "stream" });
      }),
    );
    await until(() => seen.size === keys.length);
    await sleep(300);
    for (const key of keys) expect(seen.get(key)?.size, `consumers of ${key}`).toBe(1);
    expect(new Set([...seen.values()].flatMap((set) => [...set])).size).toBe(2); // both consumers took groups
  });

  test("inbox frames go to every subscriber, through a topic", async () => {
    const name = channel("fanout");
    const a: Buffer[] = [];
    const b: Buffer[] = [];
    await transport().subscribe(name, (frame) => void a.push(Buffer.from(frame)), { kind: "inbox" });
    await transport().subscribe(name, (frame) => void b.push(Buffer.from(frame)), { kind: "inbox" });
    const client = await plain();
    const third = takeMessages(client, `/topic/${name}`, 1);
    await sleep(200); // the plain subscription has no receipt to wait for
    await transport().publish(name, nulPayload(64, 1), { key: "s", kind: "inbox" });
    await until(() => a.length === 1 && b.length === 1);
    expect((await third)[0]!.body.equals(nulPayload(64, 1))).toBe(true);
    expect(a[0]!.equals(b[0]!)).toBe(true);
  });
});

describe("activemq transport: acknowledgement and redelivery", () => {
  test("a frame whose handler rejects is delivered again, and the ones after it follow in order", async () => {
    const name = channel("reject");
    const handled: number[] = [];
    let failures = 0;
    await transport({ redeliveryDelayMs: 50 }).subscribe(
      name,
      (frame) => {
        const sequence = Buffer.from(frame).readUInt32BE(0);
        if (sequence === 3 && failures < 2) {
          failures += 1;
          throw new Error("not now");
        }
        handled.push(sequence);
      },
      { kind: "stream" },
    );
    const producer = transport();
    for (let i = 0; i < 8; i++) {
      const frame = Buffer.alloc(8);
      frame.writeUInt32BE(i, 0);
      await producer.publish(name, frame, { key: "k", kind: "stream" });
    }
    await until(() => handled.includes(7));
    expect(failures).toBe(2);
    expect(handled).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    // Nothing went to the dead-letter queue or stayed behind.
    const leftovers: Buffer[] = [];
    await transport().subscribe(name, (frame) => void leftovers.push(Buffer.from(frame)), { kind: "stream" });
    await sleep(300);
    expect(leftovers).toHaveLength(0);
  });

  test("frames not yet acknowledged when the subscription closes go back to the queue", async () => {
    const name = channel("close");
    const handled: string[] = [];
    // The first frame's handler never settles; the second waits behind it, prefetched.
    const subscription = await transport().subscribe(
      name,
      (frame) => {
        handled.push(Buffer.from(frame).toString());
        return new Promise<void>(() => {});
      },
      { kind: "stream" },
    );
    const producer = transport();
    await producer.publish(name, Buffer.from("first"), { key: "k", kind: "stream" });
    await producer.publish(name, Buffer.from("second"), { key: "k", kind: "stream" });
    await until(() => handled.length === 1);
    await subscription.close();
    const again = await takeMessages(await plain(), `/queue/${name}`, 2);
    expect(again.map((message) => message.body.toString())).toEqual(["first", "second"]);
    expect(again[0]!.headers.redelivered).toBe("true");
    expect(handled).toEqual(["first"]);
  });

  test("the handler gets frames one at a time, and at most prefetchCount wait unacknowledged", async () => {
    const name = channel("serial");
    let running = 0;
    let maxRunning = 0;
    let handled = 0;
    let release: () => void = () => {};
    let gate = new Promise<void>((resolve) => (release = resolve));
    await transport({ prefetchCount: 3 }).subscribe(
      name,
      async () => {
        running += 1;
        maxRunning = Math.max(maxRunning, running);
        await gate;
        running -= 1;
        handled += 1;
      },
      { kind: "stream" },
    );
    const producer = transport();
    await Promise.all(Array.from({ length: 10 }, (_, i) => producer.publish(name, Buffer.from([i]), { key: `k${i}`, kind: "stream" })));
    await sleep(300);
    // A second consumer gets what the first has not been sent: 10 - 3 prefetched.
    const second: Buffer[] = [];
    await transport().subscribe(name, (frame) => void second.push(Buffer.from(frame)), { kind: "stream" });
    await until(() => second.length === 7);
    release();
    gate = Promise.resolve();
    await until(() => handled === 3);
    expect(maxRunning).toBe(1);
  });
});

describe("activemq transport: errors and clients", () => {
  test("a frame over maxFrameBytes is refused before it is sent, not retryable", async () => {
    const error = await transport({ maxFrameBytes: 1024 }).publish(channel("big"), new Uint8Array(1025), { key: "k", kind: "stream" }).catch((e: unknown) => e);
    expect(TransportError.isInstance(error)).toBe(true);
    expect((error as TransportError).retryable).toBe(false);
    expect((error as Error).message).toMatch(/^\[stream\] \[activemq\] .*maxFrameBytes/);
  });

  test("an aborted publish rejects with the signal's reason", async () => {
    const producer = transport();
    const name = channel("abort");
    await producer.publish(name, Buffer.from("warm-up"), { key: "k", kind: "stream" });
    const controller = new AbortController();
    const reason = new Error("changed my mind");
    const publishing = producer.publish(name, Buffer.alloc(8 * 1024 * 1024), { key: "k", kind: "stream", signal: controller.signal });
    controller.abort(reason);
    await expect(publishing).rejects.toBe(reason);
    const already = producer.publish(name, Buffer.from("x"), { key: "k", kind: "stream", signal: AbortSignal.abort(reason) });
    await expect(already).rejects.toBe(reason);
    await producer.close();
    expect(await drainQueue(`/queue/${name}`)).toBeGreaterThanOrEqual(1); // the warm-up, and the aborted frame if it got out
  });

  test("a broker that is not there gives a retryable TransportError naming the cause", async () => {
    const error = await transport({ url: "stomp://127.0.0.1:1", connectTimeoutMs: 2000 })
      .publish(channel("down"), new Uint8Array(1), { key: "k", kind: "stream" })
      .catch((e: unknown) => e);
    expect(TransportError.isInstance(error)).toBe(true);
    expect((error as TransportError).retryable).toBe(true);
    expect((error as TransportError).cause).toBeInstanceOf(Error);
    expect((error as Error).message).toMatch(/^\[stream\] \[activemq\] could not connect/);
  });

  // An injected client left open: the transport contract (test/conformance.test.ts).
  test("a client factory's clients are closed", async () => {
    const name = channel("factory");
    let made: stompit.Client | undefined;
    let ended = false;
    const fromFactory = createActivemqTransport({
      client: async () => {
        made = await connectStomp();
        made.on("end", () => (ended = true));
        return made;
      },
    });
    await fromFactory.publish(name, Buffer.from("three"), { key: "k", kind: "stream" });
    await fromFactory.close();
    expect(ended).toBe(true);
    const bodies = (await takeMessages(await plain(), `/queue/${name}`, 1)).map((m) => m.body.toString());
    expect(bodies).toEqual(["three"]);
  });
});
