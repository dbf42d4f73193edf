import {
  type ConnectionWatch,
  type FrameHandler,
  type PublishOptions,
  type SubscribeOptions,
  type Subscription,
  TRANSPORT_SPECIFICATION_VERSION,
  type Transport,
  type TransportCapabilities,
  TransportError,
} from "@stream/core";
import { ConnectionStatus, assertChannelName } from "@stream/core/adapter-kit";
import { connect, type IConnackPacket, type IPublishPacket, type MqttClient } from "mqtt";
import { createClient, waitForConnack, withTimeout } from "./mqtt-connection";
import { Delivery, LocalSubscriber, type TopicEntry } from "./mqtt-subscription";
import { toTransportError } from "./mqtt-transport-error";
import { type MqttTransportOptions, PUBLISH_OVERHEAD_BYTES, type ResolvedOptions, resolveOptions } from "./mqtt-transport-options";

/** PUBACK reason code for a frame the handler refused (MQTT 5 "Unspecified error"). */
const REFUSED = 0x80;
/**
 * Passed to mqtt.js's `handleMessage` callback to skip its automatic PUBACK (it sends one only
 * when the callback gets no error); the transport sends the PUBACK itself once the frame is handled.
 */
const DEFER_ACK = new Error("[stream] [mqtt] acknowledgement deferred until the frame is handled");

type HandleMessage = MqttClient["handleMessage"];
/** mqtt.js's packet writer. Private in its typings, but the only way to send a PUBACK later. */
type PacketSender = { _sendPacket?: (packet: { cmd: "puback"; messageId: number; reasonCode?: number }, cb?: () => void) => void };

interface PendingPublish {
  fail(error: unknown): void;
}

/** A publish waiting for a free in-flight slot. */
interface QueuedPublish {
  readonly send: () => void;
  readonly isSettled: () => boolean;
}

class MqttTransport implements Transport {
  readonly specificationVersion = TRANSPORT_SPECIFICATION_VERSION;
  readonly name = "mqtt";
  readonly capabilities: TransportCapabilities;

  private readonly options: ResolvedOptions;
  private readonly given: MqttTransportOptions["client"];
  /** The client being opened or open; undefined until first use and after a failed attempt. */
  private opening: Promise<MqttClient> | undefined;
  private client: MqttClient | undefined;
  private owned = false;
  private protocolVersion: number;
  /** Counts connections; a PUBACK is only sent on the connection that delivered the frame. */
  private generation = 0;
  private readonly topics = new Map<string, TopicEntry>();
  private readonly pendingPublishes = new Set<PendingPublish>();
  /** Publishes sent and not yet acknowledged by the broker. */
  private inflight = 0;
  /** The broker's MQTT 5 Receive Maximum, from its last CONNACK. */
  private brokerReceiveMaximum = 65_535;
  /** Publishes waiting for a slot, in call order. */
  private readonly waiting: QueuedPublish[] = [];
  private previousHandleMessage: HandleMessage | undefined;
  private detach: (() => void) | undefined;
  private closing: Promise<void> | undefined;
  /** The client's latest error event (a refused reconnect, a keepalive timeout), for timeout messages. */
  private lastError: Error | undefined;
  private readonly status = new ConnectionStatus();

  constructor(options: MqttTransportOptions) {
    this.options = resolveOptions(options);
    this.given = options.client;
    this.protocolVersion = this.options.protocolVersion;
    this.capabilities = Object.freeze({
      maxFrameBytes: this.options.maxFrameBytes,
      // MQTT delivers the messages of one topic from one publisher in order (MQTT 5 §4.6).
      ordering: "per-key",
      // Unacknowledged frames come back only to the same session after a reconnect; a refused
      // frame is not redelivered, nor is a dead consumer's frame given to another one.
      redelivery: false,
      // A topic with no subscribed session drops what is published to it.
      retention: "none",
      // Shared subscriptions ($share) balance per message, never per stream.
      exclusiveConsumer: false,
      // A PUBACK means "queued in the broker's memory": Mosquitto drops queued QoS 1 messages
      // past max_queued_messages / max_queued_bytes without telling the publisher.
      brokerAcks: false,
    } satisfies TransportCapabilities);
  }

  /**
   * `"reconnecting"` from mqtt.js's `offline` (the connection dropped and it will reconnect;
   * meanwhile it holds publishes rather than failing them) until its next `connect`.
   */
  get connection(): ConnectionWatch {
    return this.status;
  }

  private topicOf(channel: string): string {
    return this.options.topicPrefix + assertChannelName(channel, this.name);
  }

  private closedError(): TransportError {
    return new TransportError({ message: "[stream] [mqtt] the transport is closed; create a new one", retryable: false });
  }

  /** The connected client, connecting on first use. A failed connect is tried again next call. */
  private ready(): Promise<MqttClient> {
    if (this.closing) return Promise.reject(this.closedError());
    if (!this.opening) {
      this.opening = this.open();
      this.opening.catch(() => {
        this.opening = undefined;
      });
    }
    return this.opening;
  }

  private async open(): Promise<MqttClient> {
    const { given } = this;
    let client: MqttClient;
    if (typeof given === "function") {
      try {
        client = await given();
      } catch (error) {
        throw toTransportError(error, "the client factory failed");
      }
      this.owned = true;
    } else if (given) {
      client = given;
      this.owned = false;
    } else {
      client = createClient(this.options);
      this.owned = true;
      try {
        const connack = await waitForConnack(client, this.options.connectTimeoutMs, this.options.url);
        this.checkPacketLimit(connack);
      } catch (error) {
        client.end(true);
        throw error;
      }
    }
    if (this.closing) {
      if (this.owned) client.end(true);
      throw this.closedError();
    }
    this.protocolVersion = client.options.protocolVersion ?? 4;
    const connack = (client as unknown as { connackPacket?: IConnackPacket }).connackPacket;
    this.brokerReceiveMaximum = connack?.properties?.receiveMaximum ?? 65_535;
    try {
      this.attach(client);
    } catch (error) {
      if (this.owned) client.end(true);
      throw error;
    }
    this.client = client;
    return client;
  }


  /** Refuses a broker whose MQTT 5 Maximum Packet Size cannot carry `maxFrameBytes`. */
  private checkPacketLimit(connack: IConnackPacket): void {
    const limit = connack.properties?.maximumPacketSize;
    if (limit !== undefined && limit < this.options.maxFrameBytes + PUBLISH_OVERHEAD_BYTES) {
      throw new TransportError({
        message:
          `[stream] [mqtt] the broker accepts packets of at most ${limit} bytes, less than maxFrameBytes ` +
          `${this.options.maxFrameBytes} plus ${PUBLISH_OVERHEAD_BYTES} bytes of packet header; set maxFrameBytes to ` +
          `${Math.max(0, limit - PUBLISH_OVERHEAD_BYTES)} or less, or raise the broker's max_packet_size`,
        retryable: false,
      });
    }
  }

  /** Hooks the transport into a client: deferred PUBACKs, reconnect bookkeeping, errors. */
  private attach(client: MqttClient): void {
    if (typeof (client as unknown as PacketSender)._sendPacket !== "function") {
      throw new TransportError({
        message: "[stream] [mqtt] this mqtt.js client has no _sendPacket, which the transport needs to acknowledge frames once handled; install mqtt 5.x",
        retryable: false,
      });
    }
    const previous = client.handleMessage;
    this.previousHandleMessage = previous;
    client.handleMessage = (packet, callback) => this.onPublish(client, packet, callback);
    const onClose = (): void => {
      this.generation += 1;
    };
    // Emitted once per outage, and only when mqtt.js will reconnect (not on end(), nor with reconnectPeriod 0).
    const onOffline = (): void => this.status.set("reconnecting");
    // Ended (by close(), or an injected client's owner): nothing is being re-established any more.
    const onEnd = (): void => this.status.set("connected");
    const onConnect = (connack: IConnackPacket): void => {
      this.status.set("connected");
      this.lastError = undefined;
      this.brokerReceiveMaximum = connack.properties?.receiveMaximum ?? 65_535;
      // A resumed session still holds the subscriptions; a new one (expired, broker restarted,
      // clean session) has none, so subscribe again.
      if (!connack.sessionPresent) this.resubscribe(client);
    };
    // mqtt.js emits connection errors as 'error' events; without a listener they would crash the
    // process. They surface through publish/subscribe rejections and timeouts instead.
    const onError = (error: Error): void => {
      this.lastError = error;
    };
    client.on("close", onClose);
    client.on("offline", onOffline);
    client.on("end", onEnd);
    client.on("connect", onConnect);
    client.on("error", onError);
    this.detach = () => {
      client.off("close", onClose);
      client.off("offline", onOffline);
      client.off("end", onEnd);
      client.off("connect", onConnect);
      client.off("error", onError);
      if (client.handleMessage !== previous) client.handleMessage = previous;
    };
  }

  private resubscribe(client: MqttClient): void {
    for (const [topic, entry] of this.topics) {
      const live = this.subscribeOnBroker(client, topic);
      entry.live = live;
      live.catch(() => {});
    }
  }

  private onPublish(client: MqttClient, packet: IPublishPacket, callback: (error?: Error) => void): void {
    const topic = this.topicOfPacket(client, packet);
    const entry = topic === undefined ? undefined : this.topics.get(topic);
    if (!entry || this.closing) {
      // Not a topic of this transport (an injected client's own, or a leftover of a resumed
      // session): whoever handled messages before decides.
      (this.previousHandleMessage ?? ((_: IPublishPacket, done: (error?: Error) => void) => done())).call(client, packet, callback);
      return;
    }
    const payload = typeof packet.payload === "string" ? Buffer.from(packet.payload) : packet.payload;
    const { messageId } = packet;
    if (packet.qos !== 1 || messageId === undefined) {
      // QoS 0 needs no ack; QoS 2 reaches here only after PUBREL, when the broker already let go.
      callback();
      const delivery = new Delivery(payload, entry.subscribers.size, () => {});
      for (const subscriber of entry.subscribers) subscriber.enqueue(delivery);
      return;
    }
    const generation = this.generation;
    const delivery = new Delivery(payload, entry.subscribers.size, (refused) => this.puback(client, messageId, generation, refused));
    for (const subscriber of entry.subscribers) subscriber.enqueue(delivery);
    // mqtt.js handles incoming packets one at a time; holding this callback until the handler is
    // done would also hold the PUBACKs of our own publishes. So let it move on without acking.
    callback(DEFER_ACK);
  }

  private topicOfPacket(client: MqttClient, packet: IPublishPacket): string | undefined {
    if (packet.topic) return packet.topic;
    // An MQTT 5 topic alias with an empty topic: mqtt.js resolved it, but only for its own use.
    const alias = packet.properties?.topicAlias;
    const aliases = (client as unknown as { topicAliasRecv?: { getTopicByAlias(alias: number): string | undefined } }).topicAliasRecv;
    return alias === undefined ? undefined : aliases?.getTopicByAlias(alias);
  }

  private puback(client: MqttClient, messageId: number, generation: number, refused: boolean): void {
    // After a reconnect the packet id belongs to another delivery: the broker resends this frame
    // (resumed session) and it is acknowledged then, or has forgotten it (new session).
    if (generation !== this.generation || !client.connected || client.disconnecting) return;
    (client as unknown as Required<PacketSender>)._sendPacket.call(client, { cmd: "puback", messageId, ...(refused && this.protocolVersion === 5 ? { reasonCode: REFUSED } : {}) });
  }

  private subscribeOnBroker(client: MqttClient, topic: string): Promise<void> {
    const subscribed = new Promise<void>((resolve, reject) => {
      client.subscribe(topic, { qos: 1 }, (error, granted) => {
        const code = granted?.[0]?.qos;
        if (error) reject(toTransportError(error, `subscribing to ${topic} failed`));
        else if (code !== undefined && code >= 0x80) {
          reject(toTransportError(Object.assign(new Error("the broker refused the subscription"), { code }), `subscribing to ${topic} failed`));
        } else resolve();
      });
    });
    return withTimeout(
      subscribed,
      this.options.ackTimeoutMs,
      () =>
        new TransportError({
          message: `[stream] [mqtt] no SUBACK for ${topic} within ${this.options.ackTimeoutMs} ms (connected: ${client.connected}); retry, or raise ackTimeoutMs`,
        }),
    );
  }

  async publish(channel: string, frame: Uint8Array, options: PublishOptions): Promise<void> {
    const topic = this.topicOf(channel);
    if (frame.byteLength > this.options.maxFrameBytes) {
      throw new TransportError({
        message: `[stream] [mqtt] a frame of ${frame.byteLength} bytes exceeds maxFrameBytes ${this.options.maxFrameBytes}; send smaller chunks or raise maxFrameBytes`,
        retryable: false,
      });
    }
    // Every publish passes this one await, so they reach mqtt.js in call order.
    const client = await this.ready();
    if (this.closing) throw this.closedError();
    const { signal } = options;
    signal?.throwIfAborted();
    const payload = Buffer.from(frame.buffer, frame.byteOffset, frame.byteLength);
    return new Promise<void>((resolve, reject) => {
      let settled = false;
      const finish = (error?: unknown): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        signal?.removeEventListener("abort", onAbort);
        this.pendingPublishes.delete(pending);
        if (error === undefined) resolve();
        else reject(error);
      };
      const onAbort = (): void => finish(signal?.reason);
      const pending: PendingPublish = { fail: finish };
      const timer = setTimeout(
        () =>
          finish(
            new TransportError({
              message:
                `[stream] [mqtt] no acknowledgement for a publish to ${topic} within ${this.options.ackTimeoutMs} ms ` +
                `(${client.connected ? "connected" : "reconnecting"}${this.lastError ? `, last error: ${this.lastError.message}` : ""}); ` +
                "retry, or raise ackTimeoutMs",
            }),
          ),
        this.options.ackTimeoutMs,
      );
      timer.unref();
      signal?.addEventListener("abort", onAbort, { once: true });
      this.pendingPublishes.add(pending);
      const send = (): void => {
        this.inflight += 1;
        // While the connection is down mqtt.js keeps the frame and sends it after the reconnect;
        // a frame in flight when it dropped is sent again then. Either resolves on its PUBACK.
        client.publish(topic, payload, { qos: this.options.qos }, (error) => {
          this.inflight -= 1;
          finish(error ? toTransportError(error, `publishing to ${topic} failed`) : undefined);
          this.sendWaiting();
        });
      };
      this.waiting.push({ send, isSettled: () => settled });
      this.sendWaiting();
    });
  }

  /**
   * Sends waiting publishes while fewer than the in-flight limit await their acknowledgement.
   * mqtt.js does not hold back for the broker's Receive Maximum, and Mosquitto refuses (MQTT 5)
   * or silently drops (3.1.1) QoS 2 frames past it.
   */
  private sendWaiting(): void {
    const limit = Math.min(this.options.inflightFrames, this.brokerReceiveMaximum);
    while (this.inflight < limit && this.waiting.length > 0) {
      const next = this.waiting.shift() as QueuedPublish;
      if (!next.isSettled()) next.send();
    }
  }

  async subscribe(channel: string, handler: FrameHandler, options: SubscribeOptions): Promise<Subscription> {
    const topic = this.topicOf(channel);
    const { signal } = options;
    signal?.throwIfAborted();
    const client = await this.ready();
    if (this.closing) throw this.closedError();
    const subscriber = new LocalSubscriber(handler);
    let entry = this.topics.get(topic);
    if (!entry) {
      entry = { subscribers: new Set(), live: this.subscribeOnBroker(client, topic) };
      this.topics.set(topic, entry);
    }
    entry.subscribers.add(subscriber);
    const close = async (): Promise<void> => {
      if (subscriber.closed) return;
      subscriber.stop();
      signal?.removeEventListener("abort", onAbort);
      const current = this.topics.get(topic);
      if (!current?.subscribers.delete(subscriber) || current.subscribers.size > 0) return;
      this.topics.delete(topic);
      if (!this.closing) await this.unsubscribeOnBroker(client, topic);
    };
    const onAbort = (): void => void close();
    try {
      await entry.live;
    } catch (error) {
      await close();
      throw error;
    }
    signal?.addEventListener("abort", onAbort, { once: true });
    if (signal?.aborted) await close();
    return { close };
  }

  /** Best effort: a subscription the broker keeps anyway only costs frames acknowledged unread. */
  private async unsubscribeOnBroker(client: MqttClient, topic: string): Promise<void> {
    if (!client.connected) {
      // mqtt.js sends it once reconnected; nothing to wait for.
      client.unsubscribe(topic);
      return;
    }
    const unsubscribed = new Promise<void>((resolve) => client.unsubscribe(topic, () => resolve()));
    await withTimeout(unsubscribed, this.options.ackTimeoutMs, () => new Error("no UNSUBACK")).catch(() => {});
  }

  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  private async shutdown(): Promise<void> {
    for (const entry of this.topics.values()) for (const subscriber of entry.subscribers) subscriber.stop();
    const client = this.client ?? (await this.opening?.catch(() => undefined));
    const topics = [...this.topics.keys()];
    this.topics.clear();
    if (client) {
      if (this.owned) await this.endOwned(client);
      else {
        this.detach?.();
        await Promise.all(topics.map((topic) => this.unsubscribeOnBroker(client, topic)));
      }
    }
    for (const pending of [...this.pendingPublishes]) pending.fail(this.closedError());
  }

  /** Ends the transport's own client and has the broker forget its session. */
  private async endOwned(client: MqttClient): Promise<void> {
    const graceMs = Math.min(this.options.ackTimeoutMs, 5000);
    const v5 = this.protocolVersion === 5;
    const wasConnected = client.connected;
    // A graceful end waits for publishes in flight; a broker that is gone gets a forced one.
    await withTimeout(
      client.endAsync(false, v5 ? { properties: { sessionExpiryInterval: 0 } } : {}),
      graceMs,
      () => new Error("end timed out"),
    ).catch(() => client.endAsync(true).catch(() => {}));
    this.detach?.();
    // MQTT 3.1.1 has no session expiry: a clean connect with the same client id discards it.
    if (!v5 && wasConnected && !client.options.clean && typeof this.given !== "function") {
      const cleaner = connect(this.options.url, {
        ...this.options.clientOptions,
        protocolVersion: 4,
        clientId: client.options.clientId,
        clean: true,
        reconnectPeriod: 0,
        connectTimeout: graceMs,
      });
      cleaner.on("error", () => {});
      await withTimeout(waitForConnack(cleaner, graceMs, this.options.url), graceMs, () => new Error("timed out")).catch(() => {});
      await cleaner.endAsync(true).catch(() => {});
    }
  }
}

/**
 * Creates a transport that moves `@stream/core` frames through an MQTT 3.1.1 or 5 broker
 * (Mosquitto, EMQX, HiveMQ...) with mqtt.js.
 *
 * Each channel is the topic `<topicPrefix><channel>`. Frames are published with QoS 1 (or 2)
 * and a publish resolves on the broker's PUBACK (PUBCOMP). Subscriptions take QoS 1 in a
 * session that outlives a dropped connection (`sessionExpirySeconds`), and each frame's PUBACK
 * waits until core has handled it, so a frame caught by a connection drop comes back after the
 * reconnect. The connection is opened on first use and re-established by mqtt.js when it drops
 * (`connection` says `"reconnecting"` meanwhile, while mqtt.js holds the publishes); the
 * transport subscribes again if the broker lost the session.
 *
 * What MQTT cannot do is declared in `capabilities`: nothing is kept for a topic nobody is
 * subscribed to, a refused frame is not redelivered, a PUBACK is not end-to-end, and no broker
 * keeps one stream on one consumer. Core's end-to-end acknowledgements and retransmission cover it.
 *
 * @example
 * import { createStreamClient } from "@stream/core";
 * import { createMqttTransport } from "@stream/mqtt";
 *
 * const client = createStreamClient({ transport: createMqttTransport({ url: "mqtt://127.0.0.1:1883" }) });
 * await client.send("./video.mp4", { destination: "files" });
 */
export function createMqttTransport(options: MqttTransportOptions = {}): Transport {
  return new MqttTransport(options);
}
