import {
  type ConnectionWatch,
  type FrameHandler,
  type PublishOptions,
  type SubscribeOptions,
  type Subscription,
  TRANSPORT_SPECIFICATION_VERSION,
  type Transport,
  type TransportCapabilities,
} from "@stream/core";
import { ConnectionSupervisor, PendingCall, channelMap, withTimeout } from "@stream/core/adapter-kit";
import type { IConnackPacket, IPublishPacket, MqttClient } from "mqtt";
import { mqttConnectionOptions, unsubscribe } from "./mqtt-connection";
import { Delivery, LocalSubscriber, type TopicEntry } from "./mqtt-subscription";
import { mqttErrors } from "./mqtt-transport-error";
import { type MqttTransportOptions, type ResolvedOptions, resolveOptions } from "./mqtt-transport-options";

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

/** A publish waiting for a free in-flight slot. */
interface QueuedPublish {
  readonly send: () => void;
  readonly call: PendingCall;
}

class MqttTransport implements Transport {
  readonly specificationVersion = TRANSPORT_SPECIFICATION_VERSION;
  readonly name = "mqtt";
  readonly capabilities: TransportCapabilities;

  private readonly options: ResolvedOptions;
  /** Opens the client on first use, says where it stands, lets go of it on close. */
  private readonly supervisor: ConnectionSupervisor<MqttClient>;
  private readonly topicOf: (channel: string) => string;
  private protocolVersion: number;
  /** Counts connections; a PUBACK is only sent on the connection that delivered the frame. */
  private generation = 0;
  private readonly topics = new Map<string, TopicEntry>();
  /** Publishes not yet acknowledged, failed by close(). */
  private readonly pendingPublishes = new Set<PendingCall>();
  /** Publishes sent and not yet acknowledged by the broker. */
  private inflight = 0;
  /** The broker's MQTT 5 Receive Maximum, from its last CONNACK. */
  private brokerReceiveMaximum = 65_535;
  /** Publishes waiting for a slot, in call order. */
  private readonly waiting: QueuedPublish[] = [];
  private previousHandleMessage: HandleMessage | undefined;
  /** The client being opened or open, until it fails or is lost. */
  private opening: Promise<MqttClient> | undefined;
  private closing: Promise<void> | undefined;
  /** Topics subscribed when close() began, for an injected client to unsubscribe. */
  private closingTopics: string[] = [];
  /** The client's latest error event (a refused reconnect, a keepalive timeout), for timeout messages. */
  private lastError: Error | undefined;

  constructor(options: MqttTransportOptions) {
    this.options = resolveOptions(options);
    this.protocolVersion = this.options.protocolVersion;
    const topic = (channel: string): string => this.options.topicPrefix + channel;
    const topicOf = channelMap(this.name, { stream: topic, inbox: topic });
    this.topicOf = (channel) => topicOf(channel, "stream");
    this.supervisor = new ConnectionSupervisor({
      ...mqttConnectionOptions(this.options, options.client, {
        attach: (client) => this.attach(client),
        topics: () => this.closingTopics,
        lost: () => void (this.opening = undefined),
      }),
      // A client the factory made again (the last one was ended) has none of the subscriptions.
      onConnected: (client) => this.resubscribe(client),
    });
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
      // MQTT 5's Message Expiry Interval; MQTT 3.1.1 has none.
      messageExpiry: this.options.protocolVersion === 5,
    } satisfies TransportCapabilities);
  }

  /**
   * `"reconnecting"` from mqtt.js's `offline` (the connection dropped and it will reconnect;
   * meanwhile it holds publishes rather than failing them) until its next `connect`.
   */
  get connection(): ConnectionWatch {
    return this.supervisor.status;
  }

  /**
   * The connected client, connecting on first use (a failed connect is tried again next call).
   * Every call awaits this one promise, so calls resume, and publish, in call order.
   */
  private ready(): Promise<MqttClient> {
    if (this.closing) return Promise.reject(mqttErrors.closed());
    this.opening ??= this.supervisor.connection().catch((error: unknown) => {
      this.opening = undefined;
      throw error;
    });
    return this.opening;
  }

  /** Hooks the transport into a client: deferred PUBACKs, reconnect bookkeeping, errors. Returns the unhook. */
  private attach(client: MqttClient): () => void {
    if (typeof (client as unknown as PacketSender)._sendPacket !== "function") {
      throw mqttErrors.error(
        "this mqtt.js client has no _sendPacket, which the transport needs to acknowledge frames once handled; install mqtt 5.x",
        false,
      );
    }
    this.protocolVersion = client.options.protocolVersion ?? 4;
    const connack = (client as unknown as { connackPacket?: IConnackPacket }).connackPacket;
    this.brokerReceiveMaximum = connack?.properties?.receiveMaximum ?? 65_535;
    const previous = client.handleMessage;
    this.previousHandleMessage = previous;
    client.handleMessage = (packet, callback) => this.onPublish(client, packet, callback);
    const onClose = (): void => {
      this.generation += 1;
    };
    const onConnect = (connack: IConnackPacket): void => {
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
    client.on("connect", onConnect);
    client.on("error", onError);
    return () => {
      client.off("close", onClose);
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
        if (error) reject(mqttErrors.wrap(`subscribing to ${topic} failed`, error));
        else if (code !== undefined && code >= 0x80) {
          reject(mqttErrors.wrap(`subscribing to ${topic} failed`, Object.assign(new Error("the broker refused the subscription"), { code })));
        } else resolve();
      });
    });
    const { ackTimeoutMs } = this.options;
    return withTimeout(subscribed, ackTimeoutMs, () =>
      mqttErrors.error(`no SUBACK for ${topic} within ${ackTimeoutMs} ms (connected: ${client.connected}); retry, or raise ackTimeoutMs`, true),
    );
  }

  async publish(channel: string, frame: Uint8Array, options: PublishOptions): Promise<void> {
    const topic = this.topicOf(channel);
    mqttErrors.assertFrameSize(frame, this.options.maxFrameBytes, "send smaller chunks or raise maxFrameBytes");
    // Every publish passes this one await, so they reach mqtt.js in call order.
    const client = await this.ready();
    if (this.closing) throw mqttErrors.closed();
    const payload = Buffer.from(frame.buffer, frame.byteOffset, frame.byteLength);
    const call = new PendingCall(options.signal);
    const { ackTimeoutMs } = this.options;
    const timer = setTimeout(() => {
      const state = `${client.connected ? "connected" : "reconnecting"}${this.lastError ? `, last error: ${this.lastError.message}` : ""}`;
      call.reject(mqttErrors.error(`no acknowledgement for a publish to ${topic} within ${ackTimeoutMs} ms (${state}); retry, or raise ackTimeoutMs`, true));
    }, ackTimeoutMs);
    timer.unref();
    this.pendingPublishes.add(call);
    call.onSettled(() => {
      clearTimeout(timer);
      this.pendingPublishes.delete(call);
    });
    const send = (): void => {
      this.inflight += 1;
      // While the connection is down mqtt.js keeps the frame and sends it after the reconnect;
      // a frame in flight when it dropped is sent again then. Either resolves on its PUBACK.
      client.publish(topic, payload, { qos: this.options.qos, ...this.expiryOf(options) }, (error) => {
        this.inflight -= 1;
        if (error) call.reject(mqttErrors.wrap(`publishing to ${topic} failed`, error));
        else call.resolve();
        this.sendWaiting();
      });
    };
    this.waiting.push({ send, call });
    this.sendWaiting();
    return call.promise;
  }

  /**
   * The publish properties that carry `expiresAtMs`: MQTT 5's Message Expiry Interval, whole
   * seconds counted from when the broker takes the frame (at least 1: 0 is not "already due").
   * Nothing on an MQTT 3.1.1 connection (`capabilities.messageExpiry` is then false).
   */
  private expiryOf({ expiresAtMs }: PublishOptions): { properties?: { messageExpiryInterval: number } } {
    if (expiresAtMs === undefined || this.protocolVersion !== 5) return {};
    return { properties: { messageExpiryInterval: Math.max(1, Math.ceil((expiresAtMs - Date.now()) / 1000)) } };
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
      if (!next.call.settled) next.send();
    }
  }

  async subscribe(channel: string, handler: FrameHandler, options: SubscribeOptions): Promise<Subscription> {
    const topic = this.topicOf(channel);
    const { signal } = options;
    signal?.throwIfAborted();
    const client = await this.ready();
    if (this.closing) throw mqttErrors.closed();
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
      const live = this.supervisor.current;
      if (!this.closing && live) await unsubscribe(live, topic, this.options.ackTimeoutMs);
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

  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  private async shutdown(): Promise<void> {
    for (const entry of this.topics.values()) for (const subscriber of entry.subscribers) subscriber.stop();
    this.closingTopics = [...this.topics.keys()];
    this.topics.clear();
    // Ends the transport's own client; unsubscribes an injected one's topics and leaves it connected.
    await this.supervisor.close();
    for (const pending of [...this.pendingPublishes]) pending.reject(mqttErrors.closed());
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
