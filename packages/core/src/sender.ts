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
import {
  DATA_HEADER_BYTES,
  MAX_DESTINATION_CHARS,
  encodeFrame,
  isDestinationName,
  isStreamId,
  readFrameType,
  streamIdBytes,
  writeDataHeader,
} from "./protocol/frame-codec";
import { AbortCode, type Delivery, type DeliveryModel, type Frame, FrameType, type Manifest } from "./protocol/frames";
import { createStreamHasher, MAX_BACKLOG_BYTES } from "./stream-hasher";
import { describeSource, isRereadable, readChunks, type StreamSource } from "./stream-source";
import type { ConnectionState, ConnectionWatch, Transport } from "./transport";

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
   * `"reconnecting"` while the broker connection is being re-established: the adapter says so
   * (`Transport.connection`), or publishes fail and are being retried (see
   * `StreamClientOptions.retry`); `"connected"` otherwise. Progress is reported on each change.
   * Always `"connected"` with `retry: false`.
   */
  readonly connection: ConnectionState;
  /**
   * `true` while a receiver holds the stream in its queue: it is busy with as many streams as
   * its `concurrency` allows and takes this one after them (end to end only). The sender waits
   * without resending; progress is reported on each change.
   */
  readonly queued: boolean;
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
  /**
   * `"transactional"`: the receiving application sees the stream only once all of it has arrived
   * and been verified (the receiver spools it first); with `flowControl: "broker"` the stream is
   * then all in the broker before anyone sees it. `"streaming"`: it reads while this sends.
   * @default "streaming"
   */
  readonly delivery?: Delivery;
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
  /**
   * After this long, in ms, without a word from a receiver that had answered (a live receiver
   * acks at least once a second, so three missed keepalives), while the stream is not complete,
   * the receiver is presumed dead and the Open is published again, marked as a takeover
   * (`manifest.takeover`), every `takeoverAfterMs` while the silence lasts: another receiver
   * on the destination may then take the stream over and ask for it from where it wants
   * (a Request). A file path or bytes in memory are read again from there; a `Readable` or
   * iterable can only serve what is still in its window, otherwise the send fails with a
   * {@link StreamAbortedError} telling to send again. End-to-end flow control only; keep it
   * well above the receiver's 1 s keepalive. `Infinity` turns it off. @default 3000
   */
  readonly takeoverAfterMs?: number;
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
  /** A receiver has the stream queued behind others (its Acks say `windowChunks: 0`). */
  queued: boolean;
  /** The End frame once published. */
  endFrame: Uint8Array | undefined;
  /** The End frame while held back until a receiver answers (end-to-end only). */
  heldEnd: Uint8Array | undefined;
  failure: StreamError | undefined;
}

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
  if (!isDestinationName(destination)) {
    throw new TypeError(
      `[stream] destination ${JSON.stringify(destination)} must be 1-${MAX_DESTINATION_CHARS} characters of [A-Za-z0-9._-]`,
    );
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
  if (options.delivery === "transactional" && options.model === "pull") {
    throw new TypeError('[stream] a pull stream moves when its receiver reads it; delivery "transactional" needs model "push"');
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
    ...(options.delivery === "transactional" ? { delivery: "transactional" as const } : {}),
    replyTo: inbox?.channel ?? "",
    windowChunks: flow.windowChunks,
    windowBytes: flow.windowBytes,
  };
  const retransmitAfterMs = options.retransmitAfterMs ?? 2000;
  const idleTimeoutMs = options.idleTimeoutMs ?? 120_000;
  const heartbeatMs = options.heartbeatMs ?? 5000;
  const takeoverAfterMs = options.takeoverAfterMs ?? 3000;
  if (!(takeoverAfterMs > 0)) throw new RangeError("[stream] takeoverAfterMs must be a positive number of ms (Infinity turns takeover off)");
  const rereadable = isRereadable(source);
  const { chunkBytes } = flow;
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
    queued: false,
    endFrame: undefined,
    heldEnd: undefined,
    failure: undefined,
  };
  /** Whether the receiver has said "complete". */
  let isComplete = false;
  /** The chunk a receiver asked for that the window no longer holds: the read loop starts again there. */
  let rewindTo: number | undefined;
  /** Where a pull starts: the receiver's first Request. */
  let pullFrom: number | undefined;
  /** A takeover Open is out and no receiver has made progress since. */
  let takeoverPending = false;
  let lastTakeoverAt = 0;
  /** Wakes the send loop waiting for completion, a failure or a rewind. */
  let wakeLoop: (() => void) | undefined;
  const nudge = (): void => {
    const wake = wakeLoop;
    wakeLoop = undefined;
    wake?.();
  };
  const complete = (): void => {
    isComplete = true;
    nudge();
  };
  /** Rejected into the read in progress when a rewind makes it useless. */
  const REWIND = new StreamAbortedError({ message: "[stream] rewind" });

  /** Rejects the read in progress, if any; see the read loop. */
  let interruptRead: ((error: StreamError) => void) | undefined;
  const fail = (error: StreamError): void => {
    if (state.failure) return;
    state.failure = error;
    interruptRead?.(error);
    window.fail(error);
    nudge();
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
      queued: state.queued,
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
      case FrameType.Ack: {
        // A receiver may ask for a smaller window than the manifest offered, never a larger one;
        // 0 says it has queued the stream behind others (it asks for the stream when it takes it).
        window.limit(Math.min(flow.windowChunks, Math.max(1, frame.windowChunks)));
        const queued = frame.windowChunks === 0;
        if (queued !== state.queued) {
          state.queued = queued;
          report();
        }
        if (window.acknowledgeThrough(frame.nextSequence)) {
          takeoverPending = false;
          state.lastProgressAt = state.lastHeardAt;
          state.bytesAcknowledged = frame.offset;
          report();
        }
        if (frame.complete) complete();
        return;
      }
      case FrameType.Request:
        serveRequest(frame.sequence);
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
  /**
   * A receiver asks for the stream from `sequence`: a lost chunk (resent from the window), the
   * start of a pull, or a receiver that took the stream over and starts where its partial file
   * ends, possibly before the window (the source is read again from there).
   */
  const serveRequest = (sequence: number): void => {
    if (manifest.model === "pull" && pullFrom === undefined) {
      pullFrom = sequence;
      nudge();
      return;
    }
    if (sequence >= window.acknowledged) {
      resendFrom(sequence); // in the window, or not sent yet: it comes anyway
      return;
    }
    // Before the window: only a receiver that took the stream over asks from there; from the
    // receiver that acknowledged it, it is a late copy of an old Request.
    if (!takeoverPending || state.failure) return;
    if (rereadable) {
      takeoverPending = false;
      rewindTo = sequence;
      window.reset(sequence);
      state.bytesAcknowledged = sequence * chunkBytes;
      interruptRead?.(REWIND);
      nudge();
      return;
    }
    const reason = "the source is a stream that cannot be read again; send again";
    void publish(encodeFrame({ type: FrameType.Abort, streamId, code: AbortCode.Rejected, reason }));
    fail(
      new StreamAbortedError({
        message:
          `[stream] a receiver took over stream ${streamId} (${manifest.name}) and asked for it from chunk ${sequence} (byte ${sequence * chunkBytes}), ` +
          `but only chunks from ${window.acknowledged} are still held and ${reason} (a file path or bytes can be read again).`,
      }),
    );
  };
  const unregister = inbox?.register(streamId, onControl);
  const unwatch = connection?.watch(report);

  const watchdog = setInterval(
    () => {
      const at = Date.now();
      // The connection is being re-established, our publishes held or retried (see
      // StreamClientOptions.retry, whose deadline bounds it): the receiver's silence is expected,
      // and resending would only queue more behind them.
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
      } else if (endToEnd && lossy && !state.queued && at - state.lastProgressAt > retransmitAfterMs && window.size > 0) {
        // The receiver lives (keepalives) but has not moved: stalled, or the tail was lost and it
        // cannot know. Probe with the oldest chunk and the end: a stalled receiver drops the
        // duplicates; one missing the tail takes the chunk, and the end makes it ask for the rest.
        state.lastProgressAt = at;
        const [oldest] = window.framesFrom(window.acknowledged);
        if (oldest) void publish(oldest);
        if (state.endFrame) void publish(state.endFrame);
      }
      if (endToEnd && state.heardFromReceiver && !isComplete && at - state.lastHeardAt > takeoverAfterMs && at - lastTakeoverAt > takeoverAfterMs) {
        // The receiver that had the stream is silent: presumed dead. The Open again, marked, lets
        // another receiver take the stream over (a live but slow one ignores a repeated Open).
        lastTakeoverAt = at;
        takeoverPending = true;
        const takeover = { acknowledgedBytes: state.bytesAcknowledged };
        void publish(encodeFrame({ type: FrameType.Open, streamId, manifest: { ...manifest, takeover } }));
      }
      if (at - state.lastPublishedAt > heartbeatMs) {
        publish(encodeFrame({ type: FrameType.Heartbeat, streamId, timestampMs: at }));
      }
    },
    Math.max(50, Math.min(retransmitAfterMs, heartbeatMs, takeoverAfterMs) / 2),
  );
  const onAbort = (): void => {
    publish(encodeFrame({ type: FrameType.Abort, streamId, code: AbortCode.Cancelled, reason: "the sender cancelled" }));
    fail(new StreamAbortedError({ message: `[stream] send of ${streamId} was cancelled`, cause: signal?.reason }));
  };
  signal?.addEventListener("abort", onAbort, { once: true });

  const id = streamIdBytes(streamId);
  const hasher = createStreamHasher(chunkBytes);
  let result: SendResult | undefined;
  /** Chunks hashed, from 0: a chunk read again after a rewind is not hashed again. */
  let hashedChunks = 0;
  /** Chunks the source holds, once read to its end. */
  let chunkCount: number | undefined;
  /** Where the last chunk read ends: the source's length once read to its end. */
  let sourceEnd = 0;
  /**
   * One pass over the source from chunk `from`, publishing chunks from `publishFrom` on (those
   * before are only hashed: a pull resumed further on). Returns whether the source ended
   * (`"done"`) or a receiver asked for an earlier chunk meanwhile (`"rewind"`).
   */
  const readPass = async (from: number, publishFrom: number): Promise<"done" | "rewind"> => {
    let sequence = from;
    // Iterated by hand so a failure (an abort, a receiver's refusal) or a rewind wins over a
    // source that is slow to yield its next chunk. (Not Promise.race with one long-lived promise:
    // every race would stay attached to it, and with it every chunk read.)
    const chunks = readChunks(source, chunkBytes, DATA_HEADER_BYTES, () => spare.pop() ?? Buffer.allocUnsafe(frameBytes), from * chunkBytes);
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
        if (rewindTo !== undefined) return "rewind";
        if (isComplete && chunkCount !== undefined) return "done"; // the receiver has it all after all
        let next: IteratorResult<Uint8Array>;
        try {
          next = await read();
        } catch (error) {
          if (error === REWIND && !state.failure) return "rewind";
          throw error;
        }
        if (next.done) {
          chunkCount = sequence;
          return "done";
        }
        const frame = next.value;
        const payload = frame.subarray(DATA_HEADER_BYTES);
        const offset = sequence * chunkBytes;
        const publishing = sequence >= publishFrom;
        sourceEnd = offset + payload.byteLength;
        if (publishing) await window.waitForRoom();
        if (sequence === hashedChunks) {
          if (hasher.backlogBytes >= MAX_BACKLOG_BYTES) await hasher.drained();
          hasher.update(payload);
          hashedChunks += 1;
        }
        if (state.failure) throw state.failure;
        if (rewindTo !== undefined || !publishing) {
          recycle(frame);
          if (rewindTo !== undefined) return "rewind";
        } else {
          writeDataHeader(frame, { streamId: id, sequence, offset, crc32: crc32(payload) });
          window.add(sequence, frame);
          publish(frame, sequence);
          state.bytesSent = offset + payload.byteLength;
          report();
        }
        sequence += 1;
        if (sizeBytes !== undefined && offset + payload.byteLength > sizeBytes) {
          throw new IntegrityError({ message: `[stream] the source has more than the ${sizeBytes} bytes its sizeBytes declared` });
        }
      }
    } finally {
      void chunks.return(undefined).catch(() => {});
    }
  };

  try {
    publish(encodeFrame({ type: FrameType.Open, streamId, manifest }));
    let publishFrom = 0;
    if (manifest.model === "pull") {
      while (pullFrom === undefined && !state.failure) await new Promise<void>((resolve) => (wakeLoop = resolve));
      if (state.failure) throw state.failure;
      publishFrom = pullFrom ?? 0;
      window.reset(publishFrom);
    }
    let from = 0;
    let endFrame: Uint8Array | undefined;
    for (;;) {
      let outcome: "done" | "rewind";
      try {
        outcome = await readPass(from, publishFrom);
      } catch (error) {
        if (state.failure) throw state.failure;
        const reason = StreamError.isInstance(error) ? error : new StreamAbortedError({ message: `[stream] reading the source failed: ${String(error)}`, cause: error });
        publish(encodeFrame({ type: FrameType.Abort, streamId, code: AbortCode.SourceFailed, reason: reason.message }));
        fail(reason);
        throw reason;
      }
      if (outcome === "done") {
        if (endFrame === undefined) {
          const sha256 = await hasher.digest().catch((error: unknown) => {
            const reason = StreamError.isInstance(error) ? error : new StreamAbortedError({ message: `[stream] hashing failed: ${String(error)}`, cause: error });
            void publish(encodeFrame({ type: FrameType.Abort, streamId, code: AbortCode.SourceFailed, reason: reason.message }));
            fail(reason);
            throw reason;
          });
          const byteCount = sourceEnd;
          endFrame = encodeFrame({ type: FrameType.End, streamId, chunkCount: chunkCount ?? 0, byteCount, sha256 });
          result = { streamId, byteCount, chunkCount: chunkCount ?? 0, sha256: sha256.toString("hex"), manifest };
          // End to end, the End waits until a receiver has answered, so a stream withdrawn before any
          // receiver answered can never be completed by one that starts later (see the watchdog).
          let endPublished: Promise<void> | undefined;
          if (!endToEnd || state.heardFromReceiver) endPublished = publishEnd(endFrame);
          else state.heldEnd = endFrame;
          if (!endToEnd) {
            await Promise.all([window.waitForEmpty(), endPublished]);
            if (state.failure) throw state.failure;
            return result;
          }
        } else if (state.endFrame && !isComplete) {
          void publish(state.endFrame); // a pass for a receiver that took the stream over: the End again
        }
        // Until the receiver says complete, or one that took the stream over asks from further back.
        while (!isComplete && !state.failure && rewindTo === undefined) await new Promise<void>((resolve) => (wakeLoop = resolve));
      }
      if (state.failure) throw state.failure;
      if (isComplete && result) return result;
      publishFrom = rewindTo ?? publishFrom;
      rewindTo = undefined;
      window.reset(publishFrom);
      // Chunks already hashed are read from where they are wanted; the hash never goes back.
      from = Math.min(publishFrom, hashedChunks);
    }
  } catch (error) {
    throw state.failure ?? error;
  } finally {
    hasher.dispose();
    clearInterval(watchdog);
    signal?.removeEventListener("abort", onAbort);
    unregister?.();
    unwatch?.();
  }
}
