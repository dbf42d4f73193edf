import {
  type ChannelKind,
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
import { ConnectionSupervisor, SubscriptionSet, channelMap, integerOptions } from "@stream/core/adapter-kit";
import { activemqErrors } from "./activemq-errors";
import { type Connection, type ConnectionSettings, activemqConnectionOptions } from "./activemq-connection";
import { ActivemqSubscription, type SubscriptionHost } from "./activemq-subscription";
import type { ActivemqTransportOptions } from "./activemq-transport-options";

/**
 * Creates a {@link Transport} that moves frames through ActiveMQ (Classic 5.x) over STOMP, with
 * the `stompit` client.
 *
 * - Stream channels are queues (`/queue/<channel>`), frames sent `persistent` with
 *   `JMSXGroupID: <key>` so ActiveMQ's message groups keep one stream on one consumer, and with
 *   `expires` (`PublishOptions.expiresAtMs`) when the send has an expiry. A publish
 *   resolves on the broker's RECEIPT, after a persistent frame is on disk.
 * - Inbox channels are topics (`/topic/<channel>`): every subscriber gets every frame, nothing is
 *   kept for absent subscribers.
 * - Subscriptions use `client-individual` acks and a bounded `activemq.prefetchSize`; a frame is
 *   acknowledged once its handler resolves.
 * - A dropped connection is re-established with backoff and its subscriptions re-subscribed
 *   (core's `ConnectionSupervisor`); publishes during the outage reject with a retryable
 *   `TransportError`, and `connection` says `"reconnecting"` until it is back.
 *
 * Creating connects nothing: the first publish or subscribe opens the connection.
 *
 * @throws TypeError when `url` is malformed or not `stomp://` / `stomp+ssl://`.
 * @throws RangeError when a count or duration option is not a non-negative integer.
 *
 * @example
 * import { createStreamClient } from "@stream/core";
 * import { createActivemqTransport } from "@stream/activemq";
 *
 * const client = createStreamClient({
 *   transport: createActivemqTransport({ url: "stomp://127.0.0.1:61613" }),
 * });
 */
export function createActivemqTransport(options: ActivemqTransportOptions = {}): Transport {
  return new ActivemqTransport(options);
}

interface ResolvedSettings extends ConnectionSettings {
  readonly persistent: boolean;
  readonly prefetchCount: number;
  readonly maxFrameBytes: number;
  readonly redeliveryDelayMs: number;
}

/** The transport behind {@link createActivemqTransport}. */
class ActivemqTransport implements Transport, SubscriptionHost {
  readonly specificationVersion = TRANSPORT_SPECIFICATION_VERSION;
  readonly name = "activemq";
  readonly capabilities: TransportCapabilities;
  readonly settings: ResolvedSettings;
  private readonly supervisor: ConnectionSupervisor<Connection>;
  /** Publishes waiting for the first connection, in call order. */
  private readonly waitingPublishes: Array<{ send: (connection: Connection) => void; fail: (error: unknown) => void }> = [];
  private readonly subscriptions = new SubscriptionSet<ActivemqSubscription>();
  private closing: Promise<void> | undefined;

  constructor(options: ActivemqTransportOptions) {
    const integer = integerOptions(this.name);
    this.settings = {
      persistent: options.persistent ?? true,
      prefetchCount: integer("prefetchCount", options.prefetchCount ?? 16),
      maxFrameBytes: integer("maxFrameBytes", options.maxFrameBytes ?? 104_857_600),
      reconnect: (options.reconnect ?? true) && (options.client === undefined || typeof options.client === "function"),
      reconnectInitialDelayMs: integer("reconnectInitialDelayMs", options.reconnectInitialDelayMs ?? 100),
      reconnectMaxDelayMs: integer("reconnectMaxDelayMs", options.reconnectMaxDelayMs ?? 5_000),
      redeliveryDelayMs: integer("redeliveryDelayMs", options.redeliveryDelayMs ?? 500, { min: 0 }),
      connectTimeoutMs: integer("connectTimeoutMs", options.connectTimeoutMs ?? 10_000),
      heartbeatMs: integer("heartbeatMs", options.heartbeatMs ?? 10_000, { min: 0 }),
    };
    this.supervisor = new ConnectionSupervisor({
      ...activemqConnectionOptions(
        options,
        this.settings,
        (connection, error) => this.onLost(connection, error),
        (failure) => this.failSubscriptions(failure),
      ),
      // Sent in call order, before anything awaiting the connection resumes.
      onConnected: (connection) => {
        for (const waiter of this.waitingPublishes.splice(0)) waiter.send(connection);
      },
    });
    this.capabilities = Object.freeze({
      maxFrameBytes: this.settings.maxFrameBytes,
      ordering: "per-key",
      redelivery: true,
      retention: "until-consumed",
      exclusiveConsumer: true,
      brokerAcks: true,
      // STOMP `expires`. ActiveMQ Classic moves expired persistent messages to ActiveMQ.DLQ unless
      // its dead-letter strategy says `processExpired="false"` (see the README).
      messageExpiry: true,
    });
  }

  /** `"reconnecting"` from a drop until the new connection is up and every subscription re-subscribed. */
  get connection(): ConnectionWatch {
    return this.supervisor.status;
  }

  publish(channel: string, frame: Uint8Array, options: PublishOptions): Promise<void> {
    const { kind } = options;
    let destination: string;
    try {
      destination = this.checked(channel, kind);
      activemqErrors.assertFrameSize(frame, this.settings.maxFrameBytes, "send smaller chunks or raise the broker's maxDataLength and maxFrameBytes");
    } catch (error) {
      return Promise.reject(error);
    }
    const body = Buffer.from(frame.buffer, frame.byteOffset, frame.byteLength);
    const headers: Record<string, string | number> = {
      destination,
      "content-length": body.byteLength,
      persistent: kind === "stream" && this.settings.persistent ? "true" : "false",
    };
    if (kind === "stream") headers.JMSXGroupID = options.key;
    // STOMP `expires` is JMSExpiration: absolute ms since the epoch, on the broker's clock.
    if (options.expiresAtMs !== undefined) headers.expires = Math.max(1, Math.ceil(options.expiresAtMs));
    const send = (connection: Connection): Promise<void> =>
      connection.sendWithReceipt("SEND", headers, body, options.signal);
    // Sent synchronously when connected: STOMP frames leave in call order, which keeps a key's
    // frames in order without awaiting each receipt.
    const { current } = this.supervisor;
    if (current) return send(current);
    if (this.supervisor.phase === "reconnecting") return this.supervisor.connection().then(send);
    return new Promise<void>((resolve, reject) => {
      this.waitingPublishes.push({ send: (connection) => send(connection).then(resolve, reject), fail: reject });
      this.supervisor.connection().catch((error: unknown) => {
        for (const waiter of this.waitingPublishes.splice(0)) waiter.fail(error);
      });
    });
  }

  async subscribe(channel: string, handler: FrameHandler, options: SubscribeOptions): Promise<Subscription> {
    this.checked(channel, options.kind);
    if (options.signal?.aborted) throw options.signal.reason;
    const subscription = this.subscriptions.add(new ActivemqSubscription(this, channel, options.kind, handler), options.signal);
    // Subscribed again on each new connection; the first one is this call's to start.
    this.supervisor.track(subscription);
    const { current } = this.supervisor;
    if (current) subscription.start(current);
    else if (this.supervisor.phase !== "reconnecting") {
      this.supervisor.connection().then(
        (connection) => subscription.start(connection),
        (error: unknown) => subscription.failBeforeLive(error),
      );
    }
    try {
      await subscription.whenLive();
    } catch (error) {
      await subscription.close();
      throw options.signal?.aborted ? options.signal.reason : error;
    }
    return subscription;
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      for (const waiter of this.waitingPublishes.splice(0)) waiter.fail(activemqErrors.closed());
      await this.supervisor.close();
    })();
    return this.closing;
  }

  /** Where frames of `channel` go: a queue for streams, a topic for inboxes. */
  readonly destinationOf = channelMap(this.name, { stream: (channel) => `/queue/${channel}`, inbox: (channel) => `/topic/${channel}` });

  /** Called by a subscription when it closes. */
  forget(subscription: ActivemqSubscription): void {
    this.subscriptions.delete(subscription);
    this.supervisor.forget(subscription);
  }

  /** The destination of `channel`; throws when the transport refuses calls or the name is invalid. */
  private checked(channel: string, kind: ChannelKind): string {
    const refused = this.supervisor.refusal();
    if (refused) throw refused;
    return this.destinationOf(channel, kind);
  }

  /** A dropped connection: its consumers are gone, and the broker requeues what they had. */
  private onLost(connection: Connection, error: TransportError): void {
    for (const subscription of this.subscriptions) subscription.detach(connection);
    // The broker refused something for good (a SUBSCRIBE it does not allow, say): a subscription
    // still waiting to go live fails now rather than being retried on every reconnect.
    if (!error.retryable && this.supervisor.phase !== "closed") this.failSubscriptions(error);
  }

  private failSubscriptions(error: TransportError): void {
    for (const subscription of this.subscriptions) subscription.failBeforeLive(error);
  }
}
