import { createHash, randomBytes } from "node:crypto";
import { afterEach, expect, test } from "vitest";
import { createStreamClient, type StreamClient, TransportError } from "@stream/core";
import { createTcpProxy, type TcpProxy } from "@stream/conformance";
import { createActivemqTransport } from "../src/index";
import { createFreezingProxy, type FreezingProxy } from "./support/freezing-proxy";
import { drainQueue } from "./support/stomp";

const BROKER_PORT = Number(process.env.STREAM_ACTIVEMQ_STOMP_PORT ?? 61613);
const MiB = 1024 * 1024;

let proxy: TcpProxy | undefined;
let frozen: FreezingProxy | undefined;
const clients: Array<{ close(): Promise<void> }> = [];

afterEach(async () => {
  await Promise.allSettled(clients.splice(0).map((client) => client.close()));
  await proxy?.close();
  await frozen?.close();
});

function clientThrough(port: number): StreamClient {
  const transport = createActivemqTransport({
    url: `stomp://127.0.0.1:${port}`,
    reconnectInitialDelayMs: 50,
    reconnectMaxDelayMs: 500,
  });
  // Core retries a publish that failed with a retryable error while the adapter reconnects.
  const client = createStreamClient({ transport, retry: { retries: 20, maxDelayMs: 1000 } });
  clients.push(client);
  return client;
}

test("a transfer survives its broker connections being cut twice, byte-exact", async () => {
  proxy = await createTcpProxy({ targetPort: BROKER_PORT });
  const destination = `amq-test.reconnect.${randomBytes(4).toString("hex")}`;
  const data = randomBytes(64 * MiB);
  const sender = clientThrough(proxy.port);
  const receiver = clientThrough(proxy.port).receive(destination);

  const received = (async () => {
    for await (const incoming of receiver) {
      const hash = createHash("sha256");
      for await (const chunk of incoming) hash.update(chunk as Buffer);
      const result = await incoming.result;
      return { sha256: hash.digest("hex"), result };
    }
    throw new Error("the receiver ended without a stream");
  })();

  const cuts: number[] = [];
  const sent = await sender.send(data, {
    destination,
    name: "reconnect.bin",
    onProgress({ bytesAcknowledged }) {
      // Cut every connection (sender's and receiver's) at about a quarter and at about 60 %.
      const due = [16 * MiB, 40 * MiB].filter((at, index) => bytesAcknowledged >= at && cuts.length === index);
      if (due.length > 0) {
        cuts.push(proxy!.connectionCount);
        proxy!.dropConnections();
      }
    },
  });
  const { sha256, result } = await received;

  expect(cuts).toHaveLength(2);
  expect(cuts.every((count) => count >= 2)).toBe(true); // both sides were connected and cut
  expect(sent.sha256).toBe(createHash("sha256").update(data).digest("hex"));
  expect(sha256).toBe(sent.sha256);
  expect(result.sha256).toBe(sent.sha256);
  expect(result.byteCount).toBe(data.byteLength);
  expect(proxy.connectionCount).toBeGreaterThanOrEqual(2); // the adapter connected again
});

test("a connection gone silent (half-open) is noticed by heart-beats and replaced", async () => {
  frozen = await createFreezingProxy(BROKER_PORT);
  const transport = createActivemqTransport({ url: `stomp://127.0.0.1:${frozen.port}`, heartbeatMs: 500, reconnectInitialDelayMs: 50 });
  clients.push(transport);
  const channel = `amq-test.silent.${randomBytes(4).toString("hex")}`;
  const received: string[] = [];
  await transport.subscribe(channel, (frame) => void received.push(Buffer.from(frame).toString()), { kind: "stream" });
  await transport.publish(channel, Buffer.from("before"), { key: "k", kind: "stream" });
  const states: string[] = [];
  transport.connection?.watch((state) => states.push(state));

  frozen.freeze();
  const startedAt = Date.now();
  const during = await transport.publish(channel, Buffer.from("during"), { key: "k", kind: "stream" }).catch((error: unknown) => error);
  const noticedMs = Date.now() - startedAt;
  expect(TransportError.isInstance(during) && during.retryable).toBe(true);
  expect(noticedMs).toBeLessThan(5_000);
  expect(transport.connection?.state).toBe("reconnecting");

  // A new connection (through the same proxy, which lets new ones flow) carries on, re-subscribed.
  await expect.poll(() => frozen!.accepted, { timeout: 5_000 }).toBeGreaterThanOrEqual(2);
  await expect.poll(() => transport.publish(channel, Buffer.from("after"), { key: "k", kind: "stream" }).then(() => true, () => false), { timeout: 5_000 }).toBe(true);
  await expect.poll(() => received, { timeout: 5_000 }).toContain("after");
  expect(received[0]).toBe("before");
  expect(states).toEqual(["reconnecting", "connected"]); // the adapter's own word, each change once
  await transport.close();
  await drainQueue(`/queue/${channel}`); // a publish whose receipt was lost may have landed after all
});
