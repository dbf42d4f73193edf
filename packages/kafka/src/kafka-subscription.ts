import type { FrameHandler, Subscription } from "@stream/core";
import { PendingCall, retryDelayMs, withTimeout } from "@stream/core/adapter-kit";
import type { KafkaClient, KafkaConsumer } from "./kafka-client";
import { kafkaErrors, toTransportError } from "./kafka-errors";

/** A failed consumer is replaced after 0.5 s, 1 s, 2 s, ... at most 30 s apart. */
const RESTART_BACKOFF = { initialDelayMs: 500, maxDelayMs: 30_000 };

/** What one subscription reads and how long it may take to start. */
export interface KafkaSubscriptionSpec {
  readonly topic: string;
  readonly groupId: string;
  readonly fromBeginning: boolean;
  readonly subscribeTimeoutMs: number;
}

/**
 * One subscription: a consumer in its own group (stream channels: the destination's shared group;
 * inboxes: a group of its own) that hands frames to core's handler, and a fresh consumer, after a
 * backoff, whenever the client library gives one up, until closed.
 *
 * Not core's `ConnectionSupervisor`: both client libraries own their broker connections and
 * re-open them inside their own request retries, so there is no connection for the adapter to
 * open, watch or replay onto. What is left is replacing one consumer the library gave up on, per
 * subscription, with no publishes waiting on it and no state to report (`Transport.connection`
 * is absent here, see `createKafkaTransport`): a timer and core's `retryDelayMs`.
 */
export class KafkaSubscription implements Subscription {
  private consumer: KafkaConsumer | undefined;
  private closed = false;
  private closing: Promise<void> | undefined;
  private restartTimer: NodeJS.Timeout | undefined;
  private restartAttempt = 0;
  /** Ends the wait for a pending handler when the subscription closes, so closing never hangs. */
  private readonly closedSignal = new AbortController();

  constructor(
    private readonly client: KafkaClient,
    private readonly spec: KafkaSubscriptionSpec,
    private readonly handler: FrameHandler,
    private readonly onClosed: (subscription: KafkaSubscription) => Promise<void>,
  ) {}

  /** Starts the consumer; resolves once it is live, rejects (and closes) after `subscribeTimeoutMs` or on abort. */
  async start(signal?: AbortSignal): Promise<void> {
    const { topic, groupId, subscribeTimeoutMs } = this.spec;
    const aborted = new PendingCall(signal, (reason, call) =>
      call.reject(kafkaErrors.error(`subscribe to topic ${topic} aborted by its signal; subscribe again when needed`, false, reason)),
    );
    const timedOut = () =>
      kafkaErrors.error(
        `consumer of topic ${topic} did not join group ${groupId} within ${subscribeTimeoutMs} ms; ` +
          "check the broker's group coordinator (offsets topic) and subscribeTimeoutMs",
        true,
      );
    try {
      await withTimeout(Promise.race([this.startConsumer(), aborted.promise]), subscribeTimeoutMs, timedOut);
    } catch (error) {
      await this.close();
      throw toTransportError(`could not subscribe to topic ${topic} with ${this.client.library}`, error);
    } finally {
      aborted.resolve();
    }
  }

  private async startConsumer(): Promise<void> {
    const consumer = this.client.consumer({
      topic: this.spec.topic,
      groupId: this.spec.groupId,
      fromBeginning: this.spec.fromBeginning,
      handle: (value) => this.handle(value),
      onFailure: () => {
        if (!this.closed && consumer === this.consumer) this.scheduleRestart();
      },
    });
    this.consumer = consumer;
    await consumer.start();
    this.restartAttempt = 0;
  }

  /** A fresh consumer after 0.5 s, 1 s, 2 s, ... (at most 30 s), so the subscription outlives any outage. */
  private scheduleRestart(): void {
    const delayMs = retryDelayMs(RESTART_BACKOFF, this.restartAttempt++, false);
    this.restartTimer = setTimeout(() => {
      this.restartTimer = undefined;
      if (this.closed) return;
      void this.consumer?.close();
      this.startConsumer().catch(() => {
        if (!this.closed) this.scheduleRestart();
      });
    }, delayMs);
  }

  /**
   * Hands one frame to core. Resolves `true` once core took it (the consumer commits its offset),
   * `false` when the subscription closed meanwhile (nothing is committed: the group redelivers the
   * frame to whoever comes next); rejects when core rejected it (the consumer reads it again).
   */
  private handle(frame: Uint8Array): Promise<boolean> {
    if (this.closed) return Promise.resolve(false);
    return new Promise<boolean>((resolve, reject) => {
      const onClose = (): void => resolve(false);
      this.closedSignal.signal.addEventListener("abort", onClose, { once: true });
      Promise.resolve()
        .then(() => this.handler(frame))
        .then(() => resolve(!this.closed), reject)
        .finally(() => this.closedSignal.signal.removeEventListener("abort", onClose));
    });
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      this.closed = true;
      this.closedSignal.abort();
      if (this.restartTimer) clearTimeout(this.restartTimer);
      await this.consumer?.close();
      await this.onClosed(this);
    })();
    return this.closing;
  }
}
