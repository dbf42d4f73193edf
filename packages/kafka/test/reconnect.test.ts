import { createHash, randomBytes } from "node:crypto";
import { createTcpProxy, type TcpProxy } from "@stream/conformance";
import { createStreamClient, TransportError, type Transport } from "@stream/core";
import { Kafka, logLevel } from "kafkajs";
import { afterEach, describe, expect, test } from "vitest";
import { createKafkaTransport } from "../src/index";
import { BROKERS, CLIENTS, type ClientUnderTest, freshChannel, routePlatformaticThroughProxy, throughProxy, waitFor } from "./kafka-test-support";

// Every connection of these transports, to the bootstrap broker and to the address the broker
// advertises, goes through a loopback TCP proxy; the tests drop or refuse them for real.
const [brokerHost = "127.0.0.1", brokerPort = "9092"] = BROKERS[0]!.split(":");

const cleanup: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const step of cleanup.splice(0).reverse()) await step().catch(() => {});
});

async function proxied(): Promise<{ proxy: () => TcpProxy; replace: () => Promise<void>; stop: () => Promise<void> }> {
  let proxy = await createTcpProxy({ targetPort: Number(brokerPort), targetHost: brokerHost });
  const port = proxy.port;
  cleanup.push(() => proxy.close());
  return {
    proxy: () => proxy,
    /** Stops the proxy: open connections drop and new ones are refused, as when the broker is unreachable. */
    stop: () => proxy.close(),
    /** Starts it again on the same port. */
    replace: async () => {
      proxy = await createTcpProxy({ targetPort: Number(brokerPort), targetHost: brokerHost, listenPort: port });
    },
  };
}

function transportThrough(client: ClientUnderTest, proxyPort: () => number, retries = 5): Transport {
  const brokers = [`${brokerHost}:${brokerPort}`];
  let transport: Transport;
  if (client.name === "kafkajs") {
    const kafkajs = new Kafka({
      brokers,
      clientId: "stream-reconnect-test",
      logLevel: logLevel.NOTHING,
      socketFactory: throughProxy(Number(brokerPort), proxyPort),
      retry: { retries, initialRetryTime: 100, maxRetryTime: 2_000 },
    });
    transport = createKafkaTransport({ kafkajs });
  } else {
    routePlatformaticThroughProxy(Number(brokerPort), proxyPort);
    transport = createKafkaTransport({ brokers, platformatic: { clientId: "stream-reconnect-test", retries, retryDelay: 200 } });
  }
  cleanup.push(() => transport.close());
  return transport;
}

const text = (bytes: Uint8Array): string => Buffer.from(bytes).toString();

describe.each(CLIENTS)("kafka transport on $name survives dropped connections", (client) => {
  // Frames published after every connection was dropped reach the re-subscribed subscription:
  // the transport contract (test/conformance.test.ts).
  test("during an outage publish rejects with a retryable TransportError; after it, publish and delivery resume", async () => {
    const broker = await proxied();
    const transport = transportThrough(client, () => broker.proxy().port, 2);
    const channel = freshChannel("outage");
    const seen: string[] = [];
    await transport.subscribe(channel, (bytes) => void seen.push(text(bytes)), { kind: "stream" });
    await transport.publish(channel, new TextEncoder().encode("one"), { kind: "stream", key: "k" });
    await waitFor(() => seen.length === 1, 20_000, "the first frame");

    await broker.stop();
    const error = await transport.publish(channel, new TextEncoder().encode("lost"), { kind: "stream", key: "k" }).catch((e: unknown) => e);
    expect(TransportError.isInstance(error)).toBe(true);
    expect((error as TransportError).retryable).toBe(true);
    expect((error as Error).message).toMatch(/^\[stream\] \[kafka\] publish .* failed: .*; check that Kafka is reachable/);
    expect((error as Error).cause).toBeDefined();

    await broker.replace();
    await transport.publish(channel, new TextEncoder().encode("two"), { kind: "stream", key: "k" });
    await waitFor(() => seen.includes("two"), 60_000, "delivery after the outage");
    expect(seen).not.toContain("lost");
  });

  test("a 48 MiB transfer completes byte-exact although every connection is dropped twice mid-transfer", async () => {
    const { proxy } = await proxied();
    const destination = freshChannel("transfer");
    const sender = createStreamClient({ transport: transportThrough(client, () => proxy().port) });
    const receiver = createStreamClient({ transport: transportThrough(client, () => proxy().port) });
    cleanup.push(() => sender.close(), () => receiver.close());
    const data = randomBytes(48 * 1024 * 1024);
    const expected = createHash("sha256").update(data).digest("hex");
    const streams = receiver.receive(destination);
    await streams.ready;
    // Drop every connection when the receiver holds a quarter, then half, of the bytes: frames are
    // in flight both ways then (data to the receiver, acks back to the sender).
    const drops: number[] = [];
    const dropAt = [data.length / 4, data.length / 2];
    const receiving = (async () => {
      for await (const incoming of streams) {
        const hash = createHash("sha256");
        let bytes = 0;
        for await (const piece of incoming) {
          hash.update(piece as Buffer);
          bytes += (piece as Buffer).byteLength;
          if (drops.length < dropAt.length && bytes >= dropAt[drops.length]!) {
            drops.push(bytes);
            proxy().dropConnections();
          }
        }
        return { sha256: hash.digest("hex"), result: await incoming.result };
      }
      throw new Error("no stream arrived");
    })();
    const sending = sender.send(data, { destination, name: "reconnect.bin" });
    const [sent, received] = await Promise.all([sending, receiving]);
    expect(drops).toHaveLength(2);
    expect(drops.every((at) => at < data.length)).toBe(true); // really mid-transfer
    expect(sent.sha256).toBe(expected);
    expect(received.sha256).toBe(expected);
    expect(received.result.sha256).toBe(expected);
    expect(received.result.byteCount).toBe(data.length);
  });
});
