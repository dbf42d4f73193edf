import { createHash, randomBytes } from "node:crypto";
import { createStreamClient, TransportError } from "@stream/core";
import { createTcpProxy, type TcpProxy } from "@stream/conformance";
import { afterEach, beforeEach, describe, expect, test } from "vitest";
import { createMqttTransport } from "../src/index";
import { MQTT_PORT, eventually, freshChannel, plainClient, sleep } from "./broker";

const sha256 = (bytes: Uint8Array): string => createHash("sha256").update(bytes).digest("hex");

let proxy: TcpProxy;
beforeEach(async () => {
  proxy = await createTcpProxy({ targetPort: MQTT_PORT });
});
afterEach(async () => {
  await proxy.close();
});

/** A transport whose every connection goes through the proxy, reconnecting quickly. */
const viaProxy = (protocolVersion: 4 | 5 = 5) =>
  createMqttTransport({ url: `mqtt://127.0.0.1:${proxy.port}`, protocolVersion, reconnectPeriodMs: 200 });

describe.each([5, 4] as const)("mqtt v%i: a dropped connection", (protocolVersion) => {
  test("mid-transfer, twice: the transfer completes byte-exact", async () => {
    const destination = freshChannel("reconnect");
    const sender = createStreamClient({ transport: viaProxy(protocolVersion) });
    const receiver = createStreamClient({ transport: viaProxy(protocolVersion) });
    try {
      const streams = receiver.receive(destination);
      await streams.ready;
      const data = randomBytes(24 * 1024 * 1024 + 17);
      let bytesAcknowledged = 0;
      const sent = sender.send(data, {
        destination,
        chunkBytes: 64 * 1024,
        onProgress: (progress) => void (bytesAcknowledged = progress.bytesAcknowledged),
      });
      const received = (async () => {
        for await (const stream of streams) {
          const hash = createHash("sha256");
          for await (const piece of stream) hash.update(piece as Buffer);
          return { digest: hash.digest("hex"), result: await stream.result };
        }
        throw new Error("no stream arrived");
      })();
      const drops: number[] = [];
      for (const fraction of [0.25, 0.6]) {
        // Cut when the receiver has acknowledged this much and both transports are connected
        // (after the first cut they must have come back by themselves).
        await eventually(() => bytesAcknowledged >= data.byteLength * fraction && proxy.connectionCount === 2, 60_000, `${fraction * 100}% acknowledged, both connected`);
        proxy.dropConnections();
        drops.push(bytesAcknowledged);
      }
      const [result, arrived] = await Promise.all([sent, received]);
      expect(drops[0]).toBeLessThan(data.byteLength);
      expect(drops[1]).toBeLessThan(data.byteLength); // both cuts landed mid-transfer
      expect(result.sha256).toBe(sha256(data));
      expect(arrived.digest).toBe(sha256(data));
      expect(arrived.result.byteCount).toBe(data.byteLength);
      // Both transports came back by themselves.
      expect(proxy.connectionCount).toBe(2);
    } finally {
      await Promise.allSettled([sender.close(), receiver.close()]);
    }
  });

  test("a frame whose handler had not finished comes back after the reconnect (PUBACK waits for the handler)", async () => {
    const channel = freshChannel("redelivery");
    const transport = viaProxy(protocolVersion);
    const publisher = await plainClient();
    try {
      const seen: string[] = [];
      let release: () => void = () => {};
      const held = new Promise<void>((resolve) => (release = resolve));
      await transport.subscribe(
        channel,
        async (frame) => {
          const text = Buffer.from(frame).toString();
          seen.push(text);
          if (seen.length === 1) await held; // the first delivery stays unacknowledged
        },
        { kind: "stream" },
      );
      await publisher.publishAsync(`stream/${channel}`, "frame-1", { qos: 1 });
      await eventually(() => seen.length === 1, 5000, "first delivery");
      proxy.dropConnections();
      release();
      // The resumed session redelivers the unacknowledged frame.
      await eventually(() => seen.length >= 2, 10_000, "redelivery");
      expect(seen.slice(0, 2)).toEqual(["frame-1", "frame-1"]);
      // And it is acknowledged this time: nothing more comes.
      await sleep(500);
      expect(seen).toHaveLength(2);
    } finally {
      await transport.close();
      await publisher.endAsync();
    }
  });

  test("subscriptions survive, and a publish made during the outage resolves once reconnected", async () => {
    const channel = freshChannel("outage");
    const transport = viaProxy(protocolVersion);
    const watcher = await plainClient();
    try {
      const viaWatcher: string[] = [];
      watcher.on("message", (_topic, payload) => viaWatcher.push(payload.toString()));
      await watcher.subscribeAsync(`stream/${channel}`, { qos: 1 });
      const viaTransport: string[] = [];
      await transport.subscribe(channel, (frame) => void viaTransport.push(Buffer.from(frame).toString()), { kind: "inbox" });
      await transport.publish(channel, Buffer.from("before"), { key: "k", kind: "inbox" });
      const states: string[] = [];
      transport.connection?.watch((state) => states.push(state));
      proxy.dropConnections();
      await sleep(50);
      expect(proxy.connectionCount).toBe(0); // reconnecting: the publish waits for the connection
      expect(transport.connection?.state).toBe("reconnecting"); // though no publish has failed
      await transport.publish(channel, Buffer.from("during"), { key: "k", kind: "inbox" });
      expect(proxy.connectionCount).toBe(1);
      expect(states).toEqual(["reconnecting", "connected"]); // the adapter's own word, each change once
      await transport.publish(channel, Buffer.from("after"), { key: "k", kind: "inbox" });
      await eventually(() => viaTransport.includes("after") && viaWatcher.includes("after"), 10_000, "after");
      expect(viaWatcher).toEqual(["before", "during", "after"]);
      expect(viaTransport).toEqual(["before", "during", "after"]);
    } finally {
      await transport.close();
      await watcher.endAsync();
    }
  });
});

test("a publish that cannot reach the broker in ackTimeoutMs rejects with a retryable TransportError", async () => {
  const transport = createMqttTransport({ url: `mqtt://127.0.0.1:${proxy.port}`, reconnectPeriodMs: 200, ackTimeoutMs: 1500 });
  try {
    await transport.publish(freshChannel("timeout"), Buffer.from("x"), { key: "k", kind: "stream" });
    await proxy.close(); // the broker is now unreachable
    const error = await transport.publish(freshChannel("timeout"), Buffer.from("y"), { key: "k", kind: "stream" }).catch((e: unknown) => e);
    expect(TransportError.isInstance(error)).toBe(true);
    expect((error as TransportError).retryable).toBe(true);
    expect((error as Error).message).toMatch(/^\[stream\] \[mqtt\] no acknowledgement for a publish .* \(reconnecting[^;]*\); retry/);
  } finally {
    await transport.close();
    proxy = await createTcpProxy({ targetPort: MQTT_PORT });
  }
});
