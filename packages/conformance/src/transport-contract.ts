import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { TransportError, type FrameHandler, type Subscription, type Transport } from "@stream/core";
import { createTcpProxy, type TcpProxy } from "./tcp-proxy";

/**
 * What a contract test gets from the runner: vitest's test context has `skip(note)`, which marks
 * the test skipped with the reason. A runner without it runs the test, which then returns early
 * after printing the reason.
 */
export interface ContractTestContext {
  readonly skip?: (note?: string) => void;
}

/** The test-runner functions the contract group registers its tests with (vitest's, node:test's). */
export interface ContractTestApi {
  readonly describe: (name: string, body: () => void) => void;
  readonly test: (name: string, body: (context: ContractTestContext) => Promise<void>, timeoutMs?: number) => void;
}

/** The tests of {@link runTransportContract}, to skip what an adapter cannot be asked. */
export type TransportContractTest = "ordering" | "one-at-a-time" | "redelivery" | "broker-acks" | "inbox" | "channel-names" | "reconnect" | "injected-client";

/**
 * How the `injected-client` test makes, checks and disposes of a client of the adapter's own
 * broker library (an amqplib connection, a stompit client, an mqtt.js client, a kafkajs `Kafka`).
 */
export interface InjectedClientHooks<Client> {
  /** A ready client, as an application would have one. */
  make(): Promise<Client>;
  /** A transport given `client` (the adapter's `connection`/`client`/`kafkajs` option). */
  createTransport(client: Client): Transport | Promise<Transport>;
  /**
   * Whether `client` still works, asked after the transport closed. `channel` is where the
   * transport published one frame (`kind: "stream"`) before closing: reading it back through
   * `client` proves both (where the broker keeps frames); else send something, or ask the client.
   */
  isOpen(client: Client, channel: string): Promise<boolean>;
  /** Closes `client` at the end of the test. */
  closeClient(client: Client): Promise<void>;
}

/** Options of {@link runTransportContract}. */
export interface TransportContractOptions<Client = unknown> extends ContractTestApi {
  /** The adapter's name, in test titles and channel names (`[A-Za-z0-9._-]`). */
  readonly name: string;
  /**
   * Returns a fresh transport; the tests close it. With `port`, every connection goes to
   * 127.0.0.1:`port` (the `reconnect` test's proxy) instead of the broker's port: the shape of
   * the fault harness's `createTransport({ port })`.
   */
  readonly createTransport: (options?: { readonly port?: number }) => Transport | Promise<Transport>;
  /** Where the `reconnect` test's proxy forwards to; without it, that test is skipped. */
  readonly brokerPort?: number;
  /** @default "127.0.0.1" */
  readonly brokerHost?: string;
  /** The adapter's injected-client option; without it, the `injected-client` test is skipped. */
  readonly injected?: InjectedClientHooks<Client>;
  /** Tests to skip, each with its reason (shown as the skip note). */
  readonly skip?: Partial<Record<TransportContractTest, string>>;
  /** Per-test timeout. @default 60000 */
  readonly timeoutMs?: number;
  /** How long the `reconnect` test's proxy refuses connections. @default 1000 */
  readonly outageMs?: number;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const encode = (text: string): Uint8Array => new TextEncoder().encode(text);
const decode = (frame: Uint8Array): string => Buffer.from(frame.buffer, frame.byteOffset, frame.byteLength).toString("utf8");

/** Resolves once `condition()` holds, polling; rejects after `timeoutMs`. */
async function waitFor(condition: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(20);
  }
}

/** A frame `<label>:<n>:` padded to `bytes` with filler, so frames of several sizes are in flight. */
function numbered(label: string, n: number, bytes = 0): Uint8Array {
  const head = `${label}:${n}:`;
  return encode(head.padEnd(Math.max(bytes, head.length), "."));
}
const labelOf = (frame: Uint8Array): string => decode(frame).split(":", 2).join(":");

/** Every transport and subscription a test opens, closed after it whatever happens. */
class Opened {
  private readonly closers: Array<() => Promise<unknown>> = [];
  add<T extends Transport | Subscription | TcpProxy>(thing: T): T {
    this.closers.push(() => thing.close());
    return thing;
  }
  async closeAll(): Promise<void> {
    await Promise.allSettled(this.closers.splice(0).reverse().map((close) => close()));
  }
}

/**
 * Registers the transport contract: what `packages/core/src/transport.ts` promises, tested on the
 * {@link Transport} itself (raw frames, no `StreamClient`): ordering per key with many publishes
 * in flight, one handler call at a time, redelivery after a rejecting handler, publish resolving
 * after the broker's ack, inbox channels, channel names, a subscription surviving a cut
 * connection, and an injected client left open. Tests that ask for a capability the transport
 * declares it does not have are skipped with that reason.
 *
 * @example
 * runTransportContract({ describe, test, name: "rabbitmq", brokerPort: 5672, createTransport: ({ port } = {}) => createRabbitmqTransport({ url: `amqp://127.0.0.1:${port ?? 5672}` }) });
 */
export function runTransportContract<Client>(options: TransportContractOptions<Client>): void {
  const { describe, name } = options;
  const timeoutMs = options.timeoutMs ?? 60_000;
  const deliveryMs = Math.min(timeoutMs / 2, 20_000);
  const channel = (label: string): string => `conformance.${name}.contract-${label}.${randomUUID().slice(0, 8)}`;

  /** A test with fresh transports, closed after it; `reason` (when not undefined) skips it. */
  const contractTest = (
    key: TransportContractTest,
    title: string,
    body: (world: { open: () => Promise<Transport>; opened: Opened; skip: (reason: string) => boolean; context: ContractTestContext }) => Promise<void>,
  ): void => {
    options.test(
      title,
      async (context) => {
        const skip = (reason: string): boolean => {
          if (context?.skip) context.skip(reason); // vitest: throws, the test is marked skipped
          console.log(`[${name} transport contract] ${title}: skipped, ${reason}`);
          return true;
        };
        const configured = options.skip?.[key];
        if (configured !== undefined && skip(configured)) return;
        const opened = new Opened();
        try {
          await body({ open: async () => opened.add(await options.createTransport()), opened, skip, context });
        } finally {
          await opened.closeAll();
        }
      },
      timeoutMs,
    );
  };

  /** Subscribes `transport` to `on`, recording each frame's text. */
  const recording = async (transport: Transport, on: string, kind: "stream" | "inbox", handler?: FrameHandler) => {
    const received: string[] = [];
    const subscription = await transport.subscribe(
      on,
      async (frame) => {
        await handler?.(frame);
        received.push(labelOf(frame));
      },
      { kind },
    );
    return { received, subscription };
  };

  describe(`@stream transport contract: ${name}`, () => {
    contractTest("ordering", "frames of one key, published many at once, arrive in publish order for each of several interleaved keys", async ({ open }) => {
      const on = channel("order");
      const consumer = await open();
      const { received } = await recording(consumer, on, "stream");
      const producer = await open();
      const keys = ["k0", "k1", "k2", "k3"];
      const perKey = 40;
      const sent: string[] = [];
      const publishing: Array<Promise<void>> = [];
      // Interleaved and not awaited one by one, the way core keeps a window in flight.
      for (let n = 0; n < perKey; n++) {
        for (const key of keys) {
          sent.push(`${key}:${n}`);
          publishing.push(producer.publish(on, numbered(key, n, 64 + ((n * 997) % 8192)), { key, kind: "stream" }));
        }
      }
      await Promise.all(publishing);
      await waitFor(() => received.length >= sent.length, deliveryMs, `${sent.length} frames`);
      await sleep(200); // nothing more (a duplicate) comes
      if (consumer.capabilities.ordering === "per-key") {
        for (const key of keys) {
          const ofKey = received.filter((label) => label.startsWith(`${key}:`));
          assert.deepEqual(ofKey, sent.filter((label) => label.startsWith(`${key}:`)), `frames of ${key} in publish order`);
        }
      } else {
        assert.deepEqual([...received].sort(), [...sent].sort(), "every frame arrives once (ordering: none)");
      }
    });

    contractTest("one-at-a-time", "the handler is not called again before its previous promise settled", async ({ open }) => {
      const on = channel("serial");
      let running = 0;
      let mostRunning = 0;
      const { received } = await recording(await open(), on, "stream", async () => {
        mostRunning = Math.max(mostRunning, ++running);
        await sleep(5); // a slow handler: the next frames are already at the adapter
        running--;
      });
      const producer = await open();
      await Promise.all(Array.from({ length: 30 }, (_, n) => producer.publish(on, numbered(`k${n % 3}`, n), { key: `k${n % 3}`, kind: "stream" })));
      await waitFor(() => received.length >= 30, deliveryMs, "30 frames handled");
      assert.equal(mostRunning, 1, "handler calls at once");
    });

    contractTest("redelivery", "a rejected frame is delivered again and nothing is lost; a handled frame is not given again after a re-subscribe", async ({ open, opened, skip }) => {
      const consumer = await open();
      if (!consumer.capabilities.redelivery && skip(`${consumer.name} declares capabilities.redelivery: false`)) return;
      const on = channel("redeliver");
      const handled = new Set<string>();
      let rejections = 0;
      const accept: FrameHandler = (frame) => void handled.add(labelOf(frame));
      const first = await consumer.subscribe(
        on,
        (frame) => {
          if (labelOf(frame) === "k:2" && rejections++ === 0) throw new Error("[transport contract] not now");
          accept(frame);
        },
        { kind: "stream" },
      );
      const producer = await open();
      for (let n = 0; n < 5; n++) await producer.publish(on, numbered("k", n), { key: "k", kind: "stream" });
      const all = () => [0, 1, 2, 3, 4].every((n) => handled.has(`k:${n}`));
      // On the same subscription, or else on a new one: both are redelivery.
      await waitFor(all, deliveryMs / 2, "the rejected frame on the same subscription").catch(async () => {
        await first.close();
        opened.add(await (await open()).subscribe(on, accept, { kind: "stream" }));
        await waitFor(all, deliveryMs, "the rejected frame on a new subscription");
      });
      assert.ok(rejections >= 1, "the handler rejected once");
      // Not asserted: that it comes back before the frames after it. RabbitMQ requeues it behind
      // what the consumer has prefetched; the ordering capability speaks of publish order only.
      await first.close();

      const again: string[] = [];
      const second = await (await open()).subscribe(on, (frame) => void again.push(labelOf(frame)), { kind: "stream" });
      opened.add(second);
      await producer.publish(on, numbered("after", 0), { key: "k", kind: "stream" });
      await waitFor(() => again.includes("after:0"), deliveryMs, "a frame published after the re-subscribe");
      await sleep(300);
      assert.deepEqual(again, ["after:0"], "handled frames are not delivered again");
    });

    contractTest("broker-acks", "a frame whose publish resolved reaches a subscriber that starts after the publisher closed", async ({ open, skip }) => {
      const producer = await open();
      const { brokerAcks, retention } = producer.capabilities;
      if (!brokerAcks && skip(`${producer.name} declares capabilities.brokerAcks: false`)) return;
      if (retention === "none" && skip(`${producer.name} declares capabilities.retention: "none"`)) return;
      const on = channel("acked");
      await producer.publish(on, numbered("acked", 0), { key: "k", kind: "stream" });
      await producer.close(); // whatever the client still buffered would go now: the broker has it
      const { received } = await recording(await open(), on, "stream");
      await waitFor(() => received.length > 0, deliveryMs, "the acknowledged frame");
      assert.deepEqual(received, ["acked:0"]);
    });

    contractTest("inbox", 'an "inbox" channel delivers every frame to every subscriber of it', async ({ open }) => {
      const on = channel("inbox");
      const a = await recording(await open(), on, "inbox");
      const b = await recording(await open(), on, "inbox");
      const producer = await open();
      const sent = Array.from({ length: 5 }, (_, n) => `ack:${n}`);
      for (let n = 0; n < sent.length; n++) await producer.publish(on, numbered("ack", n), { key: "s", kind: "inbox" });
      await waitFor(() => a.received.length >= sent.length && b.received.length >= sent.length, deliveryMs, "both inbox subscribers");
      const inOrder = producer.capabilities.ordering === "per-key";
      for (const { received } of [a, b]) assert.deepEqual(inOrder ? received : [...received].sort(), sent);
    });

    contractTest("channel-names", "a channel name of 200 [A-Za-z0-9._-] works; 201 characters or another character is refused", async ({ open }) => {
      const transport = await open();
      const prefix = channel("names");
      const longest = prefix + "x".repeat(200 - prefix.length);
      const { received } = await recording(transport, longest, "stream");
      await transport.publish(longest, numbered("long", 0), { key: "k", kind: "stream" });
      await waitFor(() => received.length > 0, deliveryMs, "a frame on a 200-character channel");
      for (const bad of [`${longest}x`, `${prefix}/x`, `${prefix} x`, `${prefix}.é`, ""]) {
        for (const [what, attempt] of [
          ["publish", () => transport.publish(bad, numbered("bad", 0), { key: "k", kind: "stream" })],
          ["subscribe", () => transport.subscribe(bad, () => {}, { kind: "stream" })],
        ] as const) {
          const error = await (attempt() as Promise<unknown>).then(
            () => assert.fail(`${what} to ${JSON.stringify(bad)} was not refused`),
            (e: unknown) => e,
          );
          assert.ok(TransportError.isInstance(error) && !error.retryable, `${what} to ${JSON.stringify(bad)}: ${String(error)}`);
          assert.match(String(error), /channel name .* is invalid/);
        }
      }
    });

    contractTest("reconnect", "a subscription survives its connection being cut; frames published after the cut reach it", async ({ opened, skip }) => {
      if (options.brokerPort === undefined && skip("no brokerPort to put a TCP proxy in front of")) return;
      const proxy = opened.add(await createTcpProxy({ targetPort: options.brokerPort ?? 0, targetHost: options.brokerHost ?? "127.0.0.1" }));
      const transport = opened.add(await options.createTransport({ port: proxy.port }));
      const on = channel("reconnect");
      const { received } = await recording(transport, on, "stream");
      await transport.publish(on, numbered("before", 0), { key: "k", kind: "stream" });
      await waitFor(() => received.includes("before:0"), deliveryMs, "a frame before the cut");
      assert.ok(proxy.connectionCount > 0, "the transport connects through the proxy");

      await proxy.cutFor(options.outageMs ?? 1000);
      // Publish until the transport is back; a publish may reject meanwhile, but only as retryable.
      const sent: string[] = [];
      const deadline = Date.now() + deliveryMs * 2;
      while (!received.some((label) => label.startsWith("after:"))) {
        assert.ok(Date.now() < deadline, `no frame published after the cut arrived (received ${received.join(", ")})`);
        const n = sent.length;
        const error = await transport.publish(on, numbered("after", n), { key: "k", kind: "stream" }).then(
          () => void sent.push(`after:${n}`),
          (e: unknown) => e,
        );
        if (error !== undefined) assert.ok(TransportError.isInstance(error) && error.retryable, `publish after the cut: ${String(error)}`);
        await sleep(200);
      }
      if (transport.capabilities.retention !== "none") {
        // Kept by the broker: every frame whose publish resolved arrives.
        await waitFor(() => sent.every((label) => received.includes(label)), deliveryMs, `${sent.join(", ")}`);
      }
      assert.ok(proxy.connectionCount > 0, "the transport connected again through the proxy");
    });

    contractTest("injected-client", "close() leaves an injected client open", async ({ skip }) => {
      const hooks = options.injected;
      if (!hooks) {
        skip("no injected-client hooks given");
        return;
      }
      const client = await hooks.make();
      try {
        const on = channel("injected");
        const transport = await hooks.createTransport(client);
        try {
          await transport.publish(on, numbered("injected", 0), { key: "k", kind: "stream" });
        } finally {
          await transport.close();
        }
        assert.equal(await hooks.isOpen(client, on), true, "the injected client still works after close()");
      } finally {
        await hooks.closeClient(client);
      }
    });
  });
}
