import type { ChannelKind, FrameHandler, Subscription } from "@stream/core";
import { FrameQueue, type SupervisedSubscription, withTimeout } from "@stream/core/adapter-kit";
import type { Connection } from "./activemq-connection";
import { activemqErrors } from "./activemq-errors";
import type { ActivemqStompMessage, ActivemqStompSubscription } from "./activemq-transport-options";

/** How long `close()` waits for a running handler so its frame can be acknowledged. */
const HANDLER_GRACE_MS = 1_000;

let nextSubscriptionId = 1;

/** What a subscription needs from its transport. */
export interface SubscriptionHost {
  readonly settings: { readonly prefetchCount: number; readonly redeliveryDelayMs: number };
  /** Where frames of `channel` go: a queue for streams, a topic for inboxes. */
  destinationOf(channel: string, kind: ChannelKind): string;
  /** Called by a subscription when it closes. */
  forget(subscription: ActivemqSubscription): void;
}

/** A frame read off the wire, waiting for its handler. */
interface Delivery {
  readonly epoch: number;
  readonly connection: Connection;
  readonly message: ActivemqStompMessage;
  readonly body: Buffer;
}

/** One subscription, which survives reconnects by subscribing again on each new connection. */
export class ActivemqSubscription implements Subscription, SupervisedSubscription<Connection> {
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
    private readonly transport: SubscriptionHost,
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

  /** Subscribes on `connection` unless already subscribed there; the supervisor calls it on each new connection. */
  start(connection: Connection): void {
    if (this.consumer?.connection !== connection) this.attach(connection);
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
    await withTimeout(this.queue.idle(), HANDLER_GRACE_MS).catch(ignore);
    this.dropConsumer();
    this.failLive(activemqErrors.error("the subscription was closed before it was live; subscribe again", false));
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

function ignore(): void {}
