import { EventEmitter } from "node:events";
import { ProtocolError } from "./errors/protocol-error";
import { StreamError } from "./errors/stream-error";
import { IncomingStream } from "./incoming-stream";
import { decodeFrame, encodeFrame } from "./protocol/frame-codec";
import { type AckFrame, type Frame, FrameType } from "./protocol/frames";
import type { Subscription, Transport } from "./transport";

/** Options of {@link StreamClient.receive}. */
export interface ReceiveOptions {
  /** Stops receiving, like {@link StreamReceiver.close}. */
  readonly signal?: AbortSignal;
  /**
   * A stream whose sender sends nothing (not even a heartbeat) for this long is ended with a
   * `StreamTimeoutError`: the producer is presumed dead. @default 60000
   */
  readonly producerTimeoutMs?: number;
  /** A missing chunk is asked for again after this long. @default 1000 */
  readonly gapTimeoutMs?: number;
  /** Called for frames that could not be used (not a stream frame, a bad field); they are dropped. */
  readonly onFrameError?: (error: StreamError) => void;
}

/** How many ended streams the receiver remembers, to drop their late duplicates. */
const REMEMBERED_STREAMS = 4096;
/** Frames of a stream whose open frame has not arrived yet, held per stream at most. */
const ORPHAN_FRAMES = 64;
/** Streams with frames waiting for their open frame, at most. */
const ORPHAN_STREAMS = 64;

/** Events of a {@link StreamReceiver}. */
export interface StreamReceiverEvents {
  stream: [stream: IncomingStream];
}

/**
 * Receives the streams sent to one destination. Iterate it (`for await (const s of receiver)`)
 * or listen for `'stream'`; each {@link IncomingStream} is a `Readable` of verified bytes.
 */
export class StreamReceiver extends EventEmitter<StreamReceiverEvents> implements AsyncIterable<IncomingStream> {
  /** Resolves once the subscription is live; rejects if the transport could not subscribe. */
  readonly ready: Promise<void>;
  private readonly streams = new Map<string, IncomingStream>();
  private readonly ended = new Map<string, AckFrame | undefined>();
  private readonly orphans = new Map<string, Frame[]>();
  private readonly unclaimed: IncomingStream[] = [];
  private waiter: (() => void) | undefined;
  private subscription: Subscription | undefined;
  private closed = false;
  private iterating = false;
  private readonly timer: NodeJS.Timeout;

  /** @internal Use {@link StreamClient.receive}. */
  constructor(
    private readonly transport: Transport,
    readonly destination: string,
    private readonly options: ReceiveOptions = {},
  ) {
    super();
    this.ready = transport
      .subscribe(destination, (bytes) => this.onFrame(bytes), { kind: "stream" })
      .then((subscription) => {
        this.subscription = subscription;
        if (this.closed) void subscription.close();
      });
    this.ready.catch(() => {});
    this.timer = setInterval(() => {
      const now = Date.now();
      for (const stream of this.streams.values()) stream.tick(now);
    }, 250);
    this.timer.unref();
    options.signal?.addEventListener("abort", () => void this.close(), { once: true });
  }

  private onFrame(bytes: Uint8Array): Promise<void> | undefined {
    let frame: Frame;
    try {
      frame = decodeFrame(bytes);
    } catch (error) {
      this.options.onFrameError?.(error as ProtocolError);
      return undefined;
    }
    const { streamId } = frame;
    if (this.ended.has(streamId)) {
      // A late duplicate. If its sender missed the final ack, it asks again with its end frame.
      const finalAck = this.ended.get(streamId);
      if (frame.type === FrameType.End && finalAck) this.reply(finalAck, frame.streamId, this.replyTo.get(streamId));
      return undefined;
    }
    const stream = this.streams.get(streamId);
    if (frame.type === FrameType.Open) {
      if (!stream) this.open(frame.manifest);
      return undefined;
    }
    if (frame.type === FrameType.Ack || frame.type === FrameType.Request) return undefined;
    if (!stream) {
      this.holdOrphan(frame);
      return undefined;
    }
    stream.accept(frame);
    return stream.roomForMore();
  }

  private readonly replyTo = new Map<string, string>();

  private reply(frame: Frame, key: string, channel: string | undefined): void {
    if (!channel) return;
    this.transport.publish(channel, encodeFrame(frame), { key }).catch((error: unknown) => {
      this.options.onFrameError?.(
        StreamError.isInstance(error) ? error : new ProtocolError({ message: `[stream] could not reply to ${channel}: ${String(error)}`, cause: error }),
      );
    });
  }

  private open(manifest: IncomingStream["manifest"]): void {
    if (this.closed) return;
    const { streamId, replyTo } = manifest;
    this.replyTo.set(streamId, replyTo);
    const stream = new IncomingStream(manifest, {
      reply: (frame) => this.reply(frame, streamId, replyTo),
      settled: (id, finalAck) => {
        this.streams.delete(id);
        this.ended.set(id, finalAck);
        if (this.ended.size > REMEMBERED_STREAMS) {
          const oldest = this.ended.keys().next().value as string;
          this.ended.delete(oldest);
          this.replyTo.delete(oldest);
        }
        if (!finalAck) this.replyTo.delete(id);
      },
      producerTimeoutMs: this.options.producerTimeoutMs ?? 60_000,
      gapTimeoutMs: this.options.gapTimeoutMs ?? 1000,
    });
    this.streams.set(streamId, stream);
    const held = this.orphans.get(streamId);
    this.orphans.delete(streamId);
    for (const frame of held ?? []) stream.accept(frame);
    if (this.iterating) this.unclaimed.push(stream);
    this.emit("stream", stream);
    const wake = this.waiter;
    this.waiter = undefined;
    wake?.();
  }

  private holdOrphan(frame: Frame): void {
    let held = this.orphans.get(frame.streamId);
    if (!held) {
      if (this.orphans.size >= ORPHAN_STREAMS) return;
      held = [];
      this.orphans.set(frame.streamId, held);
    }
    if (held.length < ORPHAN_FRAMES) held.push(frame);
  }

  /** Streams currently arriving. */
  get activeStreams(): number {
    return this.streams.size;
  }

  /** Yields each stream as its open frame arrives, until {@link close}. One iterator at a time. */
  async *[Symbol.asyncIterator](): AsyncIterator<IncomingStream> {
    this.iterating = true;
    await this.ready;
    for (;;) {
      const next = this.unclaimed.shift();
      if (next) {
        yield next;
        continue;
      }
      if (this.closed) return;
      await new Promise<void>((resolve) => {
        this.waiter = resolve;
      });
    }
  }

  /** Stops receiving. Streams still arriving are destroyed; their senders are told. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.timer);
    for (const stream of this.streams.values()) stream.destroy();
    const wake = this.waiter;
    this.waiter = undefined;
    wake?.();
    await this.subscription?.close();
  }
}
