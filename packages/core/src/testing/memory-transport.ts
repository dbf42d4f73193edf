import { TransportError } from "../errors/transport-error";
import {
  TRANSPORT_SPECIFICATION_VERSION,
  type FrameHandler,
  type SubscribeOptions,
  type Subscription,
  type Transport,
  type TransportCapabilities,
} from "../transport";

interface Subscriber {
  readonly handler: FrameHandler;
  readonly queue: Uint8Array[];
  pumping: boolean;
  closed: boolean;
}

interface Channel {
  readonly kind: SubscribeOptions["kind"] | undefined;
  readonly subscribers: Subscriber[];
  /**
   * Frames of a stream channel waiting for a subscriber, as a durable queue would keep them; one
   * past its `expiresAtMs` is dropped instead of delivered, as a broker's message expiry does.
   */
  readonly parked: Array<{ frame: Uint8Array; key: string; expiresAtMs?: number | undefined }>;
}

/**
 * An in-process broker. Transports made from one broker see each other's channels, the way two
 * processes see one real broker. For unit tests of core only: it never stands in for a broker in
 * a test that claims a broker works.
 */
export class MemoryBroker {
  private readonly channels = new Map<string, Channel>();

  /** @internal */
  channel(name: string, kind?: SubscribeOptions["kind"]): Channel {
    let channel = this.channels.get(name);
    if (!channel) {
      channel = { kind, subscribers: [], parked: [] };
      this.channels.set(name, channel);
    }
    return channel;
  }
}

/** Options of {@link createMemoryTransport}. */
export interface MemoryTransportOptions {
  /** Share one broker between transports; a new one by default. */
  readonly broker?: MemoryBroker;
  /** Overrides of the declared capabilities, e.g. a small `maxFrameBytes`. */
  readonly capabilities?: Partial<TransportCapabilities>;
}

/** A {@link Transport} with its {@link MemoryBroker}. */
export interface MemoryTransport extends Transport {
  readonly broker: MemoryBroker;
  /**
   * Simulates the death of the process holding this transport (a SIGKILL): its subscriptions
   * stop at once without a word, the frames delivered to them and not yet acknowledged go back to
   * their channel for other subscribers (a broker's redelivery), and what it publishes from now
   * on is lost.
   */
  crash(): void;
}

function hashKey(key: string): number {
  let hash = 2166136261;
  for (let i = 0; i < key.length; i++) hash = Math.imul(hash ^ key.charCodeAt(i), 16777619);
  return hash >>> 0;
}

/**
 * Creates an in-memory transport: "stream" channels behave like a durable queue (frames wait for
 * a subscriber; each key sticks to one subscriber), "inbox" channels like a topic (every
 * subscriber gets every frame; none, and the frame is gone). Handlers are awaited one at a time
 * and a rejected frame is delivered again, like a broker's redelivery.
 */
export function createMemoryTransport(options: MemoryTransportOptions = {}): MemoryTransport {
  const broker = options.broker ?? new MemoryBroker();
  const own = new Set<Subscriber>();
  let closed = false;
  let crashed = false;
  const closers = new Set<() => Promise<void>>();

  const pump = async (subscriber: Subscriber): Promise<void> => {
    if (subscriber.pumping) return;
    subscriber.pumping = true;
    try {
      while (!subscriber.closed && subscriber.queue.length > 0) {
        const frame = subscriber.queue[0] as Uint8Array;
        try {
          await subscriber.handler(frame);
          subscriber.queue.shift();
        } catch {
          await new Promise((resolve) => setTimeout(resolve, 10)); // redelivered
        }
      }
    } finally {
      subscriber.pumping = false;
    }
  };
  const deliver = (subscriber: Subscriber, frame: Uint8Array): void => {
    subscriber.queue.push(frame);
    void pump(subscriber);
  };
  const route = (channel: Channel, frame: Uint8Array, key: string, expiresAtMs?: number): void => {
    const live = channel.subscribers.filter((subscriber) => !subscriber.closed);
    if (channel.kind === "inbox") {
      for (const subscriber of live) deliver(subscriber, frame);
      return;
    }
    const target = live[hashKey(key) % live.length];
    if (target) deliver(target, frame);
    else channel.parked.push({ frame, key, expiresAtMs });
  };

  return {
    specificationVersion: TRANSPORT_SPECIFICATION_VERSION,
    name: "memory",
    broker,
    capabilities: {
      maxFrameBytes: 1024 * 1024 + 64,
      ordering: "per-key",
      redelivery: true,
      retention: "until-consumed",
      exclusiveConsumer: true,
      brokerAcks: true,
      messageExpiry: true,
      ...options.capabilities,
    },
    async publish(name, frame, { key, expiresAtMs }) {
      if (crashed) return; // a dead process's frames never arrive
      if (closed) throw new TransportError({ message: "[stream] [memory] publish on a closed transport", retryable: false });
      if (frame.byteLength > this.capabilities.maxFrameBytes) {
        throw new TransportError({ message: `[stream] [memory] frame of ${frame.byteLength} bytes exceeds maxFrameBytes`, retryable: false });
      }
      // A broker has its own copy once it acknowledges: the publisher may reuse its buffer.
      route(broker.channel(name), new Uint8Array(frame), key, expiresAtMs);
    },
    async subscribe(name, handler, subscribeOptions): Promise<Subscription> {
      const channel = broker.channel(name, subscribeOptions.kind);
      const subscriber: Subscriber = { handler, queue: [], pumping: false, closed: false };
      channel.subscribers.push(subscriber);
      own.add(subscriber);
      const now = Date.now();
      for (const { frame, key, expiresAtMs } of channel.parked.splice(0)) {
        if (expiresAtMs === undefined || expiresAtMs > now) route(channel, frame, key, expiresAtMs);
      }
      const close = async (): Promise<void> => {
        subscriber.closed = true;
        own.delete(subscriber);
        const at = channel.subscribers.indexOf(subscriber);
        if (at >= 0) channel.subscribers.splice(at, 1);
        if (channel.kind !== "inbox") for (const frame of subscriber.queue.splice(0)) route(channel, frame, "");
      };
      subscribeOptions.signal?.addEventListener("abort", () => void close(), { once: true });
      closers.add(close);
      return { close };
    },
    crash() {
      crashed = true;
      for (const close of closers) void close();
    },
    async close() {
      closed = true;
      for (const subscriber of own) subscriber.closed = true;
      own.clear();
    },
  };
}
