import { randomBytes } from "node:crypto";
import { TransportError } from "@stream/core";
import { connect, connectAsync } from "mqtt";
import { describe, expect, test } from "vitest";
import { createMqttTransport } from "../src/index";
import { MQTT_URL, eventually, freshChannel, plainClient, sleep } from "./broker";

describe.each([5, 4] as const)("mqtt v%i through the broker, checked with a plain client", (protocolVersion) => {
  const transportOptions = { url: MQTT_URL, protocolVersion };

  test("published frames reach <topicPrefix><channel> byte-exact, in call order, at the chosen QoS", async () => {
    const channel = freshChannel("second-door");
    const transport = createMqttTransport({ ...transportOptions, topicPrefix: "it/", qos: 2 });
    const watcher = await plainClient({ protocolVersion });
    try {
      const seen: Array<{ topic: string; payload: Buffer; qos: number }> = [];
      watcher.on("message", (topic, payload, packet) => seen.push({ topic, payload, qos: packet.qos }));
      await watcher.subscribeAsync(`it/${channel}`, { qos: 2 });
      const frames = Array.from({ length: 50 }, (_, i) => randomBytes(1000 + i * 997));
      // Not awaited one by one: core keeps a window in flight.
      await Promise.all(frames.map((frame) => transport.publish(channel, frame, { key: "s1", kind: "stream" })));
      await eventually(() => seen.length === frames.length, 10_000, "all frames at the watcher");
      expect(seen.every((message) => message.topic === `it/${channel}` && message.qos === 2)).toBe(true);
      seen.forEach((message, i) => expect(message.payload.equals(frames[i] as Buffer), `frame ${i}`).toBe(true));
    } finally {
      await transport.close();
      await watcher.endAsync();
    }
  });

  test("a 1 MiB + 64 KiB frame (maxFrameBytes) goes through whole", async () => {
    const channel = freshChannel("max-frame");
    const transport = createMqttTransport(transportOptions);
    const frame = randomBytes(transport.capabilities.maxFrameBytes);
    try {
      const received: Uint8Array[] = [];
      await transport.subscribe(channel, (bytes) => void received.push(bytes), { kind: "stream" });
      await transport.publish(channel, frame, { key: "k", kind: "stream" });
      await eventually(() => received.length === 1, 10_000, "the large frame");
      expect(Buffer.from(received[0] as Uint8Array).equals(frame)).toBe(true);
    } finally {
      await transport.close();
    }
  });

  test("frames from a plain publisher reach the handler one at a time, in broker order", async () => {
    const channel = freshChannel("one-at-a-time");
    const transport = createMqttTransport(transportOptions);
    const publisher = await plainClient({ protocolVersion });
    try {
      const order: number[] = [];
      let active = 0;
      let overlapped = false;
      await transport.subscribe(
        channel,
        async (frame) => {
          active += 1;
          if (active > 1) overlapped = true;
          await sleep(Math.random() * 5);
          order.push(Number(Buffer.from(frame).toString()));
          active -= 1;
        },
        { kind: "stream" },
      );
      for (let i = 0; i < 100; i++) publisher.publish(`stream/${channel}`, String(i), { qos: 1 });
      await eventually(() => order.length === 100, 15_000, "100 frames handled");
      expect(overlapped).toBe(false);
      expect(order).toEqual(Array.from({ length: 100 }, (_, i) => i));
    } finally {
      await transport.close();
      await publisher.endAsync();
    }
  });

  test("a handler that throws does not stop the frames after it", async () => {
    const channel = freshChannel("refused");
    const transport = createMqttTransport(transportOptions);
    try {
      const handled: string[] = [];
      await transport.subscribe(
        channel,
        (frame) => {
          const text = Buffer.from(frame).toString();
          if (text === "bad") throw new Error("refused");
          handled.push(text);
        },
        { kind: "stream" },
      );
      for (const text of ["a", "bad", "b"]) await transport.publish(channel, Buffer.from(text), { key: "k", kind: "stream" });
      await eventually(() => handled.length === 2, 5000, "frames after the refused one");
      expect(handled).toEqual(["a", "b"]);
    } finally {
      await transport.close();
    }
  });

  test('retention is "none": a frame published before anyone subscribed never arrives', async () => {
    expect(createMqttTransport().capabilities.retention).toBe("none");
    const channel = freshChannel("retention");
    const publisher = createMqttTransport(transportOptions);
    const consumer = createMqttTransport(transportOptions);
    try {
      await publisher.publish(channel, Buffer.from("too early"), { key: "k", kind: "stream" });
      const received: string[] = [];
      await consumer.subscribe(channel, (frame) => void received.push(Buffer.from(frame).toString()), { kind: "stream" });
      await publisher.publish(channel, Buffer.from("in time"), { key: "k", kind: "stream" });
      await eventually(() => received.length > 0, 5000, "the second frame");
      await sleep(200);
      expect(received).toEqual(["in time"]);
    } finally {
      await Promise.all([publisher.close(), consumer.close()]);
    }
  });

  test("expiresAtMs: on MQTT 5 the broker drops a frame a disconnected session holds once due; 3.1.1 declares it cannot", async () => {
    const transport = createMqttTransport(transportOptions);
    expect(transport.capabilities.messageExpiry).toBe(protocolVersion === 5);
    if (protocolVersion !== 5) return void (await transport.close());
    const channel = freshChannel("expiry");
    const clientId = `expiry-${randomBytes(4).toString("hex")}`;
    const session = { protocolVersion, clientId, clean: false, properties: { sessionExpiryInterval: 60 } } as const;
    // A receiver's session that subscribed and went away: the broker queues frames for it.
    const away = await plainClient(session);
    await away.subscribeAsync(`stream/${channel}`, { qos: 1 });
    await away.endAsync();
    try {
      await transport.publish(channel, Buffer.from("expiring"), { key: "s1", kind: "stream", expiresAtMs: Date.now() + 1000 });
      await transport.publish(channel, Buffer.from("kept"), { key: "s2", kind: "stream" });
      await sleep(2500);
      const seen: Array<{ payload: string; expiry: number | undefined }> = [];
      // Listening before the CONNACK: the session's queued frames follow it at once.
      const back = connect(MQTT_URL, { ...session, reconnectPeriod: 0 });
      back.on("message", (_topic, payload, packet) => seen.push({ payload: payload.toString(), expiry: packet.properties?.messageExpiryInterval }));
      await eventually(() => seen.length > 0, 5000, "the kept frame");
      await sleep(300);
      await back.endAsync();
      expect(seen).toEqual([{ payload: "kept", expiry: undefined }]);
    } finally {
      await transport.close();
      const cleanup = await plainClient({ protocolVersion, clientId, clean: true });
      await cleanup.endAsync();
    }
  });

  test("every subscriber of an inbox gets every frame; a closed subscription gets nothing more", async () => {
    const channel = freshChannel("inbox");
    const transport = createMqttTransport(transportOptions);
    try {
      const first: string[] = [];
      const second: string[] = [];
      const a = await transport.subscribe(channel, (frame) => void first.push(Buffer.from(frame).toString()), { kind: "inbox" });
      await transport.subscribe(channel, (frame) => void second.push(Buffer.from(frame).toString()), { kind: "inbox" });
      await transport.publish(channel, Buffer.from("1"), { key: "k", kind: "inbox" });
      await eventually(() => first.length === 1 && second.length === 1, 5000, "both subscribers");
      await a.close();
      await transport.publish(channel, Buffer.from("2"), { key: "k", kind: "inbox" });
      await eventually(() => second.length === 2, 5000, "the remaining subscriber");
      expect(first).toEqual(["1"]);
      expect(second).toEqual(["1", "2"]);
    } finally {
      await transport.close();
    }
  });

  test("close() discards the broker session: reconnecting with its client id finds none", async () => {
    const clientId = `stream-test-${randomBytes(6).toString("hex")}`;
    const transport = createMqttTransport({ ...transportOptions, clientOptions: { clientId } });
    await transport.subscribe(freshChannel("session"), () => {}, { kind: "stream" });
    await transport.close();
    const probe = await connectAsync(MQTT_URL, {
      protocolVersion,
      clientId,
      clean: false,
      reconnectPeriod: 0,
      ...(protocolVersion === 5 ? { properties: { sessionExpiryInterval: 0 } } : {}),
    });
    try {
      expect(probe.connected).toBe(true);
      // connectAsync resolved on CONNACK; mqtt.js keeps it as connackPacket.
      expect((probe as unknown as { connackPacket: { sessionPresent: boolean } }).connackPacket.sessionPresent).toBe(false);
    } finally {
      await probe.endAsync();
      if (protocolVersion === 4) {
        // 3.1.1 has no expiry: clean up the session the probe itself left behind.
        await (await connectAsync(MQTT_URL, { protocolVersion: 4, clientId, clean: true, reconnectPeriod: 0 })).endAsync();
      }
    }
  });

  // An injected client left open: the transport contract (test/conformance.test.ts).
  test("a factory's client is ended by close()", async () => {
    const made = await plainClient({ protocolVersion });
    const viaFactory = createMqttTransport({ client: async () => made });
    await viaFactory.publish(freshChannel("factory"), Buffer.from("x"), { key: "k", kind: "stream" });
    await viaFactory.close();
    expect(made.connected).toBe(false);
  });
});

test("a connection the broker refuses fails with a TransportError that says so", async () => {
  // Mosquitto here lets anyone in, so send a CONNECT it must refuse: MQTT 3.1's protocol name
  // ("MQIsdp") with version 5.
  const transport = createMqttTransport({ url: MQTT_URL, clientOptions: { protocolId: "MQIsdp" as "MQTT" }, connectTimeoutMs: 3000 });
  const error = await transport.publish(freshChannel("refused"), Buffer.from("x"), { key: "k", kind: "stream" }).catch((e: unknown) => e);
  expect(TransportError.isInstance(error)).toBe(true);
  expect((error as Error).message).toMatch(/^\[stream\] \[mqtt\] (could not connect|no CONNACK)/);
  await transport.close();
});
