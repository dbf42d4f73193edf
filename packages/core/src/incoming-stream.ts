import { mkdir, rename } from "node:fs/promises";
import { dirname, join, resolve } from "node:path";
import { Readable } from "node:stream";
import { crc32 } from "./checksum";
import { IntegrityError } from "./errors/integrity-error";
import { StreamAbortedError } from "./errors/stream-aborted-error";
import { type RetryPolicy, withRetries } from "./backoff";
import { StreamError } from "./errors/stream-error";
import { StreamExpiredError } from "./errors/stream-expired-error";
import { StreamRefusedError } from "./errors/stream-refused-error";
import { StreamTimeoutError } from "./errors/stream-timeout-error";
import { TargetFolderError } from "./errors/target-folder-error";
import { UnsafePathError } from "./errors/unsafe-path-error";
import { StreamWithdrawnError } from "./errors/stream-withdrawn-error";
import { AbortCode, type AckFrame, type DataFrame, type EndFrame, type Frame, FrameType, type Manifest, type TakeoverInfo } from "./protocol/frames";
import type { SaveJournal } from "./journaled-receive";
import { RangeSet } from "./range-set";
import { COMPRESSION_MARKER_BYTES, decompressChunk } from "./compression";
import { E2E_TAG_BYTES, type StreamCipher } from "./e2e/stream-cipher";
import { commitWithoutOverwrite, folderError, safeFileName, type SaveOptions, type SaveResult, saveStream } from "./save-to";
import { Spool } from "./spool";
import { DEFAULT_HEARTBEAT_MS } from "./send-plan";
import { createStreamHasher, MAX_BACKLOG_BYTES, type StreamHasher } from "./stream-hasher";
import { checkStatusInterval, type TransferEvent, type TransferStatus, TransferStatusTracker } from "./transfer-status";

/** What a verified stream reports. */
export interface ReceiveResult {
  readonly streamId: string;
  readonly byteCount: number;
  readonly chunkCount: number;
  /** SHA-256 of the whole stream, lower-case hex, equal to the sender's. */
  readonly sha256: string;
}

/**
 * Where an {@link IncomingStream} is; `'phase'` is emitted on each change. A stream starts
 * `"waiting"` or `"receiving"` and ends `"completed"` or `"failed"`.
 * - `"waiting"`: a pull not read yet, or a stream taken over not placed yet (`saveTo` or a first
 *   read): nothing is asked for until then.
 * - `"receiving"`: chunks arrive, are checked and handed on (to the application, or to the spool).
 * - `"verifying"`: every chunk is in; the whole stream's SHA-256 (and the spool's flush) is checked.
 * - `"verified"`: whole and checked (`result` has resolved), not handed over yet: the application
 *   has not read it to its end, `saveTo` has not given the file its name, or a spooled stream
 *   waits for its turn. The sender is kept waiting by keepalives.
 * - `"completed"`: handed over; the sender has its final Ack.
 * - `"failed"`: it ended otherwise (an integrity failure, an abort from either side, a silent
 *   sender, a verified stream that could not be handed over); the sender was told.
 */
export type ReceivePhase = "waiting" | "receiving" | "verifying" | "verified" | "completed" | "failed";

/** The phases a receive ends in. */
const FINAL_RECEIVE_PHASES: readonly ReceivePhase[] = ["completed", "failed"];

/** How an {@link IncomingStream} talks back to its sender and its receiver. */
export interface IncomingStreamContext {
  /** Sends a control frame to the sender's inbox (never rejects). */
  readonly reply: (frame: Frame) => void;
  /** Called once when the stream has ended, well or not (`error`: why it failed, when its sender or its data failed it). */
  readonly settled: (streamId: string, finalAck: AckFrame | undefined, error?: StreamError) => void;
  readonly producerTimeoutMs: number;
  readonly gapTimeoutMs: number;
  /** How `saveTo` retries a folder it cannot write to before refusing the stream. */
  readonly retry: RetryPolicy;
  /** What `saveTo` does with a dead receiver's partial file of a stream taken over. */
  readonly takeover: "continue" | "restart";
  /** Age, in ms, past which `saveTo` removes other receivers' partial files; `Infinity` keeps them. */
  readonly partialTtlMs: number;
  /**
   * Spool the stream into this folder before anyone sees it (transactional delivery); `spooled`
   * is called once it is all there and verified.
   */
  readonly spoolDir?: string;
  readonly spooled?: (stream: IncomingStream) => void;
  /** How often `'status'` is emitted while the stream goes on (`ReceiveOptions.statusIntervalMs`). */
  readonly statusIntervalMs?: number;
  /** The stream's keys, when it is encrypted end to end: chunks are opened, and the End checked, with them. */
  readonly cipher?: StreamCipher | undefined;
  /** Set when the receiver keeps a journal: records a `saveTo` of the stream into `directory` there. */
  readonly journal?: (stream: IncomingStream, directory: string, options: SaveOptions | undefined) => SaveJournal;
}

/**
 * What the sender is told when the receiver refuses `error`'s stream, or `undefined` when
 * `error` is no refusal (Abort Rejected) but a cancellation.
 */
function refusal(error: unknown): string | undefined {
  if (TargetFolderError.isInstance(error)) return `the receiver cannot write to its folder ${error.folder}: ${error.fsCode}`;
  if (UnsafePathError.isInstance(error) || StreamRefusedError.isInstance(error)) return error.message.replace(/^\[stream\] /, "");
  return undefined;
}

/**
 * The receiver acknowledges at least this often, repeating itself when nothing is new: the
 * sender knows it lives (however long the application takes), and a lost ack is repaired.
 */
const KEEPALIVE_MS = 1000;

/**
 * One stream arriving: a Node `Readable` (and so an async iterator of `Buffer`s) of the stream's
 * bytes, in order, each chunk verified, with the sender's {@link Manifest}.
 *
 * It ends (`'end'`) only after the whole stream's SHA-256 matched; any mismatch, a lying manifest,
 * an abort or a silent sender destroys it with a typed {@link StreamError} instead. Reading slowly
 * slows the sender: acknowledgements only go out for bytes the application has taken.
 * Destroying it tells the sender to stop. {@link phase} says where it is, and `'phase'` is emitted
 * on each change.
 */
export class IncomingStream extends Readable {
  /** The sender's description of the stream. */
  readonly manifest: Manifest;
  /** Resolves once the whole stream is verified; rejects with the error that ended it. */
  readonly result: Promise<ReceiveResult>;
  private resolveResult!: (result: ReceiveResult) => void;
  private rejectResult!: (error: unknown) => void;
  private readonly context: IncomingStreamContext;
  private readonly received = new RangeSet();
  private readonly pending = new Map<number, Uint8Array>();
  private pendingBytes = 0;
  private readonly hasher: StreamHasher;
  private currentPhase: ReceivePhase;
  /** The hashing thread is behind: delivery waits until it catches up (flow, whatever the phase). */
  private waitingForHasher = false;
  /** `saveTo` hands the stream over (it completes once the file has its name), not the end of reading. */
  private completionHeld = false;
  private nextSequence = 0;
  private verifiedOffset = 0;
  private end: EndFrame | undefined;
  /** The `Readable`'s buffer (or the spool's) is full: backpressure, whatever the phase. */
  private paused = true;
  /** A Request for the stream's start went out (a pull, a stream taken over or taken from the queue); repeated until data comes. */
  private requested = false;
  private ackedSequence = 0;
  private readonly ackEveryChunks: number;
  private lastFrameAt = Date.now();
  /** When the last Ack went out: the keepalive is an Ack, whatever Requests went out meanwhile. */
  private lastAckAt = 0;
  private gapSince: number | undefined;
  private roomWaiters: Array<() => void> = [];
  /**
   * The first chunk handed to the application: 0, or for a stream taken over, where the dead
   * receiver's partial file ends; `undefined` until a stream taken over knows (saveTo, or the
   * first read).
   */
  private startSequence: number | undefined;
  /**
   * With `saveTo`: bytes of the file written so far, from byte 0. Acks then cover only chunks
   * whose bytes are in the file, so a receiver taking the stream over after this one died finds
   * at least what the sender let go of, and a source that cannot be read again still serves it.
   */
  private writtenBytes: (() => number) | undefined;
  /** Transactional delivery: where verified chunks wait until the whole stream is verified. */
  private readonly spool: Spool | undefined;
  /** The spool read back, once the stream is handed over and read. */
  private spoolReader: Readable | undefined;
  private readonly tracker: TransferStatusTracker<ReceivePhase>;

  /** @internal Created by the receiver from an open frame. */
  constructor(manifest: Manifest, context: IncomingStreamContext) {
    super({ highWaterMark: manifest.chunkBytes });
    this.manifest = manifest;
    this.context = context;
    this.hasher = createStreamHasher(manifest.chunkBytes);
    const chunksInWindow = Math.max(1, Math.min(manifest.windowChunks, Math.floor(manifest.windowBytes / manifest.chunkBytes)));
    this.ackEveryChunks = Math.max(1, Math.floor(chunksInWindow / 4));
    this.result = new Promise((resolve, reject) => {
      this.resolveResult = resolve;
      this.rejectResult = reject;
    });
    this.result.catch(() => {}); // The stream's 'error' event is the primary channel.
    if (manifest.takeover === undefined) this.startSequence = 0;
    const asksFirst = manifest.model === "pull" || manifest.takeover !== undefined;
    this.currentPhase = asksFirst && context.spoolDir === undefined ? "waiting" : "receiving";
    if (context.spoolDir !== undefined) {
      const folder = context.spoolDir;
      this.spool = new Spool(folder, manifest.streamId, context.partialTtlMs, (error) => this.fail(folderError(folder, error) as StreamError));
      this.writtenBytes = () => this.spool?.writtenBytes ?? 0;
      this.paused = false; // taken at once, into the spool
    }
    this.tracker = new TransferStatusTracker<ReceivePhase>(
      {
        streamId: manifest.streamId,
        direction: "receive",
        chunkBytes: manifest.chunkBytes,
        finalPhases: FINAL_RECEIVE_PHASES,
        read: () => ({
          phase: this.currentPhase,
          name: manifest.name,
          bytes: this.verifiedOffset,
          sizeBytes: manifest.sizeBytes ?? this.end?.byteCount,
          connection: "connected",
        }),
        result: () => this.result,
        emit: (status) => this.emit("status", status),
      },
      context.statusIntervalMs,
    );
    this.on("phase", (phase: ReceivePhase) => this.tracker.phaseChanged(phase));
  }

  /** The stream's {@link TransferStatus} now: bytes, chunks, rate, ETA, phase. `'status'` carries the same. */
  get status(): TransferStatus<ReceivePhase> {
    return this.tracker.snapshot();
  }

  /**
   * The stream's events from now on, as an async iterator: `{ type: "phase", phase, status }` on
   * each phase change and `{ type: "status", status }` every status interval; it ends after
   * `"completed"` or `"failed"` (with `status.failure`). A consumer that falls behind gets only
   * the newest periodic status; at most 32 events wait.
   */
  events(): AsyncIterableIterator<TransferEvent<ReceivePhase>> {
    return this.tracker.events();
  }

  /**
   * Whether the stream is delivered transactionally: the application gets it only once all of
   * it is verified, read back from the receiver's spool folder (see `SendOptions.delivery`).
   */
  get spooled(): boolean {
    return this.spool !== undefined;
  }

  /**
   * Set when this stream is a takeover: its sender lost the receiver that had it (silent for the
   * sender's `takeoverAfterMs`) and published the Open again; `acknowledgedBytes` is what that
   * receiver had acknowledged. Such a stream starts like a pull: it asks the sender for the
   * stream from {@link startOffset} once read (or saved).
   */
  get takeover(): TakeoverInfo | undefined {
    return this.manifest.takeover;
  }

  /**
   * Byte offset in the stream of the first byte this `Readable` yields: 0, except for a stream
   * taken over and saved with `saveTo` into the folder holding the dead receiver's partial file
   * (`takeover: "continue"`), where it is that file's length cut to whole chunks. Known once
   * reading (or `saveTo`) has started.
   */
  get startOffset(): number {
    return (this.startSequence ?? 0) * this.manifest.chunkBytes;
  }

  /** The stream's identity (same as `manifest.streamId`). */
  get streamId(): string {
    return this.manifest.streamId;
  }

  /** Bytes received, verified and handed to the application: where a resume would start. */
  get offset(): number {
    return this.verifiedOffset;
  }

  /** Chunks received, verified and handed to the application. */
  get sequence(): number {
    return this.nextSequence;
  }

  /** Where the stream is; see {@link ReceivePhase}. `'phase'` is emitted on each change. */
  get phase(): ReceivePhase {
    return this.currentPhase;
  }

  /** Whether the stream takes no more frames: verified (handed over or not), or failed. */
  get settled(): boolean {
    return this.isSettled;
  }

  private get isSettled(): boolean {
    return this.currentPhase === "verified" || this.currentPhase === "completed" || this.currentPhase === "failed";
  }

  /** Whether the whole stream was verified (`result` resolved), handed over or not yet. */
  private get isVerified(): boolean {
    return this.currentPhase === "verified" || this.currentPhase === "completed";
  }

  private setPhase(phase: ReceivePhase): void {
    if (phase === this.currentPhase) return;
    this.currentPhase = phase;
    this.emit("phase", phase);
  }

  /**
   * Saves the stream into `directory` under the sender's file name made safe (see
   * `safeFileName`), never overwriting an existing file unless told to (`name (1).ext`, ...), and
   * only under its final name once verified; the sender hears "complete" only then. For a pull
   * stream this is what starts the transfer (Fiorano's `saveTo`).
   *
   * `directory` is created, with its parents, if it does not exist. When it cannot be created or
   * written (or lacks room for the declared `sizeBytes`), that is tried again per the receiver's
   * `retry` (by default 3 attempts, 1 s then 2 s apart; the sender is kept waiting meanwhile),
   * then the stream is refused: its sender gets a `StreamRefusedError` naming the folder and the
   * error code, and this rejects with a {@link TargetFolderError}. The receiver goes on with
   * other streams.
   *
   * Rejects with the stream's error, `TargetFolderError`, or `UnsafePathError` for a name that
   * escapes the folder (`..`, absolute, a drive, a NUL).
   */
  saveTo(directory: string, options?: SaveOptions): Promise<SaveResult> {
    try {
      checkStatusInterval(options?.statusIntervalMs, "saveTo's statusIntervalMs");
    } catch (error) {
      return Promise.reject(error);
    }
    if (options?.statusIntervalMs !== undefined) this.tracker.setInterval(options.statusIntervalMs);
    if (options?.onStatus) this.on("status", options.onStatus);
    this.holdCompletion();
    if (this.spool && this.isVerified) return this.saveSpooled(this.spool, directory, options);
    const context = {
      verified: this.result,
      name: this.manifest.name,
      sizeBytes: this.manifest.sizeBytes,
      retry: this.context.retry,
      streamId: this.streamId,
      chunkBytes: this.manifest.chunkBytes,
      takeover: this.takeover === undefined ? undefined : this.context.takeover,
      partialTtlMs: this.context.partialTtlMs,
      startFrom: (sequence: number, prefix?: AsyncIterable<Uint8Array>) => this.startFrom(sequence, prefix),
      ackOnlyWritten: () => this.ackOnlyWritten(),
      startOffset: () => this.startOffset,
      keepPartial: () => this.resumable,
      journal: this.context.journal?.(this, directory, options),
    };
    return this.handOverWhenSaved(saveStream(this, directory, context, options));
  }

  /**
   * Saves a spooled stream: its spool file is moved into `directory` (a rename; the bytes are
   * copied only when the spool is on another file system) and the sender told.
   */
  private async saveSpooled(spool: Spool, directory: string, options: SaveOptions = {}): Promise<SaveResult> {
    const result = await this.result;
    try {
      const folder = resolve(directory);
      const name = safeFileName(options.fileName ?? this.manifest.name);
      await withRetries(() => mkdir(folder, { recursive: true }), this.context.retry);
      const path = options.overwrite ? join(folder, name) : await commitWithoutOverwrite(spool.path, folder, name);
      if (options.overwrite) await rename(spool.path, path);
      options.onProgress?.({ bytesReceived: result.byteCount });
      await spool.remove();
      this.complete();
      return { path, byteCount: result.byteCount, sha256: result.sha256, startOffset: 0 };
    } catch (caught) {
      if ((caught as NodeJS.ErrnoException).code === "EXDEV") return this.saveFromSpool(directory, options);
      const error = folderError(directory, caught);
      this.refuseStorage(error);
      void spool.remove();
      throw error;
    }
  }

  /** Tells the sender once `saving` settles: "complete" when the file is stored, the reason when it could not be. */
  private handOverWhenSaved(saving: Promise<SaveResult>): Promise<SaveResult> {
    return saving.then(
      (saved) => {
        this.complete();
        return saved;
      },
      (error: unknown) => {
        this.refuseStorage(error);
        throw error;
      },
    );
  }

  /** The verified stream could not be stored: its sender hears why. */
  private refuseStorage(error: unknown): void {
    this.tracker.fail(error);
    this.refuseCompletion(refusal(error) ?? `the receiver could not store the stream: ${String(error)}`);
  }

  /** Saves a spooled stream by reading it back: the spool is on another file system than `directory`. */
  private saveFromSpool(directory: string, options?: SaveOptions): Promise<SaveResult> {
    const context = { verified: this.result, name: this.manifest.name, sizeBytes: this.manifest.sizeBytes, retry: this.context.retry, streamId: this.streamId };
    return this.handOverWhenSaved(saveStream(this, directory, context, options));
  }

  /**
   * @internal Drops a stream no application has seen (its `'stream'` listener threw): no reply,
   * no record; the receiver may open it afresh.
   */
  discard(): void {
    if (this.isSettled) return;
    this.settle("failed");
    this.rejectResult(new StreamAbortedError({ message: `[stream] stream ${this.streamId} was discarded before it was handed over` }));
    this.destroy();
  }

  /**
   * @internal The SHA-256 of the first {@link offset} bytes, at a chunk boundary, while the stream
   * is receiving: a copy of the running hash's state, so nothing is hashed twice.
   */
  async checkpoint(): Promise<{ offset: number; sha256: string } | undefined> {
    if (this.currentPhase !== "receiving" || this.startSequence === undefined) return undefined;
    const offset = this.verifiedOffset;
    const digest = await this.hasher.peek();
    return digest && { offset, sha256: digest.toString("hex") };
  }

  /** @internal Takes one frame of this stream from the receiver. */
  accept(frame: Frame): void {
    if (this.isSettled) return;
    this.lastFrameAt = Date.now();
    switch (frame.type) {
      case FrameType.Data:
        this.acceptData(frame);
        return;
      case FrameType.End:
        this.acceptEnd(frame);
        return;
      case FrameType.Abort: {
        const message = `[stream] the sender aborted stream ${this.streamId} (${this.manifest.name}): ${frame.reason}`;
        // A sender aborts with TimedOut only to withdraw a stream no receiver acknowledged in time.
        this.fail(
          frame.code === AbortCode.TimedOut
            ? new StreamWithdrawnError({ message, retryable: true })
            : new StreamAbortedError({ message, retryable: frame.code === AbortCode.SourceFailed }),
        );
        return;
      }
      default:
    }
  }

  /**
   * @internal The receiver queued this stream before taking it and dropped what its sender
   * published meanwhile: asks for the stream from its start (repeated until data comes, as for
   * a pull). A pull or a stream taken over asks once read or placed, as ever.
   */
  askFromStart(): void {
    if (this.isSettled || this.requested || this.manifest.model === "pull" || this.takeover !== undefined) return;
    this.requested = true;
    this.reply({ type: FrameType.Request, streamId: this.streamId, sequence: this.nextSequence, offset: this.verifiedOffset });
  }

  /** @internal Resolves when the stream holds no more than a window of undelivered chunks. */
  roomForMore(): Promise<void> | undefined {
    if (this.isSettled || !this.isOverWindow()) return undefined;
    return new Promise((resolve) => this.roomWaiters.push(resolve));
  }

  private isOverWindow(): boolean {
    return this.pending.size > this.manifest.windowChunks || this.pendingBytes > this.manifest.windowBytes;
  }

  /**
   * @internal Sets where a stream taken over starts: chunk `sequence`, whose preceding bytes
   * (`prefix`, the partial file kept) are hashed first, so the final SHA-256 covers the whole.
   * Chunks before it are never handed over; those held that fit are used.
   */
  async startFrom(sequence: number, prefix?: AsyncIterable<Uint8Array>): Promise<void> {
    if (this.startSequence !== undefined) throw new Error(`[stream] stream ${this.streamId} has already started at chunk ${this.startSequence}`);
    const expected = sequence * this.manifest.chunkBytes;
    let hashed = 0;
    if (prefix) {
      for await (const bytes of prefix) {
        if (this.isSettled) return;
        if (this.hasher.backlogBytes >= MAX_BACKLOG_BYTES) await this.hasher.drained();
        this.hasher.update(bytes);
        hashed += bytes.byteLength;
      }
    }
    if (hashed !== expected) throw new Error(`[stream] the partial file of ${this.streamId} held ${hashed} bytes, not ${expected}`);
    if (this.isSettled || this.startSequence !== undefined) return;
    this.begin(sequence);
  }

  private begin(sequence: number): void {
    this.startSequence = sequence;
    this.nextSequence = sequence;
    this.ackedSequence = sequence;
    this.verifiedOffset = sequence * this.manifest.chunkBytes;
    this.received.addRange(0, sequence);
    for (const [at, payload] of this.pending) {
      if (at >= sequence) continue;
      this.pending.delete(at);
      this.pendingBytes -= payload.byteLength;
    }
    // At once: the chunks before the start are the sender's to let go of (its window may be full of them).
    if (sequence > 0) this.sendAck(false);
  }

  /**
   * @internal From now on acknowledge only chunks written to the file (`saveTo`); returns what
   * to call with the bytes of each write. Called once the start is known.
   */
  ackOnlyWritten(): (bytes: number) => void {
    let written = this.verifiedOffset;
    this.writtenBytes = () => written;
    return (bytes) => {
      written += bytes;
      if (!this.isSettled && this.ackableSequence - this.ackedSequence >= this.ackEveryChunks) this.sendAck(false);
    };
  }

  /** The first chunk not acknowledgeable yet: not handed over, or (saveTo) not written. */
  private get ackableSequence(): number {
    if (!this.writtenBytes) return this.nextSequence;
    return Math.min(this.nextSequence, Math.floor(this.writtenBytes() / this.manifest.chunkBytes));
  }

  private acceptData(frame: DataFrame): void {
    const { chunkBytes, sizeBytes } = this.manifest;
    const { sequence, offset } = frame;
    const { cipher } = this.context;
    if (this.received.has(sequence)) return; // A duplicate: already delivered or held.
    const { compression } = this.manifest;
    // An encrypted chunk travels with its tag, a compressed one behind its marker (and no longer than it was).
    const chunkLength = frame.payload.byteLength - (cipher ? E2E_TAG_BYTES : 0) - (compression ? COMPRESSION_MARKER_BYTES : 0);
    if (chunkLength <= 0 || chunkLength > chunkBytes || offset !== sequence * chunkBytes) {
      this.integrityFailure(`chunk ${sequence} claims offset ${offset} and ${chunkLength} bytes; chunks are ${chunkBytes} bytes`);
      return;
    }
    if (sizeBytes !== undefined && offset + chunkLength > sizeBytes) {
      this.integrityFailure(`chunk ${sequence} ends at byte ${offset + chunkLength}, past the ${sizeBytes} bytes the manifest declared`);
      return;
    }
    if (this.end && sequence >= this.end.chunkCount) {
      this.integrityFailure(`chunk ${sequence} arrived after an end frame that counted ${this.end.chunkCount} chunks`);
      return;
    }
    if (crc32(frame.payload) !== frame.crc32) {
      this.integrityFailure(`chunk ${sequence} (bytes ${offset}-${offset + chunkLength}) failed its CRC-32 check`);
      return;
    }
    const opened = cipher ? cipher.openData(frame) : frame.payload;
    if (opened === undefined) {
      this.integrityFailure(`chunk ${sequence} (byte ${offset}) does not open under the stream's key: it was changed on the way`);
      return;
    }
    // Never inflated past the chunk size, nor past the declared size.
    const payload = compression ? decompressChunk(compression, opened, Math.min(chunkBytes, (sizeBytes ?? Number.POSITIVE_INFINITY) - offset)) : opened;
    if (typeof payload === "string") {
      this.integrityFailure(`chunk ${sequence} (byte ${offset}) ${payload}`);
      return;
    }
    this.received.add(sequence);
    this.pending.set(sequence, payload);
    this.pendingBytes += payload.byteLength;
    this.drain();
  }

  private acceptEnd(frame: EndFrame): void {
    const { sizeBytes, chunkBytes } = this.manifest;
    if (this.end) return;
    if (sizeBytes !== undefined && frame.byteCount !== sizeBytes) {
      this.integrityFailure(`the stream carried ${frame.byteCount} bytes but its manifest declared ${sizeBytes}`);
      return;
    }
    if (frame.chunkCount !== Math.ceil(frame.byteCount / chunkBytes)) {
      this.integrityFailure(`the end frame counts ${frame.chunkCount} chunks for ${frame.byteCount} bytes of ${chunkBytes}-byte chunks`);
      return;
    }
    this.end = frame;
    this.drain();
  }

  override _read(): void {
    if (this.spool) {
      if (this.isVerified) this.readSpool(this.spool);
      return;
    }
    this.paused = false;
    // A stream taken over that nobody placed (saveTo does) starts from byte 0.
    if (this.startSequence === undefined && !this.isSettled) this.begin(0);
    if (this.currentPhase === "waiting") {
      this.requested = true;
      this.lastFrameAt = Date.now(); // the sender has producerTimeoutMs from now to answer
      this.setPhase("receiving");
      this.reply({ type: FrameType.Request, streamId: this.streamId, sequence: this.nextSequence, offset: this.verifiedOffset });
    }
    this.drain();
  }

  private drain(): void {
    if (this.startSequence === undefined) return; // a stream taken over: not placed yet
    while (!this.paused && !this.isSettled) {
      const payload = this.pending.get(this.nextSequence);
      if (payload === undefined) break;
      if (this.hasher.backlogBytes >= MAX_BACKLOG_BYTES) {
        // The hashing thread is behind: take no more (and so ack no more) until it catches up.
        if (!this.waitingForHasher) {
          this.waitingForHasher = true;
          void this.hasher.drained().then(() => {
            this.waitingForHasher = false;
            this.drain();
          });
        }
        break;
      }
      this.pending.delete(this.nextSequence);
      this.pendingBytes -= payload.byteLength;
      this.hasher.update(payload);
      this.nextSequence += 1;
      this.verifiedOffset += payload.byteLength;
      this.gapSince = undefined;
      if (!this.deliver(payload)) this.paused = true;
    }
    if (this.isSettled) return;
    if (!this.isOverWindow()) this.wakeRoomWaiters();
    if (this.end && this.nextSequence === this.end.chunkCount) {
      if (this.currentPhase !== "verifying") {
        this.setPhase("verifying");
        this.finish(this.end).catch((error: unknown) =>
          this.fail(StreamError.isInstance(error) ? error : new StreamAbortedError({ message: `[stream] verifying ${this.streamId} failed: ${String(error)}`, cause: error, retryable: true })),
        );
      }
      return;
    }
    if (this.ackableSequence - this.ackedSequence >= this.ackEveryChunks) this.sendAck(false);
  }

  /** Hands a verified chunk on: to the application, or to the spool. Returns false to pause. */
  private deliver(payload: Uint8Array): boolean {
    const { spool } = this;
    if (!spool) return this.push(payload);
    const room = spool.write(payload, () => {
      if (!this.isSettled && this.ackableSequence - this.ackedSequence >= this.ackEveryChunks) this.sendAck(false);
    });
    if (!room) {
      spool.drained(() => {
        this.paused = false;
        this.drain();
      });
    }
    return room;
  }

  /** Reads the spool back into this `Readable`, once the stream is handed over. */
  private readSpool(spool: Spool): void {
    if (this.spoolReader) {
      this.spoolReader.resume();
      return;
    }
    const reader = spool.read(this.manifest.chunkBytes);
    this.spoolReader = reader;
    reader.on("data", (bytes) => {
      if (!this.push(bytes)) reader.pause();
    });
    reader.once("end", () => {
      this.push(null);
      void spool.remove();
    });
    reader.once("error", (error) => this.destroy(folderError(dirname(spool.path), error) as Error));
  }

  private async finish(end: EndFrame): Promise<void> {
    const digest = await this.hasher.digest();
    if (this.isSettled) return;
    if (this.spool) {
      try {
        await this.spool.finish();
      } catch (error) {
        this.fail(folderError(dirname(this.spool.path), error) as StreamError);
        return;
      }
      if (this.isSettled) return;
    }
    if (this.verifiedOffset !== end.byteCount) {
      this.integrityFailure(`received ${this.verifiedOffset} bytes; the end frame says ${end.byteCount}`);
      return;
    }
    const { cipher } = this.context;
    if (cipher ? !cipher.checkEnd(end.sha256, end.chunkCount, end.byteCount, digest) : !digest.equals(end.sha256)) {
      this.integrityFailure(`the SHA-256 of the ${end.byteCount} bytes received differs from the sender's`);
      return;
    }
    if (this.manifest.sha256 !== undefined && digest.toString("hex") !== this.manifest.sha256) {
      this.integrityFailure(`the SHA-256 of the ${end.byteCount} bytes received differs from the one its manifest announced`);
      return;
    }
    this.settle("verified");
    // The sender hears "complete" once the bytes are handed over: when the application has read
    // to the end, or (saveTo) when the file has its final name. Until then, keepalives.
    this.once("end", () => {
      if (!this.completionHeld) this.complete();
    });
    this.resolveResult({
      streamId: this.streamId,
      byteCount: end.byteCount,
      chunkCount: end.chunkCount,
      sha256: digest.toString("hex"),
    });
    // A spooled stream is read back from its file once its receiver hands it over.
    if (this.spool) this.context.spooled?.(this);
    else this.push(null);
  }

  /**
   * @internal Keeps the final acknowledgement back until {@link complete}: `saveTo` sends it once
   * the file is in place, so a sender's success means the file is stored, not only verified.
   */
  holdCompletion(): void {
    this.completionHeld = true;
  }

  /** @internal Tells the sender the verified stream has been handed over; ends the exchange. */
  complete(): void {
    if (this.currentPhase !== "verified") return;
    this.setPhase("completed");
    this.context.settled(this.streamId, this.sendAck(true));
  }

  /** @internal The verified stream could not be handed over (saveTo failed): the sender is told. */
  refuseCompletion(reason: string): void {
    if (this.currentPhase !== "verified") return;
    this.tracker.fail(new StreamAbortedError({ message: `[stream] stream ${this.streamId} was verified but not handed over: ${reason}` }));
    this.setPhase("failed");
    this.reply({ type: FrameType.Abort, streamId: this.streamId, code: AbortCode.Rejected, reason });
    this.context.settled(this.streamId, undefined);
  }

  private sendAck(complete: boolean): AckFrame {
    const nextSequence = complete ? this.nextSequence : this.ackableSequence;
    const ack: AckFrame = {
      type: FrameType.Ack,
      streamId: this.streamId,
      nextSequence,
      offset: nextSequence === this.nextSequence ? this.verifiedOffset : nextSequence * this.manifest.chunkBytes,
      windowChunks: this.manifest.windowChunks,
      complete,
    };
    this.ackedSequence = nextSequence;
    this.lastAckAt = Date.now();
    this.reply(ack);
    return ack;
  }

  private reply(frame: Frame): void {
    this.context.reply(frame);
  }

  /** @internal Called by the receiver every few hundred milliseconds: gap repair, keepalive and dead-sender detection. */
  tick(now: number): void {
    if (this.currentPhase === "verified" && now - this.lastAckAt >= KEEPALIVE_MS) this.sendAck(false);
    if (this.isSettled) return;
    const { expiresAt } = this.manifest;
    if (expiresAt !== undefined && now >= Date.parse(expiresAt)) {
      // The broker drops what of it is still queued: the missing frames will not come.
      const reason = `the stream expired at ${expiresAt} before this receiver had all of it`;
      this.reply({ type: FrameType.Abort, streamId: this.streamId, code: AbortCode.TimedOut, reason });
      this.fail(
        new StreamExpiredError({
          message: `[stream] stream ${this.streamId} (${this.manifest.name}): ${reason} (${this.verifiedOffset} bytes); the broker may have dropped the rest. Send it again with a longer expireAfterMs.`,
          expiresAt,
        }),
      );
      return;
    }
    // A stream waiting for this side (not read or placed yet: a pull, a takeover, a resume) hears
    // from its sender only as heartbeats, so a producerTimeoutMs shorter than their interval
    // would take a live sender for dead; once asked for, its silence counts from then.
    const silenceMs = this.currentPhase === "waiting" ? Math.max(this.context.producerTimeoutMs, 3 * DEFAULT_HEARTBEAT_MS) : this.context.producerTimeoutMs;
    if (now - this.lastFrameAt > silenceMs) {
      this.resumable = true;
      this.reply({ type: FrameType.Abort, streamId: this.streamId, code: AbortCode.TimedOut, reason: "no frame from the sender in time" });
      this.fail(
        new StreamTimeoutError({
          message: `[stream] nothing from the sender of ${this.streamId} (${this.manifest.name}) for ${silenceMs} ms after ${this.verifiedOffset} bytes; the producer is presumed dead. What saveTo wrote is kept for its next attempt to continue (a resume), for partialTtlMs.`,
        }),
      );
      return;
    }
    // Waiting for a chunk that should be here: later ones (or the end) came, or a pull request
    // has not been answered yet.
    const awaitedPull = this.requested && this.nextSequence === this.startSequence && this.pending.size === 0 && !this.end;
    const waitingForMore = this.pending.size > 0 || this.end !== undefined || awaitedPull;
    // A stream taken over asks for nothing until it knows where it starts.
    if (!waitingForMore || this.startSequence === undefined || this.pending.has(this.nextSequence)) {
      this.gapSince = undefined;
    } else {
      this.gapSince ??= now;
      if (now - this.gapSince >= this.context.gapTimeoutMs) {
        this.gapSince = now;
        this.reply({ type: FrameType.Request, streamId: this.streamId, sequence: this.nextSequence, offset: this.verifiedOffset });
      }
    }
    if (now - this.lastAckAt >= KEEPALIVE_MS) this.sendAck(false);
  }

  private integrityFailure(detail: string): void {
    const message = `[stream] stream ${this.streamId} (${this.manifest.name}): ${detail}. Nothing past byte ${this.verifiedOffset} was delivered; send it again.`;
    this.reply({ type: FrameType.Abort, streamId: this.streamId, code: AbortCode.IntegrityFailed, reason: detail });
    this.fail(new IntegrityError({ message, retryable: true }));
  }

  /**
   * The stream failed because its sender vanished (silent past `producerTimeoutMs`) or started it
   * again: what `saveTo` has written is kept, so the sender's next attempt (a resume, a restart
   * of its process) continues it. Swept after `partialTtlMs` if nobody does.
   */
  private resumable = false;

  /**
   * @internal The sender started this stream again (a new attempt: its process restarted, or it
   * resumes): this one ends, keeping what `saveTo` has written for the new attempt to continue.
   */
  supersede(): void {
    if (this.isSettled) return;
    this.resumable = true;
    this.fail(
      new StreamAbortedError({
        message: `[stream] the sender of ${this.streamId} (${this.manifest.name}) started it again after ${this.verifiedOffset} bytes; the new attempt continues from what was saved`,
        retryable: true,
      }),
    );
  }

  private fail(error: StreamError): void {
    if (this.isSettled) return;
    void this.spool?.remove();
    this.settle("failed");
    this.context.settled(this.streamId, undefined, error);
    this.rejectResult(error);
    // A stream not yet read has no 'error' listener; the error still reaches whoever reads it
    // (iteration rethrows it, `result` rejects with it) without crashing the process first.
    if (this.listenerCount("error") === 0) this.once("error", () => {});
    this.destroy(error);
  }

  /** Takes no more frames: the stream is verified, or has failed. */
  private settle(phase: "verified" | "failed"): void {
    this.setPhase(phase);
    this.hasher.dispose();
    this.pending.clear();
    this.pendingBytes = 0;
    this.wakeRoomWaiters();
  }

  private wakeRoomWaiters(): void {
    const waiters = this.roomWaiters;
    this.roomWaiters = [];
    for (const wake of waiters) wake();
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    this.spoolReader?.destroy();
    // (Also after a refused completion: removing twice is harmless.)
    if (this.currentPhase !== "completed") void this.spool?.remove();
    if (this.currentPhase === "verified" && !this.readableEnded) {
      // Destroyed after verification, before reading to the end: not handed over.
      this.refuseCompletion(error?.message ?? "the receiving application stopped before taking the whole stream");
    }
    if (!this.isSettled) {
      const refused = refusal(error);
      const abort = refused === undefined
        ? { code: AbortCode.Cancelled, reason: error?.message ?? "the receiver stopped reading" }
        : { code: AbortCode.Rejected, reason: refused };
      this.reply({ type: FrameType.Abort, streamId: this.streamId, ...abort });
      const reason = StreamError.isInstance(error)
        ? error
        : new StreamAbortedError({ message: `[stream] stream ${this.streamId} was destroyed by the receiving application`, cause: error ?? undefined });
      this.settle("failed");
      // A refusal (an unsafe name, a folder without room) is the receiver's to report.
      this.context.settled(this.streamId, undefined, refused === undefined ? undefined : reason);
      this.rejectResult(reason);
    }
    callback(error);
  }
}
