import {
  type ChannelKind,
  type FrameHandler,
  type PublishOptions,
  type SubscribeOptions,
  type Subscription,
  TRANSPORT_SPECIFICATION_VERSION,
  type Transport,
  type TransportCapabilities,
  TransportError,
} from "@stream/core";
import { FrameQueue, assertChannelName } from "@stream/core/adapter-kit";
import stompit from "stompit";
import { toTransportError } from "./activemq-errors";
import type {
  ActivemqStompClient,
  ActivemqStompMessage,
  ActivemqStompSubscription,
  ActivemqTransportOptions,
} from "./activemq-transport-options";

const DEFAULT_URL = "stomp://127.0.0.1:61613";
/** How long `close()` waits for a running handler so its frame can be acknowledged. */
const HANDLER_GRACE_MS = 1_000;
/** How long `close()` waits for the broker's DISCONNECT receipt before cutting the socket. */
const DISCONNECT_TIMEOUT_MS = 5_000;

let nextSubscriptionId = 1;

/**
 * Creates a {@link Transport} that moves frames through ActiveMQ (Classic 5.x) over STOMP, with
 * the `stompit` client.
 *
 * - Stream channels are queues (`/queue/<channel>`), frames sent `persistent` with
 *   `JMSXGroupID: <key>` so ActiveMQ's message groups keep one stream on one consumer. A publish
 *   resolves on the broker's RECEIPT, after a persistent frame is on disk.
 * - Inbox channels are topics (`/topic/<channel>`): every subscriber gets every frame, nothing is
 *   kept for absent subscribers.
 * - Subscriptions use `client-individual` acks and a bounded `activemq.prefetchSize`; a frame is
 *   acknowledged once its handler resolves.
 * - A dropped connection is re-established with backoff and its subscriptions re-subscribed;
 *   publishes during the outage reject with a retryable `TransportError`.
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

interface ResolvedSettings {
  readonly persistent: boolean;
  readonly prefetchCount: number;
  readonly maxFrameBytes: number;
  readonly reconnect: boolean;
  readonly reconnectInitialDelayMs: number;
  readonly reconnectMaxDelayMs: number;
  readonly redeliveryDelayMs: number;
  readonly connectTimeoutMs: number;
  readonly heartbeatMs: number;
}

/** One STOMP connection and the publishes waiting for its receipts. */
class Connection {
  alive = true;
  /** Rejecters of everything waiting on a receipt from this connection. */
  readonly waiting = new Set<(error: TransportError) => void>();
  private readonly onError = (error?: Error): void => this.lost(error ?? new Error("the STOMP client failed"));
  private readonly onEnd = (): void => this.lost(new Error("the broker closed the connection"));

  constructor(
    readonly client: ActivemqStompClient,
    /** Whether the transport created this client and so disconnects it. */
    readonly owned: boolean,
    private readonly onLost: (connection: Connection, error: Error) => void,
  ) {
    client.on("error", this.onError);
    client.on("end", this.onEnd);
  }

  private lost(error: Error): void {
    if (this.alive) this.onLost(this, error);
  }

  /** Stops listening to the client; what still waits on it fails with `error`. */
  retire(error: TransportError): void {
    if (!this.alive) return;
    this.alive = false;
    this.client.removeListener("error", this.onError);
    this.client.removeListener("end", this.onEnd);
    // An owned client may still emit a late error (a write after the socket died); without a
    // listener Node would throw it.
    if (this.owned) this.client.on("error", ignore);
    for (const reject of this.waiting) reject(error);
    this.waiting.clear();
  }

  /** Sends a frame and resolves on the broker's RECEIPT for it. */
  sendWithReceipt(
    command: "SEND" | "SUBSCRIBE",
    headers: Record<string, string | number>,
    body: Buffer | undefined,
    signal?: AbortSignal,
  ): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      let settled = false;
      let flushed = false;
      let aborted = false;
      const settle = (error?: unknown): void => {
        if (settled) return;
        settled = true;
        this.waiting.delete(fail);
        signal?.removeEventListener("abort", onAbort);
        if (error === undefined) resolve();
        else reject(error);
      };
      // Once publish settles core may reuse the frame's buffer, so an abort waits until the body
      // has been handed to the socket (a dead connection discards what it had not sent).
      const fail = (error: TransportError): void => settle(error);
      const onAbort = (): void => {
        aborted = true;
        if (flushed) settle(signal?.reason);
      };
      if (signal?.aborted) return settle(signal.reason);
      this.waiting.add(fail);
      signal?.addEventListener("abort", onAbort, { once: true });
      const options = { onReceipt: () => settle() };
      const out = command === "SEND" ? this.client.send(headers, options) : this.client.sendFrame(command, headers, options);
      // A write error also destroys the client, which retires this connection.
      out.on("error", (error: Error) => settle(toTransportError(`writing a ${command} frame failed`, error)));
      out.end(body, () => {
        flushed = true;
        if (aborted) settle(signal?.reason);
      });
    });
  }
}

/** A frame read off the wire, waiting for its handler. */
interface Delivery {
  readonly epoch: number;
  readonly connection: Connection;
  readonly message: ActivemqStompMessage;
  readonly body: Buffer;
}

/** One subscription, which survives reconnects by subscribing again on each new connection. */
class ActivemqSubscription implements Subscription {
  closed = false;
  /** Bumped whenever the broker-side consumer is replaced; older deliveries are never acknowledged. */
  private epoch = 0;
  private consumer: { readonly connection: Connection; readonly stomp: ActivemqStompSubscription } | undefined;
  /** Hands frames to the handler one at a time, acknowledging each when it resolves. */
  private readonly queue = new FrameQueue<Delivery>({
    handle: (delivery) => this.handler(delivery.body),
    onSettled: (delivery, handled) => this.settle(delivery, handled),
    isStale: (delivery) => delivery.epoch !== this.epoch,
  });
  private resubscribeTimer: NodeJS.Timeout | undefined;
  private readonly live: Promise<void>;
  private markLive!: () => void;
  private failLive!: (error: unknown) => void;
  private isLive = false;

  constructor(
    private readonly transport: ActivemqTransport,
    readonly channel: string,
    readonly kind: ChannelKind,
    private readonly handler: FrameHandler,
  ) {
    this.live = new Promise<void>((resolve, reject) => {
      this.markLive = resolve;
      this.failLive = reject;
    });
    this.live.catch(ignore);
  }

  /** Resolves once the first SUBSCRIBE has been confirmed by the broker. */
  whenLive(): Promise<void> {
    return this.live;
  }

  /** Fails {@link whenLive} if the subscription never became live. */
  failBeforeLive(error: unknown): void {
    if (!this.isLive) this.failLive(error);
  }

  /** Subscribes on `connection`, replacing any earlier broker-side consumer. */
  attach(connection: Connection): void {
    if (this.closed || !connection.alive) return;
    clearTimeout(this.resubscribeTimer);
    this.resubscribeTimer = undefined;
    this.dropConsumer();
    const epoch = this.epoch;
    const id = `stream-${nextSubscriptionId++}`;
    const stomp = connection.client.setImplicitSubscription(id, "client-individual", (error, message) => {
      // A connection-level error arrives here too; the transport handles it once, via Connection.
      if (error === null && message !== undefined) this.receive(epoch, connection, message);
    });
    this.consumer = { connection, stomp };
    connection
      .sendWithReceipt("SUBSCRIBE", {
        id,
        destination: this.transport.destinationOf(this.channel, this.kind),
        ack: "client-individual",
        "activemq.prefetchSize": this.transport.settings.prefetchCount,
      }, undefined)
      .then(() => {
        this.isLive = true;
        this.markLive();
      }, ignore); // A lost connection is re-established and this subscription attached again.
  }

  /** Forgets the consumer of a connection that is gone; the broker requeues what it had sent. */
  detach(connection: Connection): void {
    if (this.consumer?.connection !== connection) return;
    this.consumer = undefined;
    this.epoch++;
    this.queue.clear();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.resubscribeTimer);
    this.transport.forget(this);
    this.queue.clear();
    // Let a running handler finish so its frame is acknowledged rather than delivered again.
    await Promise.race([this.queue.idle(), delay(HANDLER_GRACE_MS)]);
    this.dropConsumer();
    this.failLive(new TransportError({ message: "[stream] [activemq] the subscription was closed before it was live; subscribe again.", retryable: false }));
  }

  /** Ends the current broker-side consumer: UNSUBSCRIBE returns its unacknowledged messages. */
  private dropConsumer(): void {
    this.epoch++;
    this.queue.clear();
    const consumer = this.consumer;
    this.consumer = undefined;
    if (consumer?.connection.alive) consumer.stomp.unsubscribe();
  }

  private receive(epoch: number, connection: Connection, message: ActivemqStompMessage): void {
    // The body must be read even when it is stale: the client reads no further frame until then.
    const body = readBody(message);
    message.once("end", () => {
      if (epoch !== this.epoch || this.closed) return; // Requeued by the broker when the consumer ends.
      this.queue.push({ epoch, connection, message, body: body() });
    });
  }

  private settle(delivery: Delivery, handled: boolean): void {
    // Acknowledge only on the consumer that received it: an ACK for an unknown message makes
    // ActiveMQ send an ERROR frame, which ends the connection.
    if (delivery.epoch !== this.epoch || !delivery.connection.alive) return;
    // A topic keeps nothing to redeliver, so a rejected inbox frame is dropped.
    if (handled || this.kind === "inbox") delivery.connection.client.ack(delivery.message);
    else this.redeliver(delivery.connection);
  }

  /**
   * Gets a rejected frame delivered again. ActiveMQ's STOMP NACK sends a message to the dead-letter
   * queue, so instead the consumer is closed (the broker requeues every unacknowledged message,
   * in order) and a new one subscribes after a pause.
   */
  private redeliver(connection: Connection): void {
    this.dropConsumer();
    this.resubscribeTimer = setTimeout(() => {
      this.resubscribeTimer = undefined;
      if (!this.closed && this.consumer === undefined && connection.alive) this.attach(connection);
    }, this.transport.settings.redeliveryDelayMs);
  }
}

/** The transport behind {@link createActivemqTransport}. */
class ActivemqTransport implements Transport {
  readonly specificationVersion = TRANSPORT_SPECIFICATION_VERSION;
  readonly name = "activemq";
  readonly capabilities: TransportCapabilities;
  readonly settings: ResolvedSettings;
  private readonly endpoint: Endpoint;

  private connection: Connection | undefined;
  private connecting: Promise<Connection> | undefined;
  /** Publishes waiting for the first connection, in call order. */
  private readonly waitingPublishes: Array<{ send: (connection: Connection) => void; fail: (error: unknown) => void }> = [];
  private readonly subscriptions = new Set<ActivemqSubscription>();
  private reconnecting = false;
  private reconnectTimer: NodeJS.Timeout | undefined;
  /** Set when the connection is gone for good (an injected client died, or reconnect is off). */
  private failure: TransportError | undefined;
  private lastError: TransportError | undefined;
  private closing: Promise<void> | undefined;

  constructor(private readonly options: ActivemqTransportOptions) {
    this.settings = {
      persistent: options.persistent ?? true,
      prefetchCount: positiveInteger("prefetchCount", options.prefetchCount ?? 16),
      maxFrameBytes: positiveInteger("maxFrameBytes", options.maxFrameBytes ?? 104_857_600),
      reconnect: (options.reconnect ?? true) && (options.client === undefined || typeof options.client === "function"),
      reconnectInitialDelayMs: positiveInteger("reconnectInitialDelayMs", options.reconnectInitialDelayMs ?? 100),
      reconnectMaxDelayMs: positiveInteger("reconnectMaxDelayMs", options.reconnectMaxDelayMs ?? 5_000),
      redeliveryDelayMs: nonNegativeInteger("redeliveryDelayMs", options.redeliveryDelayMs ?? 500),
      connectTimeoutMs: positiveInteger("connectTimeoutMs", options.connectTimeoutMs ?? 10_000),
      heartbeatMs: nonNegativeInteger("heartbeatMs", options.heartbeatMs ?? 10_000),
    };
    this.endpoint = parseEndpoint(options);
    this.capabilities = Object.freeze({
      maxFrameBytes: this.settings.maxFrameBytes,
      ordering: "per-key",
      redelivery: true,
      retention: "until-consumed",
      exclusiveConsumer: true,
      brokerAcks: true,
    });
  }

  publish(channel: string, frame: Uint8Array, options: PublishOptions): Promise<void> {
    const refused = this.refusal(channel);
    if (refused) return Promise.reject(refused);
    if (frame.byteLength > this.settings.maxFrameBytes) {
      return Promise.reject(
        new TransportError({
          message:
            `[stream] [activemq] a frame of ${frame.byteLength} bytes exceeds maxFrameBytes ` +
            `(${this.settings.maxFrameBytes}); send smaller chunks or raise the broker's maxDataLength and maxFrameBytes.`,
          retryable: false,
        }),
      );
    }
    const { kind } = options;
    const body = Buffer.from(frame.buffer, frame.byteOffset, frame.byteLength);
    const headers: Record<string, string | number> = {
      destination: this.destinationOf(channel, kind),
      "content-length": body.byteLength,
      persistent: kind === "stream" && this.settings.persistent ? "true" : "false",
    };
    if (kind === "stream") headers.JMSXGroupID = options.key;
    const send = (connection: Connection): Promise<void> =>
      connection.sendWithReceipt("SEND", headers, body, options.signal);
    // Sent synchronously when connected: STOMP frames leave in call order, which keeps a key's
    // frames in order without awaiting each receipt.
    if (this.connection) return send(this.connection);
    if (this.reconnecting) {
      return Promise.reject(
        this.lastError ??
          new TransportError({ message: "[stream] [activemq] the connection to the broker is down; reconnecting, retry the publish." }),
      );
    }
    return new Promise<void>((resolve, reject) => {
      this.waitingPublishes.push({ send: (connection) => send(connection).then(resolve, reject), fail: reject });
      this.connect().catch(ignore);
    });
  }

  async subscribe(channel: string, handler: FrameHandler, options: SubscribeOptions): Promise<Subscription> {
    const refused = this.refusal(channel);
    if (refused) throw refused;
    if (options.signal?.aborted) throw options.signal.reason;
    const subscription = new ActivemqSubscription(this, channel, options.kind, handler);
    this.subscriptions.add(subscription);
    const onAbort = (): void => void subscription.close();
    options.signal?.addEventListener("abort", onAbort, { once: true });
    if (this.connection) subscription.attach(this.connection);
    else if (!this.reconnecting) this.connect().catch((error: unknown) => subscription.failBeforeLive(error));
    try {
      await subscription.whenLive();
    } catch (error) {
      options.signal?.removeEventListener("abort", onAbort);
      await subscription.close();
      throw options.signal?.aborted ? options.signal.reason : error;
    }
    return subscription;
  }

  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  /** Where frames of `channel` go: a queue for streams, a topic for inboxes. */
  destinationOf(channel: string, kind: ChannelKind): string {
    return kind === "inbox" ? `/topic/${channel}` : `/queue/${channel}`;
  }

  /** Called by a subscription when it closes. */
  forget(subscription: ActivemqSubscription): void {
    this.subscriptions.delete(subscription);
  }

  private refusal(channel: string): TransportError | undefined {
    if (this.closing) {
      return new TransportError({ message: "[stream] [activemq] the transport is closed; create a new one.", retryable: false });
    }
    if (this.failure) return this.failure;
    try {
      assertChannelName(channel, this.name);
    } catch (error) {
      return error as TransportError;
    }
    return undefined;
  }

  /** Opens a connection unless one is open or opening; one attempt. */
  private connect(): Promise<Connection> {
    if (this.connection) return Promise.resolve(this.connection);
    this.connecting ??= this.openClient().then(
      ({ client, owned }) => {
        this.connecting = undefined;
        const connection = new Connection(client, owned, (lost, error) => this.onLost(lost, error));
        if (this.closing) {
          void this.release(connection);
          throw new TransportError({ message: "[stream] [activemq] the transport was closed while connecting.", retryable: false });
        }
        this.adopt(connection);
        return connection;
      },
      (error: unknown) => {
        this.connecting = undefined;
        const failure = toTransportError("could not connect to the broker", error);
        this.lastError = failure;
        for (const waiter of this.waitingPublishes.splice(0)) waiter.fail(failure);
        throw failure;
      },
    );
    return this.connecting;
  }

  /** Makes `connection` current: flushes waiting publishes in order and (re-)subscribes. */
  private adopt(connection: Connection): void {
    this.connection = connection;
    this.reconnecting = false;
    this.lastError = undefined;
    for (const waiter of this.waitingPublishes.splice(0)) waiter.send(connection);
    for (const subscription of this.subscriptions) subscription.attach(connection);
  }

  private onLost(connection: Connection, cause: Error): void {
    if (this.connection !== connection) return;
    this.connection = undefined;
    const error = toTransportError("the connection to the broker was lost", cause);
    connection.retire(error);
    for (const subscription of this.subscriptions) subscription.detach(connection);
    if (connection.owned) connection.client.destroy();
    if (this.closing) return;
    if (!error.retryable) {
      // The broker refused something for good (a SUBSCRIBE it does not allow, say): a subscription
      // still waiting to go live fails now rather than being retried on every reconnect.
      for (const subscription of this.subscriptions) subscription.failBeforeLive(error);
    }
    if (this.settings.reconnect) {
      this.lastError = error;
      this.scheduleReconnect(this.settings.reconnectInitialDelayMs);
      return;
    }
    const injected = this.options.client !== undefined && typeof this.options.client !== "function";
    this.failure = toTransportError("the connection to the broker was lost", cause, {
      retryable: false,
      advice: injected
        ? "an injected client cannot be reconnected; pass a function returning a client instead, or create a new transport"
        : "reconnect is off; create a new transport",
    });
    for (const subscription of this.subscriptions) subscription.failBeforeLive(this.failure);
  }

  private scheduleReconnect(delayMs: number): void {
    this.reconnecting = true;
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = undefined;
      if (this.closing) return;
      this.connect().catch(() => {
        if (!this.closing) this.scheduleReconnect(Math.min(delayMs * 2, this.settings.reconnectMaxDelayMs));
      });
    }, delayMs);
  }

  private async openClient(): Promise<{ client: ActivemqStompClient; owned: boolean }> {
    const injected = this.options.client;
    if (typeof injected === "function") return { client: await injected(), owned: true };
    if (injected !== undefined) return { client: injected, owned: false };
    return { client: await this.connectStompit(), owned: true };
  }

  private connectStompit(): Promise<ActivemqStompClient> {
    const { host, port, ssl, login, passcode } = this.endpoint;
    const heartbeat = `${this.settings.heartbeatMs},${this.settings.heartbeatMs}`;
    const connectHeaders: Record<string, string> = { host: this.options.virtualHost ?? host, "heart-beat": heartbeat };
    if (login !== undefined) connectHeaders.login = login;
    if (passcode !== undefined) connectHeaders.passcode = passcode;
    return new Promise<ActivemqStompClient>((resolve, reject) => {
      const client = stompit.connect({
        host,
        port,
        ...(ssl ? { ssl: true as const, servername: host } : {}),
        timeout: this.settings.connectTimeoutMs,
        connectHeaders,
      } as stompit.connect.ConnectOptions);
      const timer = setTimeout(() => {
        client.destroy(client.createTransportError(`no CONNECTED frame within ${this.settings.connectTimeoutMs} ms`));
      }, this.settings.connectTimeoutMs);
      const onError = (error: Error): void => {
        clearTimeout(timer);
        client.removeListener("connect", onConnect);
        client.on("error", ignore);
        reject(error);
      };
      const onConnect = (): void => {
        clearTimeout(timer);
        // Listeners are swapped in one tick: an 'error' with no listener would throw.
        client.on("error", ignore);
        client.removeListener("error", onError);
        resolve(client as unknown as ActivemqStompClient);
      };
      client.on("error", onError);
      client.once("connect", onConnect);
    });
  }

  private async shutdown(): Promise<void> {
    clearTimeout(this.reconnectTimer);
    const closed = new TransportError({ message: "[stream] [activemq] the transport was closed.", retryable: false });
    for (const waiter of this.waitingPublishes.splice(0)) waiter.fail(closed);
    await Promise.allSettled([...this.subscriptions].map((subscription) => subscription.close()));
    const connection = this.connection ?? (await this.connecting?.catch(() => undefined));
    this.connection = undefined;
    if (connection) await this.release(connection);
  }

  /** Lets go of a connection: disconnects it when the transport owns it. */
  private async release(connection: Connection): Promise<void> {
    if (!connection.alive) return;
    const closed = new TransportError({ message: "[stream] [activemq] the transport was closed before the broker's receipt.", retryable: false });
    if (!connection.owned) {
      connection.retire(closed);
      return;
    }
    const { client } = connection;
    // DISCONNECT's receipt comes after every earlier frame's, so publishes in flight settle first.
    await new Promise<void>((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        connection.retire(closed);
        resolve();
      };
      const timer = setTimeout(() => {
        client.destroy();
        done();
      }, DISCONNECT_TIMEOUT_MS);
      client.disconnect(done);
    });
  }
}

/**
 * Collects a MESSAGE body. With a `content-length` header (every binary frame has one) the bytes
 * are copied into one buffer of that size as they arrive, so the socket's chunks can be collected
 * at once; without one, chunks are kept and joined at the end.
 */
function readBody(message: ActivemqStompMessage): () => Buffer {
  const declared = Number((message as ActivemqStompMessage & { headers?: Record<string, unknown> }).headers?.["content-length"]);
  if (Number.isSafeInteger(declared) && declared >= 0) {
    const body = Buffer.allocUnsafeSlow(declared);
    let filled = 0;
    message.on("data", (chunk: Buffer) => {
      filled += chunk.copy(body, filled);
    });
    return () => (filled === declared ? body : body.subarray(0, filled));
  }
  const chunks: Buffer[] = [];
  message.on("data", (chunk: Buffer) => chunks.push(chunk));
  return () => Buffer.concat(chunks);
}

interface Endpoint {
  readonly host: string;
  readonly port: number;
  readonly ssl: boolean;
  readonly login: string | undefined;
  readonly passcode: string | undefined;
}

/** Reads `url` (and `login`/`passcode`) once, so a malformed URL fails at creation, not per connect. */
function parseEndpoint(options: ActivemqTransportOptions): Endpoint {
  let url: URL;
  try {
    url = new URL(options.url ?? DEFAULT_URL);
  } catch (cause) {
    throw new TypeError(`[stream] [activemq] url ${JSON.stringify(options.url)} is not a URL; use stomp://host:61613.`, { cause });
  }
  const ssl = url.protocol === "stomp+ssl:" || url.protocol === "stomp+tls:" || url.protocol === "ssl:";
  if (!ssl && url.protocol !== "stomp:" && url.protocol !== "tcp:") {
    throw new TypeError(`[stream] [activemq] unsupported URL scheme ${url.protocol} in ${url.href}; use stomp:// or stomp+ssl://.`);
  }
  return {
    host: url.hostname.replace(/^\[|\]$/g, "") || "127.0.0.1",
    port: url.port === "" ? 61613 : Number(url.port),
    ssl,
    login: options.login ?? (url.username === "" ? undefined : decodeURIComponent(url.username)),
    passcode: options.passcode ?? (url.password === "" ? undefined : decodeURIComponent(url.password)),
  };
}

function positiveInteger(name: string, value: number): number {
  if (!Number.isSafeInteger(value) || value < 1) throw new RangeError(`[stream] [activemq] ${name} must be a positive integer, got ${value}`);
  return value;
}

function nonNegativeInteger(name: string, value: number): number {
  if (!Number.isSafeInteger(value) || value < 0) throw new RangeError(`[stream] [activemq] ${name} must be 0 or a positive integer, got ${value}`);
  return value;
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}

function ignore(): void {}
