import { randomUUID } from "node:crypto";
import { AckWindow } from "./ack-window";
import { crc32 } from "./checksum";
import { IntegrityError } from "./errors/integrity-error";
import { StreamAbortedError } from "./errors/stream-aborted-error";
import { StreamError } from "./errors/stream-error";
import { StreamRefusedError } from "./errors/stream-refused-error";
import { StreamTimeoutError } from "./errors/stream-timeout-error";
import { TransportError } from "./errors/transport-error";
import { type FlowOptions, resolveFlow } from "./flow-options";
import type { Inbox } from "./inbox";
import { DATA_HEADER_BYTES, encodeFrame, isStreamId, readFrameType, streamIdBytes, writeDataHeader } from "./protocol/frame-codec";
import { AbortCode, type DeliveryModel, type Frame, FrameType, type Manifest } from "./protocol/frames";
import { createStreamHasher, MAX_BACKLOG_BYTES } from "./stream-hasher";
import { describeSource, readChunks, type StreamSource } from "./stream-source";
import type { ConnectionState, ConnectionWatch } from "./retrying-transport";
import type { Transport } from "./transport";

/**
 * Where acknowledgements that free the window come from.
 * - `"end-to-end"`: the receiver's acks (credit). Bounded memory at both ends and in the broker,
 *   and `send` resolves only once the receiver has verified the whole stream. Needs a receiver.
 * - `"broker"`: the broker's confirms. Store-and-forward: the stream is parked in the broker and
 *   `send` resolves once the broker holds all of it; no receiver needs to be running.
 */
export type FlowControl = "end-to-end" | "broker";

/** Progress of one send, reported as acknowledgements arrive. */
export interface SendProgress {
  readonly streamId: string;
  /** Payload bytes handed to the transport so far. */
  readonly bytesSent: number;
  /** Payload bytes acknowledged (by the receiver or the broker, per {@link FlowControl}). */
  readonly bytesAcknowledged: number;
  /** Total bytes, when known. */
  readonly sizeBytes?: number;
  /**
   * `"reconnecting"` while publishes fail and are being retried (the adapter re-establishes its
   * connection; see `StreamClientOptions.retry`), `"connected"` otherwise. Progress is reported
   * on each change.
   */
  readonly connection: ConnectionState;
}

/** Options of {@link StreamClient.send}. */
export interface SendOptions extends FlowOptions {
  /** Where the stream goes: a queue / topic name of `[A-Za-z0-9._-]`. */
  readonly destination: string;
  /** The name receivers see, e.g. a file name. @default the file's base name, or `"stream"` */
  readonly name?: string;
  /** @default "application/octet-stream" */
  readonly contentType?: string;
  /** Application key/values carried in the manifest. */
  readonly metadata?: Readonly<Record<string, string>>;
  /** Total bytes, when the source cannot tell (a file's size is read from disk). The receiver holds the sender to it. */
  readonly sizeBytes?: number;
  /** Push streams at once; pull waits until a receiver asks for the stream. @default "push" */
  readonly model?: DeliveryModel;
  /** @default "end-to-end" */
  readonly flowControl?: FlowControl;
  /** The stream's identity; give one to make a send idempotent across restarts. @default a random UUID */
  readonly streamId?: string;
  /** Cancels the send; the receiver's stream errors with {@link StreamAbortedError}. */
  readonly signal?: AbortSignal;
  /** Called as acknowledgements arrive. */
  readonly onProgress?: (progress: SendProgress) => void;
  /**
   * With no acknowledgement progress for this long, frames in flight are sent again, when the
   * transport can lose frames (`retention: "none"` or no redelivery). @default 2000
   */
  readonly retransmitAfterMs?: number;
  /**
   * Fails the send with {@link StreamTimeoutError} after this long, in ms, without a word from any
   * receiver. The stream is then withdrawn: an Abort follows its frames, so a receiver that starts
   * later discards it, and it is safe to send again. @default 120000
   */
  readonly idleTimeoutMs?: number;
  /** A heartbeat goes out after this long with nothing else sent, so receivers know the sender lives. @default 5000 */
  readonly heartbeatMs?: number;
}

/** What a completed send reports. */
export interface SendResult {
  readonly streamId: string;
  readonly byteCount: number;
  readonly chunkCount: number;
  /** SHA-256 of the whole stream, lower-case hex. */
  readonly sha256: string;
  readonly manifest: Manifest;
}

/** The sender's view of where it is; shared by the send loop and the control-frame handler. */
interface SendState {
  bytesSent: number;
  bytesAcknowledged: number;
  lastProgressAt: number;
  lastHeardAt: number;
  lastPublishedAt: number;
  heardFromReceiver: boolean;
  /** The End frame once published. */
  endFrame: Uint8Array | undefined;
  /** The End frame while held back until a receiver answers (end-to-end only). */
  heldEnd: Uint8Array | undefined;
  failure: StreamError | undefined;
}

const CHANNEL = /^[A-Za-z0-9._-]{1,180}$/;

/**
 * Sends one stream: reads the source chunk by chunk, never more than the window ahead of the
 * acknowledgements, and resolves once the stream is acknowledged whole. Used by
 * {@link StreamClient.send}; see there.
 */
export async function sendStream(
  transport: Transport,
  openInbox: () => Promise<Inbox>,
  source: StreamSource,
  options: SendOptions,
  connection?: ConnectionWatch,
): Promise<SendResult> {
  const { destination, signal } = options;
  if (!CHANNEL.test(destination)) {
    throw new TypeError(`[stream] destination ${JSON.stringify(destination)} must be 1-180 characters of [A-Za-z0-9._-]`);
  }
  const streamId = options.streamId ?? randomUUID();
  if (!isStreamId(streamId)) throw new TypeError("[stream] streamId must be a lower-case UUID");
  signal?.throwIfAborted();
  const flow = resolveFlow(transport.capabilities, options);
  const flowControl = options.flowControl ?? "end-to-end";
  const endToEnd = flowControl === "end-to-end";
  if (!endToEnd && (!transport.capabilities.brokerAcks || transport.capabilities.retention === "none")) {
    throw new TypeError(
      `[stream] flowControl "broker" needs a broker that acknowledges durably; ${transport.name} ` +
        `(brokerAcks ${transport.capabilities.brokerAcks}, retention "${transport.capabilities.retention}") could lose the stream. Use "end-to-end".`,
    );
  }
  if (!endToEnd && options.model === "pull") {
    throw new TypeError('[stream] a pull stream waits for its receiver\'s request, so it needs flowControl "end-to-end"');
  }
  const inbox = endToEnd ? await openInbox() : undefined;
  const info = await describeSource(source);
  const sizeBytes = options.sizeBytes ?? info.sizeBytes;
  const manifest: Manifest = {
    streamId,
    name: options.name ?? info.name ?? "stream",
    ...(sizeBytes === undefined ? {} : { sizeBytes }),
    contentType: options.contentType ?? "application/octet-stream",
    chunkBytes: flow.chunkBytes,
    metadata: { ...options.metadata },
    createdAt: new Date().toISOString(),
    model: options.model ?? "push",
    replyTo: inbox?.channel ?? "",
    windowChunks: flow.windowChunks,
    windowBytes: flow.windowBytes,
  };
  const retransmitAfterMs = options.retransmitAfterMs ?? 2000;
  const idleTimeoutMs = options.idleTimeoutMs ?? 120_000;
  const heartbeatMs = options.heartbeatMs ?? 5000;
  const lossy = transport.capabilities.retention === "none" || !transport.capabilities.redelivery;

  // Frame buffers are reused once acknowledged and no publish holds them any more: a stream of
  // any length allocates about one window of them, so memory stays flat instead of waiting for
  // a GC to free a gigabyte of spent chunks.
  const frameBytes = DATA_HEADER_BYTES + flow.chunkBytes;
  const spare: Uint8Array[] = [];
  const publishing = new Map<Uint8Array, number>();
  const recycle = (frame: Uint8Array): void => {
    if (frame.byteLength === frameBytes && spare.length <= flow.windowChunks) spare.push(frame);
  };
  const window = new AckWindow(flow.windowChunks, flow.windowBytes, (frame) => {
    if (!publishing.has(frame)) recycle(frame);
  });
  const now = Date.now();
  const state: SendState = {
    bytesSent: 0,
    bytesAcknowledged: 0,
    lastProgressAt: now,
    lastHeardAt: now,
    lastPublishedAt: now,
    heardFromReceiver: false,
    endFrame: undefined,
    heldEnd: undefined,
    failure: undefined,
  };
  let complete: (() => void) | undefined;
  const completed = new Promise<void>((resolve) => {
    complete = resolve;
  });
  let started: ((sequence: number) => void) | undefined;
  const requested = new Promise<number>((resolve) => {
    started = resolve;
  });

  /** Rejects the read in progress, if any; see the read loop. */
  let interruptRead: ((error: StreamError) => void) | undefined;
  const fail = (error: StreamError): void => {
    if (state.failure) return;
    state.failure = error;
    interruptRead?.(error);
    window.fail(error);
    complete?.();
    started?.(0);
  };
  /** Publishes without waiting; a failure fails the send. The promise never rejects. */
  const publish = (frame: Uint8Array, sequence?: number): Promise<void> => {
    state.lastPublishedAt = Date.now();
    publishing.set(frame, (publishing.get(frame) ?? 0) + 1);
    const settled = (): void => {
      const count = (publishing.get(frame) ?? 1) - 1;
      if (count > 0) return void publishing.set(frame, count);
      publishing.delete(frame);
      if (sequence !== undefined && !window.holds(frame) && !state.failure) recycle(frame);
    };
    // The send's signal stops its publishes (and their retries), but not the Abort that tells the receiver.
    const stoppable = signal !== undefined && readFrameType(frame) !== FrameType.Abort;
    return transport.publish(destination, frame, { key: streamId, kind: "stream", ...(stoppable ? { signal } : {}) }).finally(settled).then(
      () => {
        if (!endToEnd && sequence !== undefined) {
          window.release(sequence);
          state.bytesAcknowledged += frame.byteLength - DATA_HEADER_BYTES;
          report();
        }
      },
      (error: unknown) =>
        fail(
          StreamError.isInstance(error)
            ? error
            : new TransportError({ message: `[stream] [${transport.name}] publish failed: ${String(error)}`, cause: error }),
        ),
    );
  };
  const report = (): void =>
    options.onProgress?.({
      streamId,
      bytesSent: state.bytesSent,
      bytesAcknowledged: state.bytesAcknowledged,
      ...(sizeBytes === undefined ? {} : { sizeBytes }),
      connection: connection?.state ?? "connected",
    });
  const resendFrom = (sequence: number): void => {
    for (const frame of window.framesFrom(sequence)) void publish(frame);
    if (state.endFrame) void publish(state.endFrame);
  };

  /** Publishes the End frame; the watchdog sends it again while the receiver is silent. */
  const publishEnd = (frame: Uint8Array): Promise<void> => {
    state.heldEnd = undefined;
    state.endFrame = frame;
    return publish(frame);
  };
  const onControl = (frame: Frame): void => {
    state.lastHeardAt = Date.now();
    state.heardFromReceiver = true;
    if (state.heldEnd && !state.failure && frame.type !== FrameType.Abort) void publishEnd(state.heldEnd);
    switch (frame.type) {
      case FrameType.Ack:
        // A receiver may ask for a smaller window than the manifest offered, never a larger one.
        window.limit(Math.min(flow.windowChunks, Math.max(1, frame.windowChunks)));
        if (window.acknowledgeThrough(frame.nextSequence)) {
          state.lastProgressAt = state.lastHeardAt;
          state.bytesAcknowledged = frame.offset;
          report();
        }
        if (frame.complete) complete?.();
        return;
      case FrameType.Request:
        if (manifest.model === "pull") started?.(frame.sequence);
        resendFrom(frame.sequence);
        return;
      case FrameType.Abort: {
        const message = `[stream] the receiver aborted stream ${streamId}: ${frame.reason}`;
        if (frame.code === AbortCode.Rejected) {
          fail(new StreamRefusedError({ message: `[stream] the receiver refused stream ${streamId} (${manifest.name}): ${frame.reason}. Nothing was kept.`, reason: frame.reason }));
        } else {
          fail(
            frame.code === AbortCode.IntegrityFailed
              ? new IntegrityError({ message, retryable: true })
              : new StreamAbortedError({ message, retryable: frame.code === AbortCode.TimedOut }),
          );
        }
        return;
      }
      default:
    }
  };
  const unregister = inbox?.register(streamId, onControl);
  const unwatch = connection?.watch(report);

  const watchdog = setInterval(
    () => {
      const at = Date.now();
      // Our own publishes are being retried (see StreamClientOptions.retry, which bounds it): the
      // receiver's silence is expected, and resending would only queue more behind the retries.
      if (connection?.state === "reconnecting") return void (state.lastHeardAt = state.lastProgressAt = at);
      if (endToEnd && at - state.lastHeardAt > idleTimeoutMs) {
        // Withdrawn: on a broker that keeps frames, the Abort waits behind them, and (the End
        // being held until a receiver answers) a receiver that starts later meets the Abort
        // before it can complete the stream, so it discards it.
        const reason = `the sender withdrew the stream: no receiver acknowledged it within ${idleTimeoutMs} ms`;
        void publish(encodeFrame({ type: FrameType.Abort, streamId, code: AbortCode.TimedOut, reason }));
        fail(
          new StreamTimeoutError({
            message:
              `[stream] no receiver acknowledged stream ${streamId} (${manifest.name}) on ${destination} within ${idleTimeoutMs} ms, ` +
              "so it was withdrawn: a receiver that starts later discards it, and it is safe to send again (under the same streamId or a new one). " +
              "Is a receiver running? Otherwise raise idleTimeoutMs.",
          }),
        );
        return;
      }
      // A live receiver acknowledges at least every second (a keepalive when it has nothing new),
      // so silence means frames or acks were lost. On a lossy transport everything in flight
      // goes again; on any transport the end frame does, since the final ack rides the inbox.
      if (endToEnd && at - state.lastHeardAt > retransmitAfterMs && at - state.lastProgressAt > retransmitAfterMs) {
        state.lastProgressAt = at;
        if (lossy && (window.size > 0 || state.endFrame)) {
          if (!state.heardFromReceiver) void publish(encodeFrame({ type: FrameType.Open, streamId, manifest }));
          resendFrom(window.acknowledged);
        } else if (state.endFrame) {
          void publish(state.endFrame);
        }
      } else if (endToEnd && lossy && at - state.lastProgressAt > retransmitAfterMs && window.size > 0) {
        // The receiver lives (keepalives) but has not moved: stalled, or the tail was lost and it
        // cannot know. Probe with the oldest chunk and the end: a stalled receiver drops the
        // duplicates; one missing the tail takes the chunk, and the end makes it ask for the rest.
        state.lastProgressAt = at;
        const [oldest] = window.framesFrom(window.acknowledged);
        if (oldest) void publish(oldest);
        if (state.endFrame) void publish(state.endFrame);
      }
      if (at - state.lastPublishedAt > heartbeatMs) {
        publish(encodeFrame({ type: FrameType.Heartbeat, streamId, timestampMs: at }));
      }
    },
    Math.max(50, Math.min(retransmitAfterMs, heartbeatMs) / 2),
  );
  const onAbort = (): void => {
    publish(encodeFrame({ type: FrameType.Abort, streamId, code: AbortCode.Cancelled, reason: "the sender cancelled" }));
    fail(new StreamAbortedError({ message: `[stream] send of ${streamId} was cancelled`, cause: signal?.reason }));
  };
  signal?.addEventListener("abort", onAbort, { once: true });

  try {
    publish(encodeFrame({ type: FrameType.Open, streamId, manifest }));
    if (manifest.model === "pull") {
      const from = await requested;
      if (from !== 0 && !state.failure) {
        const reason = "resuming a pull from an offset is not supported by this sender yet";
        void publish(encodeFrame({ type: FrameType.Abort, streamId, code: AbortCode.Rejected, reason }));
        fail(new StreamAbortedError({ message: `[stream] the receiver asked to resume ${streamId} from chunk ${from}; ${reason}` }));
      }
      if (state.failure) throw state.failure;
    }
    const id = streamIdBytes(streamId);
    const hasher = createStreamHasher(flow.chunkBytes);
    let sequence = 0;
    // Iterated by hand so a failure (an abort, a receiver's refusal) wins over a source that
    // is slow to yield its next chunk. (Not Promise.race with one long-lived promise: every race
    // would stay attached to it, and with it every chunk read.)
    const chunks = readChunks(source, flow.chunkBytes, DATA_HEADER_BYTES, () => spare.pop() ?? Buffer.allocUnsafe(frameBytes));
    const read = () =>
      new Promise<IteratorResult<Uint8Array>>((resolve, reject) => {
        interruptRead = reject;
        chunks.next().then(resolve, reject);
      }).finally(() => {
        interruptRead = undefined;
      });
    try {
      for (;;) {
        if (state.failure) throw state.failure;
        const next = await read();
        if (next.done) break;
        const frame = next.value;
        await window.waitForRoom();
        if (hasher.backlogBytes >= MAX_BACKLOG_BYTES) await hasher.drained();
        const payload = frame.subarray(DATA_HEADER_BYTES);
        hasher.update(payload);
        writeDataHeader(frame, { streamId: id, sequence, offset: state.bytesSent, crc32: crc32(payload) });
        window.add(sequence, frame);
        publish(frame, sequence);
        sequence += 1;
        state.bytesSent += payload.byteLength;
        report();
        if (sizeBytes !== undefined && state.bytesSent > sizeBytes) {
          throw new IntegrityError({ message: `[stream] the source has more than the ${sizeBytes} bytes its sizeBytes declared` });
        }
      }
    } catch (error) {
      void chunks.return(undefined).catch(() => {});
      hasher.dispose();
      if (state.failure) throw state.failure;
      const reason = StreamError.isInstance(error) ? error : new StreamAbortedError({ message: `[stream] reading the source failed: ${String(error)}`, cause: error });
      publish(encodeFrame({ type: FrameType.Abort, streamId, code: AbortCode.SourceFailed, reason: reason.message }));
      fail(reason);
      throw reason;
    }
    const sha256 = await hasher.digest().catch((error: unknown) => {
      const reason = StreamError.isInstance(error) ? error : new StreamAbortedError({ message: `[stream] hashing failed: ${String(error)}`, cause: error });
      void publish(encodeFrame({ type: FrameType.Abort, streamId, code: AbortCode.SourceFailed, reason: reason.message }));
      fail(reason);
      throw reason;
    });
    const endFrame = encodeFrame({ type: FrameType.End, streamId, chunkCount: sequence, byteCount: state.bytesSent, sha256 });
    // End to end, the End waits until a receiver has answered, so a stream withdrawn before any
    // receiver answered can never be completed by one that starts later (see the watchdog).
    let endPublished: Promise<void> | undefined;
    if (!endToEnd || state.heardFromReceiver) endPublished = publishEnd(endFrame);
    else state.heldEnd = endFrame;
    if (endToEnd) await completed;
    else await Promise.all([window.waitForEmpty(), endPublished]);
    if (state.failure) throw state.failure;
    return { streamId, byteCount: state.bytesSent, chunkCount: sequence, sha256: sha256.toString("hex"), manifest };
  } catch (error) {
    throw state.failure ?? error;
  } finally {
    clearInterval(watchdog);
    signal?.removeEventListener("abort", onAbort);
    unregister?.();
    unwatch?.();
  }
}
