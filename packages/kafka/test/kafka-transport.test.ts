import { connect } from "node:net";
import { TransportError, type Transport } from "@stream/core";
import type { ISocketFactory } from "kafkajs";
import { afterEach, describe, expect, test } from "vitest";
import { createKafkaTransport } from "../src/index";
import { BROKERS, CLIENTS, freshChannel, plainKafka, readTopic, sleep, waitFor } from "./kafka-test-support";

const opened: Transport[] = [];
afterEach(async () => {
  await Promise.allSettled(opened.splice(0).map((t) => t.close()));
});

const frame = (text: string): Uint8Array => new TextEncoder().encode(text);
const text = (bytes: Uint8Array | Buffer | null): string => Buffer.from(bytes ?? []).toString();

describe.each(CLIENTS)("kafka transport on $name against the broker", (client) => {
  const transport = (options: Parameters<typeof createKafkaTransport>[0] = {}): Transport => {
    const created = createKafkaTransport(client.options(options));
    opened.push(created);
    return created;
  };

  test("declares what Kafka does", () => {
    expect(transport().capabilities).toEqual({
      maxFrameBytes: 1_000_000,
      ordering: "per-key",
      redelivery: true,
      retention: "log",
      exclusiveConsumer: true,
      brokerAcks: true,
      messageExpiry: false,
    });
  });

  test("publish resolves once the broker has the frames: keyed by stream id, one partition per key, in call order", async () => {
    const channel = freshChannel("publish");
    const t = transport();
    const keys = ["stream-a", "stream-b", "stream-c"];
    // Core publishes a window without awaiting each frame; call order per key must survive.
    await Promise.all(Array.from({ length: 60 }, (_, i) => t.publish(channel, frame(`${keys[i % 3]}:${i}`), { kind: "stream", key: keys[i % 3]! })));
    const records = await readTopic(channel, 60); // the second door: a plain kafkajs consumer
    expect(records).toHaveLength(60);
    const admin = plainKafka().admin();
    await admin.connect();
    const [metadata] = (await admin.fetchTopicMetadata({ topics: [channel] })).topics;
    await admin.disconnect();
    expect(metadata?.partitions).toHaveLength(4);
    for (const key of keys) {
      const ofKey = records.filter((record) => text(record.key) === key);
      expect(new Set(ofKey.map((record) => record.partition)).size).toBe(1);
      const sequence = ofKey.map((record) => Number(text(record.value).split(":")[1]));
      expect(sequence).toEqual([...sequence].sort((a, b) => a - b));
      expect(sequence).toHaveLength(20);
    }
  });

  test("frames reach the handler one at a time, in order; offsets are committed only once handled", async () => {
    const channel = freshChannel("deliver");
    const t = transport();
    const seen: string[] = [];
    let inHandler = 0;
    let overlapped = false;
    const subscription = await t.subscribe(
      channel,
      async (bytes) => {
        if (inHandler++ > 0) overlapped = true;
        await sleep(2);
        seen.push(text(bytes as Buffer));
        inHandler--;
      },
      { kind: "stream" },
    );
    const sent = Array.from({ length: 30 }, (_, i) => `f${i}`);
    await Promise.all(sent.map((f) => t.publish(channel, frame(f), { kind: "stream", key: "one-stream" })));
    await waitFor(() => seen.length === 30, 20_000, "30 frames");
    expect(seen).toEqual(sent);
    expect(overlapped).toBe(false);
    await subscription.close();
    const admin = plainKafka().admin();
    await admin.connect();
    const offsets = await admin.fetchOffsets({ groupId: `stream.${channel}`, topics: [channel] });
    await admin.disconnect();
    const committed = offsets[0]!.partitions.reduce((sum, p) => sum + Math.max(0, Number(p.offset)), 0);
    expect(committed).toBe(30);
  });

  test("a rejected frame is redelivered before anything after it, and an unhandled one goes to the next consumer", async () => {
    const channel = freshChannel("redeliver");
    const t = transport();
    const seen: string[] = [];
    let failures = 0;
    const first = await t.subscribe(
      channel,
      async (bytes) => {
        const value = text(bytes as Buffer);
        if (value === "f2" && failures++ === 0) throw new Error("not now");
        seen.push(value);
      },
      { kind: "stream" },
    );
    for (let i = 0; i < 5; i++) await t.publish(channel, frame(`f${i}`), { kind: "stream", key: "k" });
    await waitFor(() => seen.length === 5, 30_000, "5 frames after a redelivery");
    expect(seen).toEqual(["f0", "f1", "f2", "f3", "f4"]);
    expect(failures).toBe(2); // the rejection and the redelivery that succeeded

    // A consumer that dies with a frame in hand: the frame was never committed, so it comes back.
    await first.close();
    await t.publish(channel, frame("f5"), { kind: "stream", key: "k" });
    await t.publish(channel, frame("f6"), { kind: "stream", key: "k" });
    const stuck = transport();
    let took = false;
    const hung = await stuck.subscribe(channel, () => ((took = true), new Promise<void>(() => {})), { kind: "stream" });
    await waitFor(() => took, 20_000, "the frame to reach a consumer that never finishes");
    await hung.close();
    const again: string[] = [];
    const second = await transport().subscribe(channel, (bytes) => void again.push(text(bytes as Buffer)), { kind: "stream" });
    await waitFor(() => again.length >= 2, 20_000, "the unhandled frames to be redelivered");
    expect(again).toEqual(["f5", "f6"]);
    await second.close();
  });

  test("an inbox delivers every frame to every subscriber, also one published right after subscribe resolved, and is deleted on close", async () => {
    const channel = `${freshChannel("inbox")}.inbox.abcdef`;
    const a: string[] = [];
    const b: string[] = [];
    const subA = await transport().subscribe(channel, (bytes) => void a.push(text(bytes as Buffer)), { kind: "inbox" });
    const subB = await transport().subscribe(channel, (bytes) => void b.push(text(bytes as Buffer)), { kind: "inbox" });
    const publisher = transport();
    await publisher.publish(channel, frame("ack-1"), { kind: "inbox", key: "s1" });
    await publisher.publish(channel, frame("ack-2"), { kind: "inbox", key: "s2" });
    await waitFor(() => a.length === 2 && b.length === 2, 20_000, "both subscribers to see both frames");
    expect(a).toEqual(["ack-1", "ack-2"]);
    expect(b).toEqual(["ack-1", "ack-2"]);
    await subA.close();
    await subB.close();
    const admin = plainKafka().admin();
    await admin.connect();
    try {
      const deadline = Date.now() + 15_000;
      while ((await admin.listTopics()).includes(channel) && Date.now() < deadline) await sleep(200);
      expect(await admin.listTopics()).not.toContain(channel);
      // A late frame for the deleted inbox is dropped, and does not bring its topic back.
      await transport().publish(channel, frame("late"), { kind: "inbox", key: "s1" });
      expect(await admin.listTopics()).not.toContain(channel);
    } finally {
      await admin.disconnect();
    }
  });

  test("receivers of one destination compete: each stream goes, whole, to exactly one of them", async () => {
    const channel = freshChannel("compete");
    const byReceiver: Array<Map<string, number>> = [new Map(), new Map()];
    const record = (index: number) => (bytes: Uint8Array) => {
      const key = text(bytes as Buffer).split(":")[0]!;
      byReceiver[index]!.set(key, (byReceiver[index]!.get(key) ?? 0) + 1);
    };
    await transport().subscribe(channel, record(0), { kind: "stream" });
    await transport().subscribe(channel, record(1), { kind: "stream" });
    await sleep(1_500); // the first member rejoins after the second joined (a rebalance)
    const publisher = transport();
    const keys = Array.from({ length: 12 }, (_, i) => `stream-${i}`);
    await Promise.all(keys.flatMap((key) => [0, 1, 2].map((n) => publisher.publish(channel, frame(`${key}:${n}`), { kind: "stream", key }))));
    const total = () => [...byReceiver[0]!.values(), ...byReceiver[1]!.values()].reduce((a, b) => a + b, 0);
    await waitFor(() => total() >= 36, 30_000, "36 frames");
    await sleep(300);
    expect(total()).toBe(36);
    for (const key of keys) {
      const owners = byReceiver.filter((counts) => counts.has(key));
      expect(owners).toHaveLength(1);
      expect(owners[0]!.get(key)).toBe(3);
    }
    expect(byReceiver.every((counts) => counts.size > 0)).toBe(true); // 4 partitions, 12 keys: both get work
  });

  test("a new group reads what was published before any receiver (durable); with fromBeginning: false only what follows subscribe", async () => {
    const channel = freshChannel("durable");
    const publisher = transport();
    await publisher.publish(channel, frame("early"), { kind: "stream", key: "k" });
    const durable: string[] = [];
    await transport().subscribe(channel, (bytes) => void durable.push(text(bytes as Buffer)), { kind: "stream" });
    const fromEnd: string[] = [];
    await transport({ fromBeginning: false, groupId: (topic) => `stream.${topic}.tail` }).subscribe(
      channel,
      (bytes) => void fromEnd.push(text(bytes as Buffer)),
      { kind: "stream" },
    );
    await publisher.publish(channel, frame("late"), { kind: "stream", key: "k" }); // right after subscribe resolved
    await waitFor(() => durable.length === 2 && fromEnd.length === 1, 20_000, "both groups");
    expect(durable).toEqual(["early", "late"]);
    expect(fromEnd).toEqual(["late"]);
  });

  test("a frame over maxFrameBytes is refused for good; a closed transport refuses everything", async () => {
    const t = transport({ maxFrameBytes: 1024 });
    const tooBig = await t.publish(freshChannel("big"), new Uint8Array(1025), { kind: "stream", key: "k" }).catch((error: unknown) => error);
    expect(TransportError.isInstance(tooBig) && !tooBig.retryable).toBe(true);
    expect((tooBig as Error).message).toMatch(/^\[stream\] \[kafka\] .*maxFrameBytes/);
    await t.close();
    const afterClose = await t.publish(freshChannel("closed"), frame("x"), { kind: "stream", key: "k" }).catch((error: unknown) => error);
    expect(TransportError.isInstance(afterClose) && !afterClose.retryable).toBe(true);
    await expect(t.subscribe(freshChannel("closed"), () => {}, { kind: "stream" })).rejects.toThrow(/closed/);
  });
});

describe.each(CLIENTS)("kafka transport on $name: inboxes that come and go", (client) => {
  // kafkajs#1622: a kafkajs producer that once wrote to a topic since deleted fails every metadata
  // request, so it could write to no new topic: a receiver could not answer any later sender.
  test("after an inbox it wrote to was deleted, a frame still reaches a new inbox (at worst after one retryable failure)", async () => {
    const replier = createKafkaTransport(client.options());
    const first = createKafkaTransport(client.options());
    const second = createKafkaTransport(client.options());
    opened.push(replier, first, second);
    const got: string[] = [];
    const inboxA = freshChannel("inbox-a");
    const subscription = await first.subscribe(inboxA, (bytes) => void got.push(text(bytes)), { kind: "inbox" });
    await replier.publish(inboxA, frame("a"), { kind: "inbox", key: "s" });
    await waitFor(() => got.includes("a"), 20_000, "the frame on the first inbox");
    await subscription.close(); // deletes its topic (deleteInboxOnClose)
    const admin = plainKafka().admin();
    await admin.connect();
    try {
      for (let waitedMs = 0; (await admin.listTopics()).includes(inboxA); waitedMs += 200) {
        if (waitedMs > 20_000) throw new Error(`topic ${inboxA} still there`);
        await sleep(200);
      }
    } finally {
      await admin.disconnect();
    }
    const inboxB = freshChannel("inbox-b");
    await second.subscribe(inboxB, (bytes) => void got.push(text(bytes)), { kind: "inbox" });
    const failed = await replier.publish(inboxB, frame("b"), { kind: "inbox", key: "s" }).catch((error: unknown) => error);
    if (failed !== undefined) {
      expect(TransportError.isInstance(failed) && failed.retryable, String(failed)).toBe(true);
      await replier.publish(inboxB, frame("b"), { kind: "inbox", key: "s" });
    }
    await waitFor(() => got.includes("b"), 20_000, "the frame on the new inbox");
  }, 60_000);
});

describe("kafka transport on an injected kafkajs client", () => {
  test("an injected client factory is used, and stays usable after the transport closes", async () => {
    const kafka = plainKafka();
    let calls = 0;
    const t = createKafkaTransport({ kafkajs: async () => (calls++, kafka) });
    opened.push(t);
    const channel = freshChannel("injected");
    await t.publish(channel, frame("hello"), { kind: "stream", key: "k" });
    await t.close();
    expect(calls).toBe(1);
    const producer = kafka.producer();
    await producer.connect();
    await producer.send({ topic: channel, messages: [{ key: "k", value: "after" }] }); // same key, same partition: ordered after "hello"
    await producer.disconnect();
    expect((await readTopic(channel, 2)).map((r) => text(r.value))).toEqual(["hello", "after"]);
  });
});

describe("kafka transport on kafkajs settings", () => {
  test("kafkaConfig picks kafkajs, with a client the transport creates from brokers", async () => {
    let sockets = 0; // kafkajs' socketFactory: counted, the proof that kafkajs runs
    const socketFactory: ISocketFactory = ({ host, port, onConnect }) => (sockets++, connect({ host, port }, onConnect));
    const t = createKafkaTransport({ brokers: BROKERS, kafkaConfig: { clientId: "stream-config-test", logLevel: 0, socketFactory } });
    opened.push(t);
    const channel = freshChannel("config");
    await t.publish(channel, frame("hello"), { kind: "stream", key: "k" });
    const [record] = await readTopic(channel, 1);
    expect(text(record!.value)).toBe("hello");
    expect(sockets).toBeGreaterThan(0);
    await t.close();
  });
});

describe("kafka transport on either client", () => {
  test("maps a key to the same partition on both clients (Java's murmur2), also with 3 partitions", async () => {
    const channel = freshChannel("partitioner");
    const keys = Array.from({ length: 12 }, (_, i) => `stream-${i}`);
    for (const client of CLIENTS) {
      const t = createKafkaTransport(client.options({ numPartitions: 3 }));
      opened.push(t);
      await Promise.all(keys.map((key) => t.publish(channel, frame(`${client.label}:${key}`), { kind: "stream", key })));
    }
    const records = await readTopic(channel, 2 * keys.length);
    for (const key of keys) {
      expect(new Set(records.filter((record) => text(record.key) === key).map((record) => record.partition)).size).toBe(1);
    }
    expect(new Set(records.map((record) => record.partition)).size).toBeGreaterThan(1);
  });
});
