import { EventEmitter } from "node:events";
import { AckWindow } from "./ack-window";
import { crc32 } from "./checksum";
import { IntegrityError } from "./errors/integrity-error";
import { StreamAbortedError } from "./errors/stream-aborted-error";
import { StreamError } from "./errors/stream-error";
import { StreamExpiredError } from "./errors/stream-expired-error";
import { StreamRefusedError } from "./errors/stream-refused-error";
import { StreamTimeoutError } from "./errors/stream-timeout-error";
import { TransportError } from "./errors/transport-error";
import { FramePool } from "./frame-pool";
import type { Inbox } from "./inbox";
import { DATA_HEADER_BYTES, encodeFrame, readFrameType, streamIdBytes, writeDataHeader } from "./protocol/frame-codec";
import { AbortCode, type AbortFrame, type AckFrame, type Frame, FrameType, type Manifest, type TakeoverInfo } from "./protocol/frames";
import { compressChunk } from "./compression";
import type { ConnectionWatch } from "./transport";
import { createManifest, planSend, type SendPlan } from "./send-plan";
import type { SendOptions, SendProgress, SendResult } from "./sender";
import { createStreamHasher, MAX_BACKLOG_BYTES, type StreamHasher } from "./stream-hasher";
import { describeSource, isRereadable, readChunks, sourceName, type StreamSource } from "./stream-source";
import { checkStatusInterval, type TransferEvent, type TransferStatus, TransferStatusTracker } from "./transfer-status";
import type { Transport } from "./transport";

/**
 * Where an {@link OutgoingStream} is; `'phase'` is emitted on each change. It starts `"opening"`
 * and ends in one of the last three.
 * - `"opening"`: the inbox is being opened and the source described; the Open is not out yet.
 * - `"waiting"`: the Open is out and no receiver has taken the stream: none has answered (a push
 *   publishes up to a window meanwhile, and holds its End back), or none has asked for it (a pull).
 * - `"queued"`: a receiver holds it queued behind other streams (its Acks say `windowChunks: 0`);
 *   nothing is resent until the receiver asks for it.
 * - `"sending"`: a receiver takes it; chunks go out as its acknowledgements free the window.
 * - `"paused"`: {@link OutgoingStream.pause}: no new chunk goes out (those in flight are still
 *   acknowledged, heartbeats keep the receiver from taking the sender for dead) until `resume()`.
 * - `"reconnecting"`: publishes fail and are being retried while the adapter reconnects
 *   (`SendProgress.connection`); the idle and retransmit clocks wait.
 * - `"finishing"`: every chunk and the End are out; waiting for the receiver's final Ack (or,
 *   with `flowControl: "broker"`, for the broker's confirms).
 * - `"completed"`: `result` has resolved.
 * - `"failed"`: `result` rejects: the receiver aborted or refused, no receiver in time, the source
 *   or the transport failed.
 * - `"cancelled"`: {@link OutgoingStream.cancel} or the send's `signal`; `result` rejects with a
 *   `StreamAbortedError`.
 */
export type SendPhase = "opening" | "waiting" | "queued" | "sending" | "paused" | "reconnecting" | "finishing" | "completed" | "failed" | "cancelled";

/** Events of an {@link OutgoingStream}. */
export interface OutgoingStreamEvents {
  /** The phase changed; see {@link SendPhase}. */
  phase: [phase: SendPhase];
  /** Bytes sent or acknowledged, the connection or the queued state changed (what `onProgress` gets). */
  progress: [progress: SendProgress];
  /** Every `SendOptions.statusIntervalMs` while the send goes on, at once on each phase change, and a last one at the end (what `onStatus` gets). */
  status: [status: TransferStatus<SendPhase>];
}

/** The phases a send ends in. */
const FINAL_SEND_PHASES: readonly SendPhase[] = ["completed", "failed", "cancelled"];

/** @internal What a client gives each outgoing stream. */
export interface OutgoingStreamContext {
  readonly transport: Transport;
  /** The client's inbox for the destination (end to end only), where receivers' control frames arrive. */
  readonly openInbox: () => Promise<Inbox>;
  /** The connection state (the adapter's word and publishes being retried), when publishes are retried. */
  readonly connection?: ConnectionWatch;
}

/** Rejected into the read in progress when a rewind makes it useless. */
const REWIND = new StreamAbortedError({ message: "[stream] rewind" });

/** A failure that is not a `StreamError` yet, as one. */
function asStreamError(error: unknown, what: string): StreamError {
  return StreamError.isInstance(error) ? error : new StreamAbortedError({ message: `[stream] ${what}: ${String(error)}`, cause: error });
}

/**
 * One stream being sent, the mirror of {@link IncomingStream}: reads the source chunk by chunk,
 * never more than the window ahead of the acknowledgements, and {@link result} resolves once the
 * stream is acknowledged whole. Made by `StreamClient.startSend` (`StreamClient.send` is
 * `startSend(...).result`).
 *
 * Three things drive it: the send loop (read, frame, publish, End), the control frames a receiver
 * sends to the inbox (Ack, Request, Abort), and a watchdog (idle timeout, retransmission,
 * takeover, heartbeat).
 */
export class OutgoingStream extends EventEmitter<OutgoingStreamEvents> {
  /** The stream's identity: `options.streamId`, or a random UUID. */
  readonly streamId: string;
  /** Resolves once the receiver (or, with `flowControl: "broker"`, the broker) has all of it; rejects with a `StreamError`. */
  readonly result: Promise<SendResult>;

  private readonly plan: SendPlan;
  private readonly window: AckWindow;
  private readonly frames: FramePool;
  private readonly hasher: StreamHasher;
  /** Aborted by {@link cancel}; stops publishes and their retries like the send's own signal. */
  private readonly cancelling = new AbortController();
  private readonly signal: AbortSignal;
  private readonly id: Uint8Array;
  private readonly tracker: TransferStatusTracker<SendPhase>;

  private shownPhase: SendPhase = "opening";
  /** Where the send loop is; {@link phase} adds what receivers and the connection say. */
  private stage: "opening" | "sending" | "finishing" = "opening";
  private outcome: "completed" | "failed" | "cancelled" | undefined;
  private failure: StreamError | undefined;
  private openManifest: Manifest | undefined;
  /** {@link openManifest} as the Open carries it: sealed, when the stream is encrypted. */
  private wireManifest: Manifest | undefined;
  /** `manifest.expiresAt` in ms since the epoch: what every frame is published with. */
  private expiresAtMs: number | undefined;
  private sizeBytes: number | undefined;
  private sent: Omit<SendResult, "bytesPublished"> | undefined;

  private bytesOut = 0;
  private bytesIn = 0;
  /** Payload bytes of every Data frame published, resends included. */
  private bytesPublished = 0;
  /** The plain chunk bytes of each Data frame in flight, by frame. */
  private readonly plainBytes = new WeakMap<Uint8Array, number>();
  private lastProgressAt = Date.now();
  private lastHeardAt = Date.now();
  private lastPublishedAt = Date.now();
  private heardFromReceiver = false;
  /** A receiver has the stream queued behind others (its Acks say `windowChunks: 0`). */
  private queued = false;
  /** The receiver has said "complete". */
  private receiverComplete = false;
  /** The End frame once published. */
  private endFrame: Uint8Array | undefined;
  /** The End frame while held back until a receiver answers (end-to-end only). */
  private heldEnd: Uint8Array | undefined;
  /** The chunk a receiver asked for that the window no longer holds: the read loop starts again there. */
  private rewindTo: number | undefined;
  /** Where a pull starts: the receiver's first Request. */
  private pullFrom: number | undefined;
  /** A takeover Open is out and no receiver has made progress since. */
  private takeoverPending = false;
  private lastTakeoverAt = 0;
  /** Chunks hashed, from 0: a chunk read again after a rewind is not hashed again. */
  private hashedChunks = 0;
  /** Chunks the source holds, once read to its end. */
  private chunkCount: number | undefined;
  /** Where the last chunk read ends: the source's length once read to its end. */
  private sourceEnd = 0;

  /** Wakes the send loop waiting for completion, a failure, a rewind or a pull's first Request. */
  private wakeLoop: (() => void) | undefined;
  /** Rejects the read in progress, if any; see {@link readPass}. */
  private interruptRead: ((error: StreamError) => void) | undefined;
  private watchdog: NodeJS.Timeout | undefined;
  private unregister: (() => void) | undefined;
  private unwatch: (() => void) | undefined;

  /**
   * @internal Use `StreamClient.startSend`. Throws `TypeError` or `RangeError` for options that
   * cannot work, and the signal's reason when it is already aborted.
   */
  constructor(
    private readonly source: StreamSource,
    private readonly options: SendOptions,
    private readonly context: OutgoingStreamContext,
  ) {
    super();
    this.plan = planSend(context.transport, options);
    this.streamId = this.plan.streamId;
    this.id = streamIdBytes(this.streamId);
    const { flow } = this.plan;
    this.frames = new FramePool(DATA_HEADER_BYTES + flow.chunkBytes, flow.windowChunks);
    this.window = new AckWindow(flow.windowChunks, flow.windowBytes, (frame) => {
      if (!this.frames.isHeld(frame)) this.frames.recycle(frame);
    });
    this.hasher = createStreamHasher(flow.chunkBytes);
    this.signal = options.signal ? AbortSignal.any([options.signal, this.cancelling.signal]) : this.cancelling.signal;
    this.signal.addEventListener("abort", this.onCancel, { once: true });
    checkStatusInterval(options.statusIntervalMs, "statusIntervalMs");
    this.tracker = new TransferStatusTracker<SendPhase>(
      {
        streamId: this.streamId,
        direction: "send",
        chunkBytes: flow.chunkBytes,
        finalPhases: FINAL_SEND_PHASES,
        read: () => ({
          phase: this.shownPhase,
          name: this.openManifest?.name ?? options.name ?? sourceName(source) ?? "stream",
          bytes: this.bytesIn,
          sizeBytes: this.sizeBytes ?? this.sent?.byteCount,
          connection: this.context.connection?.state ?? "connected",
        }),
        result: () => this.result,
        emit: (status) => {
          options.onStatus?.(status);
          this.emit("status", status);
        },
      },
      options.statusIntervalMs,
    );
    this.on("phase", (phase) => this.tracker.phaseChanged(phase));
    this.result = this.run();
    // `result` is the channel for the error; a stream watched only through its events does not crash the process.
    this.result.catch(() => {});
  }

  /** Where the send is; see {@link SendPhase}. */
  get phase(): SendPhase {
    return this.shownPhase;
  }

  /** What the Open carries, once published (from `"waiting"` on). */
  get manifest(): Manifest | undefined {
    return this.openManifest;
  }

  /** The send's {@link TransferStatus} now: bytes, chunks, rate, ETA, phase, connection. */
  get status(): TransferStatus<SendPhase> {
    return this.tracker.snapshot();
  }

  /**
   * The send's events from now on, as an async iterator: `{ type: "phase", phase, status }` on
   * each phase change and `{ type: "status", status }` every `statusIntervalMs`; it ends after
   * the final phase (`"completed"`, `"failed"` with `status.failure`, `"cancelled"`). A consumer
   * that falls behind gets only the newest periodic status; at most 32 events wait.
   */
  events(): AsyncIterableIterator<TransferEvent<SendPhase>> {
    return this.tracker.events();
  }

  /** Payload bytes handed to the transport so far. */
  get bytesSent(): number {
    return this.bytesOut;
  }

  /** Payload bytes acknowledged, by the receiver or the broker (see `SendOptions.flowControl`). */
  get bytesAcknowledged(): number {
    return this.bytesIn;
  }

  /**
   * Stops the send: the receiver is told (Abort Cancelled) and `result` rejects with a
   * `StreamAbortedError` whose `cause` is `reason`. Does nothing once the send has ended.
   */
  cancel(reason?: unknown): void {
    this.cancelling.abort(reason);
  }

  /**
   * Holds the send: no new chunk is published until {@link resume} (the phase says `"paused"`);
   * chunks in flight are still acknowledged, and heartbeats tell the receiver the sender lives.
   * The receiver's `producerTimeoutMs` still bounds a pause from its side only if the sender's
   * heartbeats stop, i.e. if the sender dies.
   */
  pause(): void {
    if (this.outcome || this.pausedByApp) return;
    this.pausedByApp = true;
    this.updatePhase();
  }

  /** Lets a {@link pause}d send go on. */
  resume(): void {
    if (!this.pausedByApp) return;
    this.pausedByApp = false;
    this.updatePhase();
    this.nudge();
  }

  private pausedByApp = false;

  /**
   * @internal Its client is closing: the send stops where it is, without an Abort, as if its
   * process had ended, so the receiver keeps what it saved and a resume continues it.
   */
  interrupt(): void {
    this.fail(
      new StreamAbortedError({
        message: `[stream] the client was closed while sending ${this.streamId}; nothing told the receiver, which keeps what it saved: send again with { streamId, resume: true } (resumeSend for a journaled send) to continue`,
        retryable: true,
      }),
    );
  }

  // ---- The send loop ----

  private async run(): Promise<SendResult> {
    try {
      await this.open();
      const result = await this.sendFrom(await this.waitForPull());
      this.end("completed");
      return { ...result, bytesPublished: this.bytesPublished };
    } catch (error) {
      this.end("failed"); // also what failed before the Open (the inbox, a file that is not there)
      throw this.failure ?? error;
    } finally {
      this.dispose();
    }
  }

  /** Opens the inbox, describes the source, starts listening and publishes the Open. */
  private async open(): Promise<void> {
    const inbox = this.plan.endToEnd ? await this.context.openInbox() : undefined;
    const info = await describeSource(this.source);
    if (this.failure) throw this.failure; // cancelled meanwhile: nothing went out
    this.sizeBytes = this.options.sizeBytes ?? info.sizeBytes;
    const manifest = createManifest(this.plan, this.options, info, inbox?.channel ?? "");
    const { cipher } = this.plan;
    this.wireManifest = cipher ? cipher.sealManifest(manifest) : manifest;
    // What the sender reports keeps the sealed fields in the clear, and says how it was sealed.
    this.openManifest = this.wireManifest.e2e ? { ...manifest, e2e: this.wireManifest.e2e } : manifest;
    if (this.openManifest.expiresAt !== undefined) this.expiresAtMs = Date.parse(this.openManifest.expiresAt);
    this.unregister = inbox?.register(this.streamId, (frame) => this.onControl(frame));
    this.unwatch = this.context.connection?.watch(() => {
      this.report();
      this.updatePhase();
    });
    const { retransmitAfterMs, heartbeatMs, takeoverAfterMs } = this.plan;
    this.watchdog = setInterval(() => this.watch(), Math.max(50, Math.min(retransmitAfterMs, heartbeatMs, takeoverAfterMs) / 2));
    this.lastHeardAt = this.lastProgressAt = Date.now();
    this.setStage("sending"); // before the Open: a receiver may answer within the publish
    void this.publish(this.openFrame());
  }

  /**
   * The Open as published: the manifest (sealed when the stream is encrypted), with `takeover`
   * when it is offered to another receiver.
   */
  private openFrame(takeover?: TakeoverInfo): Uint8Array {
    const wire = this.wireManifest ?? this.out;
    const manifest = takeover ? { ...wire, takeover } : wire;
    return encodeFrame({ type: FrameType.Open, streamId: this.streamId, manifest });
  }

  /** Bytes of the plain chunk Data frame `frame` carries (compressed or sealed, its frame says nothing of them). */
  private chunkBytesOf(frame: Uint8Array): number {
    return this.plainBytes.get(frame) ?? 0;
  }

  /** The manifest once the Open is out. */
  private get out(): Manifest {
    if (!this.openManifest) throw new Error("[stream] internal: the manifest is not known before the Open");
    return this.openManifest;
  }

  /** Whether nothing is published until a receiver's first Request says where: a pull, or a resume. */
  private get waitsForRequest(): boolean {
    return this.out.model === "pull" || this.options.resume !== undefined && this.options.resume !== false;
  }

  /** Returns the chunk to publish from: 0, or for a pull or a resume where the receiver's first Request asks from. */
  private async waitForPull(): Promise<number> {
    if (!this.waitsForRequest) return 0;
    // A resume of a stream its receiver already has whole is answered with the final Ack instead:
    // nothing is published (the source is only read and hashed for the result).
    await this.until(() => this.pullFrom !== undefined || this.receiverComplete);
    const from = this.pullFrom ?? (this.receiverComplete ? Number.MAX_SAFE_INTEGER : 0);
    this.window.reset(from);
    return from;
  }

  /**
   * Reads the source from the start, publishing from `publishFrom`, until the receiver says
   * complete; again from further back each time a receiver that took the stream over asks so.
   */
  private async sendFrom(publishFrom: number): Promise<Omit<SendResult, "bytesPublished">> {
    let from = 0;
    for (;;) {
      this.setStage("sending");
      if ((await this.readPassOrAbort(from, publishFrom)) === "done") {
        if (this.sent === undefined) {
          const sent = await this.sendEnd();
          if (!this.plan.endToEnd) return sent;
        } else if (this.endFrame && !this.receiverComplete) {
          this.setStage("finishing");
          void this.publish(this.endFrame); // a pass for a receiver that took the stream over: the End again
        }
        // Until the receiver says complete, or one that took the stream over asks from further back.
        await this.until(() => this.receiverComplete || this.rewindTo !== undefined);
      }
      if (this.failure) throw this.failure;
      if (this.receiverComplete && this.sent) return this.sent;
      publishFrom = this.rewindTo ?? publishFrom;
      this.rewindTo = undefined;
      this.window.reset(publishFrom);
      // Chunks already hashed are read from where they are wanted; the hash never goes back.
      from = Math.min(publishFrom, this.hashedChunks);
    }
  }

  /** Waits until `condition` holds or the send fails (then throws the failure). */
  private async until(condition: () => boolean): Promise<void> {
    while (!condition() && !this.failure) await new Promise<void>((resolve) => (this.wakeLoop = resolve));
    if (this.failure) throw this.failure;
  }

  private nudge(): void {
    const wake = this.wakeLoop;
    this.wakeLoop = undefined;
    wake?.();
  }

  /** {@link readPass}; a source that fails to read aborts the stream (Abort SourceFailed). */
  private async readPassOrAbort(from: number, publishFrom: number): Promise<"done" | "rewind"> {
    try {
      return await this.readPass(from, publishFrom);
    } catch (error) {
      if (this.failure) throw this.failure;
      const reason = asStreamError(error, "reading the source failed");
      this.abort(AbortCode.SourceFailed, reason.message, reason);
      throw reason;
    }
  }

  /**
   * One pass over the source from chunk `from`, publishing chunks from `publishFrom` on (those
   * before are only hashed: a pull resumed further on). Returns whether the source ended
   * (`"done"`) or a receiver asked for an earlier chunk meanwhile (`"rewind"`).
   */
  private async readPass(from: number, publishFrom: number): Promise<"done" | "rewind"> {
    const { chunkBytes } = this.plan.flow;
    let sequence = from;
    // Iterated by hand so a failure (an abort, a receiver's refusal) or a rewind wins over a
    // source that is slow to yield its next chunk. (Not Promise.race with one long-lived promise:
    // every race would stay attached to it, and with it every chunk read.)
    const chunks = readChunks(this.source, chunkBytes, DATA_HEADER_BYTES, () => this.frames.take(), from * chunkBytes);
    const read = () =>
      new Promise<IteratorResult<Uint8Array>>((resolve, reject) => {
        this.interruptRead = reject;
        chunks.next().then(resolve, reject);
      }).finally(() => {
        this.interruptRead = undefined;
      });
    try {
      for (;;) {
        if (this.failure) throw this.failure;
        if (this.rewindTo !== undefined) return "rewind";
        if (this.receiverComplete && this.chunkCount !== undefined) return "done"; // the receiver has it all after all
        let next: IteratorResult<Uint8Array>;
        try {
          next = await read();
        } catch (error) {
          if (error === REWIND && !this.failure) return "rewind";
          throw error;
        }
        if (next.done) {
          this.chunkCount = sequence;
          return "done";
        }
        const frame = next.value;
        const payload = frame.subarray(DATA_HEADER_BYTES);
        const offset = sequence * chunkBytes;
        const publishing = sequence >= publishFrom;
        this.sourceEnd = offset + payload.byteLength;
        if (publishing && this.pausedByApp) await this.until(() => !this.pausedByApp || this.rewindTo !== undefined);
        if (publishing) await this.window.waitForRoom();
        await this.hash(sequence, payload);
        if (this.failure) throw this.failure;
        if (this.rewindTo !== undefined || !publishing) {
          this.frames.recycle(frame);
          if (this.rewindTo !== undefined) return "rewind";
        } else {
          this.publishChunk(frame, sequence, offset, payload);
        }
        sequence += 1;
        if (this.sizeBytes !== undefined && offset + payload.byteLength > this.sizeBytes) {
          throw new IntegrityError({ message: `[stream] the source has more than the ${this.sizeBytes} bytes its sizeBytes declared` });
        }
      }
    } finally {
      void chunks.return(undefined).catch(() => {});
    }
  }

  /** Hashes chunk `sequence` unless it was hashed before a rewind; waits while the hashing thread is behind. */
  private async hash(sequence: number, payload: Uint8Array): Promise<void> {
    if (sequence !== this.hashedChunks) return;
    if (this.hasher.backlogBytes >= MAX_BACKLOG_BYTES) await this.hasher.drained();
    this.hasher.update(payload);
    this.hashedChunks += 1;
  }

  private publishChunk(chunk: Uint8Array, sequence: number, offset: number, payload: Uint8Array): void {
    let frame = chunk;
    const { cipher, compression } = this.plan;
    // Compressed (behind its marker), then sealed: each into a frame of its own; the plain one
    // goes back to the pool (the hasher copied it).
    if (compression) frame = compressChunk(compression, payload);
    if (cipher) frame = cipher.sealData(sequence, offset, frame === chunk ? payload : frame.subarray(DATA_HEADER_BYTES));
    if (frame !== chunk) this.frames.recycle(chunk);
    this.plainBytes.set(frame, payload.byteLength);
    // The CRC-32 covers what travels: the sealed chunk and its tag, when encrypted.
    writeDataHeader(frame, { streamId: this.id, sequence, offset, crc32: crc32(frame.subarray(DATA_HEADER_BYTES)) });
    this.window.add(sequence, frame);
    void this.publish(frame, sequence);
    this.bytesOut = offset + payload.byteLength;
    this.report();
  }

  /**
   * The source is read to its end: makes the End and publishes it, or (end to end, no receiver
   * heard yet) holds it back, so that a stream withdrawn before any receiver answered can never
   * be completed by one that starts later (see {@link withdraw}). With broker flow control,
   * returns once the broker has confirmed every frame.
   */
  private async sendEnd(): Promise<Omit<SendResult, "bytesPublished">> {
    const digest = await this.hasher.digest().catch((error: unknown) => {
      const reason = asStreamError(error, "hashing failed");
      this.abort(AbortCode.SourceFailed, reason.message, reason);
      throw reason;
    });
    const { streamId } = this;
    const chunkCount = this.chunkCount ?? 0;
    const byteCount = this.sourceEnd;
    const announced = this.out.sha256;
    if (announced !== undefined && digest.toString("hex") !== announced) {
      const reason = `the source's SHA-256 is ${digest.toString("hex")}, not the ${announced} its manifest announced`;
      const error = new IntegrityError({ message: `[stream] stream ${streamId} (${this.out.name}): ${reason}; nothing was completed. Send it with its true sha256 (or none).`, retryable: false });
      this.abort(AbortCode.SourceFailed, reason, error);
      throw error;
    }
    // An encrypted stream's End carries a keyed tag in place of the SHA-256, which would name the content.
    const sha256 = this.plan.cipher ? this.plan.cipher.endTag(chunkCount, byteCount, digest) : digest;
    const end = encodeFrame({ type: FrameType.End, streamId, chunkCount, byteCount, sha256 });
    const startOffset = this.pullFrom === undefined && this.receiverComplete ? byteCount : Math.min(byteCount, (this.pullFrom ?? 0) * this.plan.flow.chunkBytes);
    this.sent = { streamId, byteCount, chunkCount, sha256: digest.toString("hex"), manifest: this.out, startOffset };
    this.setStage("finishing");
    if (this.plan.endToEnd && !this.heardFromReceiver) {
      this.heldEnd = end;
    } else {
      const published = this.publishEnd(end);
      if (!this.plan.endToEnd) {
        await Promise.all([this.window.waitForEmpty(), published]);
        if (this.failure) throw this.failure;
      }
    }
    return this.sent;
  }

  /** Publishes the End frame; the watchdog sends it again while the receiver is silent. */
  private publishEnd(frame: Uint8Array): Promise<void> {
    this.heldEnd = undefined;
    this.endFrame = frame;
    return this.publish(frame);
  }

  // ---- Control frames from the receiver ----

  private onControl(frame: Frame): void {
    this.lastHeardAt = Date.now();
    this.heardFromReceiver = true;
    if (this.heldEnd && !this.failure && frame.type !== FrameType.Abort) void this.publishEnd(this.heldEnd);
    switch (frame.type) {
      case FrameType.Ack:
        this.onAck(frame);
        break;
      case FrameType.Request:
        this.serveRequest(frame.sequence);
        break;
      case FrameType.Abort:
        this.onReceiverAbort(frame);
        break;
      default:
    }
    this.updatePhase();
  }

  private onAck(frame: AckFrame): void {
    // A receiver may ask for a smaller window than the manifest offered, never a larger one;
    // 0 says it has queued the stream behind others (it asks for the stream when it takes it).
    this.window.limit(Math.min(this.plan.flow.windowChunks, Math.max(1, frame.windowChunks)));
    const queued = frame.windowChunks === 0;
    if (queued !== this.queued) {
      this.queued = queued;
      this.report();
    }
    if (this.window.acknowledgeThrough(frame.nextSequence)) {
      this.takeoverPending = false;
      this.lastProgressAt = this.lastHeardAt;
      this.bytesIn = frame.offset;
      this.report();
    }
    if (frame.complete) {
      this.receiverComplete = true;
      this.nudge();
    }
  }

  /**
   * A receiver asks for the stream from `sequence`: a lost chunk (resent from the window), the
   * start of a pull, or a receiver that took the stream over and starts where its partial file
   * ends, possibly before the window (the source is read again from there).
   */
  private serveRequest(sequence: number): void {
    if (this.waitsForRequest && this.pullFrom === undefined) {
      this.pullFrom = sequence;
      this.nudge();
      return;
    }
    if (sequence >= this.window.acknowledged) {
      this.resendFrom(sequence); // in the window, or not sent yet: it comes anyway
      return;
    }
    // Before the window: only a receiver that took the stream over asks from there; from the
    // receiver that acknowledged it, it is a late copy of an old Request.
    if (!this.takeoverPending || this.failure) return;
    if (isRereadable(this.source)) {
      this.takeoverPending = false;
      this.rewindTo = sequence;
      this.window.reset(sequence);
      this.bytesIn = sequence * this.plan.flow.chunkBytes;
      this.interruptRead?.(REWIND);
      this.nudge();
      return;
    }
    const reason = "the source is a stream that cannot be read again; send again";
    this.abort(
      AbortCode.Rejected,
      reason,
      new StreamAbortedError({
        message:
          `[stream] a receiver took over stream ${this.streamId} (${this.out.name}) and asked for it from chunk ${sequence} (byte ${sequence * this.plan.flow.chunkBytes}), ` +
          `but only chunks from ${this.window.acknowledged} are still held and ${reason} (a file path or bytes can be read again).`,
      }),
    );
  }

  private onReceiverAbort(frame: AbortFrame): void {
    const message = `[stream] the receiver aborted stream ${this.streamId}: ${frame.reason}`;
    if (frame.code === AbortCode.Rejected) {
      this.fail(
        new StreamRefusedError({
          message: `[stream] the receiver refused stream ${this.streamId} (${this.out.name}): ${frame.reason}. Nothing was kept.`,
          reason: frame.reason,
        }),
      );
    } else if (frame.code === AbortCode.IntegrityFailed) {
      this.fail(new IntegrityError({ message, retryable: true }));
    } else {
      this.fail(new StreamAbortedError({ message, retryable: frame.code === AbortCode.TimedOut }));
    }
  }

  // ---- The watchdog ----

  private watch(): void {
    const at = Date.now();
    if (this.expiresAtMs !== undefined && at >= this.expiresAtMs) {
      this.expire();
      return;
    }
    // The connection is being re-established, our publishes held or retried (see
    // StreamClientOptions.retry, whose deadline bounds it): the receiver's silence is expected,
    // and resending would only queue more behind them.
    if (this.context.connection?.state === "reconnecting") {
      this.lastHeardAt = this.lastProgressAt = at;
      return;
    }
    if (this.plan.endToEnd && at - this.lastHeardAt > this.plan.idleTimeoutMs) {
      this.withdraw();
      return;
    }
    if (this.plan.endToEnd) {
      this.retransmit(at);
      this.offerTakeover(at);
    }
    if (at - this.lastPublishedAt > this.plan.heartbeatMs) {
      void this.publish(encodeFrame({ type: FrameType.Heartbeat, streamId: this.streamId, timestampMs: at }));
    }
  }

  /**
   * No receiver answered within `idleTimeoutMs`: the stream is withdrawn. On a broker that keeps
   * frames the Abort waits behind them, and (the End being held until a receiver answers) a
   * receiver that starts later meets the Abort before it can complete the stream, so it discards it.
   */
  private withdraw(): void {
    const { idleTimeoutMs, destination } = this.plan;
    this.abort(
      AbortCode.TimedOut,
      `the sender withdrew the stream: no receiver acknowledged it within ${idleTimeoutMs} ms`,
      new StreamTimeoutError({
        message:
          `[stream] no receiver acknowledged stream ${this.streamId} (${this.out.name}) on ${destination} within ${idleTimeoutMs} ms, ` +
          "so it was withdrawn: a receiver that starts later discards it, and it is safe to send again (under the same streamId or a new one). " +
          "Is a receiver running? Otherwise raise idleTimeoutMs.",
      }),
    );
  }

  /**
   * The stream's expiry passed before it was delivered: the broker may be dropping its frames, so
   * the send fails. The Abort carries the same expiry: a live receiver gets it at once, and a
   * queue with nobody reading drops it with the rest.
   */
  private expire(): void {
    const expiresAt = this.out.expiresAt ?? "";
    this.abort(
      AbortCode.TimedOut,
      `the stream expired at ${expiresAt} before it was delivered`,
      new StreamExpiredError({
        message:
          `[stream] stream ${this.streamId} (${this.out.name}) on ${this.plan.destination} expired at ${expiresAt} (expireAfterMs ${String(this.plan.expireAfterMs)}) ` +
          "before a receiver had all of it; the broker drops what is left of it. Send it again, with a longer expireAfterMs if the receiver needs more time.",
        expiresAt,
      }),
    );
  }

  /**
   * A live receiver acknowledges at least every second (a keepalive when it has nothing new), so
   * silence means frames or acks were lost. On a lossy transport everything in flight goes again;
   * on any transport the End does, since the final ack rides the inbox.
   */
  private retransmit(at: number): void {
    const { retransmitAfterMs, lossy } = this.plan;
    const { window } = this;
    if (at - this.lastHeardAt > retransmitAfterMs && at - this.lastProgressAt > retransmitAfterMs) {
      this.lastProgressAt = at;
      if (lossy && (window.size > 0 || this.endFrame)) {
        if (!this.heardFromReceiver) void this.publish(this.openFrame());
        this.resendFrom(window.acknowledged);
      } else if (this.endFrame) {
        void this.publish(this.endFrame);
      }
    } else if (lossy && !this.queued && at - this.lastProgressAt > retransmitAfterMs && window.size > 0) {
      // The receiver lives (keepalives) but has not moved: stalled, or the tail was lost and it
      // cannot know. Probe with the oldest chunk and the end: a stalled receiver drops the
      // duplicates; one missing the tail takes the chunk, and the end makes it ask for the rest.
      this.lastProgressAt = at;
      const [oldest] = window.framesFrom(window.acknowledged);
      if (oldest) void this.publish(oldest);
      if (this.endFrame) void this.publish(this.endFrame);
    }
  }

  /**
   * The receiver that had the stream is silent: presumed dead. The Open again, marked, lets
   * another receiver take the stream over (a live but slow one ignores a repeated Open). Also
   * when no receiver was ever heard from, on a broker that keeps frames: one may have taken the
   * Open and died before its first Ack got out, and a receiver not started yet finds the first
   * Open before these and ignores them. (A lossy transport sends the plain Open again instead.)
   */
  private offerTakeover(at: number): void {
    const { takeoverAfterMs, lossy } = this.plan;
    if ((!this.heardFromReceiver && lossy) || this.receiverComplete) return;
    if (at - this.lastHeardAt <= takeoverAfterMs || at - this.lastTakeoverAt <= takeoverAfterMs) return;
    this.lastTakeoverAt = at;
    this.takeoverPending = true;
    void this.publish(this.openFrame({ acknowledgedBytes: this.bytesIn }));
  }

  // ---- Publishing ----

  /** Publishes without waiting; a failure fails the send. The promise never rejects. */
  private publish(frame: Uint8Array, sequence?: number): Promise<void> {
    this.lastPublishedAt = Date.now();
    this.frames.hold(frame);
    const type = readFrameType(frame);
    if (type === FrameType.Data) this.bytesPublished += this.chunkBytesOf(frame);
    // Cancelling stops the send's publishes (and their retries), but not the Abort that tells the receiver.
    const stoppable = type !== FrameType.Abort;
    return this.context.transport
      .publish(this.plan.destination, frame, {
        key: this.streamId,
        kind: "stream",
        ...(stoppable ? { signal: this.signal } : {}),
        ...(this.expiresAtMs === undefined ? {} : { expiresAtMs: this.expiresAtMs }),
      })
      .finally(() => {
        if (this.frames.release(frame) && sequence !== undefined && !this.window.holds(frame) && !this.failure) this.frames.recycle(frame);
      })
      .then(
        () => {
          if (this.plan.endToEnd || sequence === undefined) return;
          this.window.release(sequence);
          this.bytesIn += this.chunkBytesOf(frame);
          this.report();
        },
        (error: unknown) =>
          this.fail(
            StreamError.isInstance(error)
              ? error
              : new TransportError({ message: `[stream] [${this.context.transport.name}] publish failed: ${String(error)}`, cause: error }),
          ),
      );
  }

  private resendFrom(sequence: number): void {
    for (const frame of this.window.framesFrom(sequence)) void this.publish(frame);
    if (this.endFrame) void this.publish(this.endFrame);
  }

  // ---- Phase, progress, failure ----

  private setStage(stage: "sending" | "finishing"): void {
    this.stage = stage;
    this.updatePhase();
  }

  /** Emits `'phase'` if what the loop, the receivers and the connection say amounts to a new phase. */
  private updatePhase(): void {
    const phase = this.currentPhase();
    if (phase === this.shownPhase) return;
    this.shownPhase = phase;
    this.emit("phase", phase);
  }

  private currentPhase(): SendPhase {
    if (this.outcome) return this.outcome;
    if (this.stage === "opening") return "opening";
    if (this.context.connection?.state === "reconnecting") return "reconnecting";
    if (this.pausedByApp && this.stage === "sending") return "paused";
    if (!this.plan.endToEnd) return this.stage;
    if (this.queued) return "queued";
    const asked = !this.waitsForRequest || this.pullFrom !== undefined;
    return this.heardFromReceiver && asked ? this.stage : "waiting";
  }

  private end(outcome: "completed" | "failed" | "cancelled"): void {
    if (this.outcome) return;
    this.outcome = outcome;
    this.updatePhase();
  }

  private report(): void {
    if (!this.options.onProgress && this.listenerCount("progress") === 0) return;
    const progress: SendProgress = {
      streamId: this.streamId,
      bytesSent: this.bytesOut,
      bytesAcknowledged: this.bytesIn,
      ...(this.sizeBytes === undefined ? {} : { sizeBytes: this.sizeBytes }),
      connection: this.context.connection?.state ?? "connected",
      queued: this.queued,
    };
    this.options.onProgress?.(progress);
    this.emit("progress", progress);
  }

  private readonly onCancel = (): void => {
    const error = new StreamAbortedError({ message: `[stream] send of ${this.streamId} was cancelled`, cause: this.signal.reason });
    // Before the Open nothing is out, so there is no one to tell.
    if (this.stage === "opening") this.fail(error, "cancelled");
    else this.abort(AbortCode.Cancelled, "the sender cancelled", error, "cancelled");
  };

  /** Tells the receiver (an Abort with `code` and `reason`) and fails the send with `error`. */
  private abort(code: AbortCode, reason: string, error: StreamError, outcome: "failed" | "cancelled" = "failed"): void {
    if (this.failure || this.outcome) return;
    void this.publish(encodeFrame({ type: FrameType.Abort, streamId: this.streamId, code, reason }));
    this.fail(error, outcome);
  }

  private fail(error: StreamError, outcome: "failed" | "cancelled" = "failed"): void {
    if (this.failure || this.outcome) return;
    this.failure = error;
    this.interruptRead?.(error);
    this.window.fail(error);
    this.nudge();
    this.end(outcome);
  }

  private dispose(): void {
    this.hasher.dispose();
    clearInterval(this.watchdog);
    this.signal.removeEventListener("abort", this.onCancel);
    this.unregister?.();
    this.unwatch?.();
  }
}
