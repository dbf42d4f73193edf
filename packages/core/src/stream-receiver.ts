import { EventEmitter } from "node:events";
import { RECEIVE_RETRY, type RetryPolicy, retryPolicy, withRetries } from "./backoff";
import { IntegrityError } from "./errors/integrity-error";
import { ProtocolError } from "./errors/protocol-error";
import { StreamRefusedError } from "./errors/stream-refused-error";
import { TransportError } from "./errors/transport-error";
import { StreamError } from "./errors/stream-error";
import { StreamExpiredError } from "./errors/stream-expired-error";
import { StreamTimeoutError } from "./errors/stream-timeout-error";
import { StreamWithdrawnError } from "./errors/stream-withdrawn-error";
import { TargetFolderError } from "./errors/target-folder-error";
import { UnsafePathError } from "./errors/unsafe-path-error";
import { IncomingStream } from "./incoming-stream";
import { type E2eKey, E2eKeyring } from "./e2e/e2e-keyring";
import { StreamCipher } from "./e2e/stream-cipher";
import { E2eKeyError } from "./errors/e2e-key-error";
import type { TransferJournal } from "./journal";
import { journalReceive } from "./journaled-receive";
import { checkStatusInterval } from "./transfer-status";
import { DEFAULT_PARTIAL_TTL_MS, sweepPartials } from "./partial-files";
import { defaultSpoolDir } from "./spool";
import { COMMON_HEADER_BYTES, decodeFrame, encodeFrame, MAX_MANIFEST_BYTES, peekFrame } from "./protocol/frame-codec";
import { AbortCode, type AckFrame, type Frame, FrameType, type Manifest } from "./protocol/frames";
import { DEFAULT_REPORTS_PER_SECOND, type Rejection, type RejectionCode, ReportLimiter } from "./rejections";
import type { RetryOptions } from "./retrying-transport";
import type { Subscription, Transport } from "./transport";

/** Options of {@link StreamClient.receive}. */
export interface ReceiveOptions {
  /** Stops receiving, like {@link StreamReceiver.close}. */
  readonly signal?: AbortSignal;
  /**
   * A stream whose sender sends nothing (not even a heartbeat) for this long is ended with a
   * `StreamTimeoutError`: the producer is presumed dead. A stream not yet read or placed (a pull,
   * a takeover, a resume), whose sender waits to be asked and only heartbeats meanwhile (every
   * 5 s by default), is given at least 15 s; once asked for, the count starts again. @default 60000
   */
  readonly producerTimeoutMs?: number;
  /** A missing chunk is asked for again after this long. @default 1000 */
  readonly gapTimeoutMs?: number;
  /**
   * Called with the `error` of every `'rejected'` report (the same reports, under the same rate
   * limit: see {@link StreamReceiverEvents.rejected}), and with problems that refuse no input: a
   * reply that could not be published, a partial file that no longer matches its journal, a
   * queued stream whose sender fell silent.
   */
  readonly onFrameError?: (error: StreamError) => void;
  /**
   * The most memory one stream may ask this receiver to hold: a stream whose manifest declares a
   * larger window is refused (its sender gets a `StreamRefusedError` saying so). @default 64 MiB
   */
  readonly maxWindowBytes?: number;
  /**
   * The largest manifest (an Open's JSON: name, metadata, ...) taken, in bytes; at most the
   * protocol's 64 KiB, which no frame can exceed. A larger one is refused. @default 65536
   */
  readonly maxManifestBytes?: number;
  /** The most `metadata` entries a manifest may carry; a stream with more is refused. @default 256 */
  readonly maxMetadataEntries?: number;
  /**
   * The longest stream name taken, in characters (UTF-16 code units); at most the protocol's
   * 1024, past which an Open does not decode. `saveTo` fits what it writes into 255 bytes
   * besides. A longer name is refused. @default 1024
   */
  readonly maxNameChars?: number;
  /**
   * The most streams this receiver holds at once: handed over, being spooled, or queued past its
   * `concurrency`. An Open past it is refused (its sender is told). @default 4096
   */
  readonly maxOpenStreams?: number;
  /**
   * The most reports (`'rejected'`, `onFrameError`) per second for each cause
   * ({@link RejectionCode}); past it they are counted, and once the second is over one summary
   * says how many were held back (`Rejection.suppressed`). A flood of bad frames then costs a
   * counter, not a log line each. @default 10
   */
  readonly maxReportsPerSecond?: number;
  /**
   * How often, and how far apart, the receiver tries to take a stream it cannot take at once:
   * `saveTo`'s folder cannot be created or written or lacks room, or a `'stream'` listener
   * throws. Meanwhile the stream's frames wait in the broker and the CPU idles; past the last
   * attempt the stream is refused and its sender told why (Abort Rejected). Core retries here,
   * so the transport never sees a failed frame and no broker redelivers one in a loop.
   * `false`: refuse at the first failure.
   * @default { retries: 2, initialDelayMs: 1000, maxDelayMs: 8000 } (3 attempts, 1 s then 2 s apart)
   */
  readonly retry?: RetryOptions | false;
  /**
   * What to do with a stream **taken over**: its sender lost the receiver that had it (silent for
   * the sender's `takeoverAfterMs`, presumed dead) and published its Open again, marked
   * (`IncomingStream.takeover`).
   * - `"continue"`: `saveTo` into the dead receiver's folder continues its partial file (cut to
   *   whole chunks, re-read into the SHA-256) and asks the sender for the rest; without such a
   *   file, or when the application reads the stream itself, it starts from byte 0
   *   (`IncomingStream.startOffset` says where).
   * - `"restart"`: from byte 0; `saveTo` removes the dead receiver's partial file.
   * - `"discard"`: the stream is refused (its sender gets a `StreamRefusedError`) and the
   *   receiver emits `'takeoverDiscarded'` instead of `'stream'`.
   * @default "continue"
   */
  readonly takeover?: "continue" | "restart" | "discard";
  /**
   * `saveTo` removes hidden partial files in its folder (`.<name>.<streamId>.<hex>.partial`, left
   * by a receiver that died) untouched for this long, in ms: by then their sender has given up
   * (its `idleTimeoutMs`, 120 s by default), so nobody can take them over. A live partial file
   * is touched every 30 s, so keep this well above that. Partial files a journal may still resume
   * (`createStreamClient({ journal })`) are spared until their entry expires. @default 600000 (10 minutes)
   */
  readonly partialTtlMs?: number;
  /** Keep other receivers' partial files whatever their age (no sweep), e.g. to inspect them. @default false */
  readonly keepPartial?: boolean;
  /**
   * How many streams this receiver takes at once. A stream that arrives while it has that many
   * (handed over and not yet read to the end or saved) waits in its queue, in order of arrival,
   * and is handed over when one of them ends: the application never has more than this many
   * streams open, never chunks of more interleaved. A queued stream's sender is told (its Acks
   * say `windowChunks: 0`, `SendProgress.queued`) and waits without resending; what it had already
   * published is dropped and asked for again when the stream is taken. Queued streams do not
   * count against `maxWindowBytes`: they hold no data. When the receiver closes or dies, their
   * senders offer them to the destination's other receivers (takeover), after `takeoverAfterMs`.
   * @default 1
   */
  readonly concurrency?: number;
  /**
   * How long frames of a stream whose Open has not come are held (at most 16 MiB for all such
   * streams): the Open may be late, or the sender, having lost the receiver that had it, sends it
   * again (takeover, after its `takeoverAfterMs`). Then they are dropped and `'orphaned'` emitted.
   * @default 30000
   */
  readonly orphanTimeoutMs?: number;
  /**
   * Where streams are spooled before the application sees them: transactional streams
   * (`SendOptions.delivery`), and store-and-forward streams (`flowControl: "broker"`) that arrive
   * while the receiver is busy, whose frames cannot be asked for again. Spool files are hidden
   * partial files, removed once the stream is handed over (`saveTo` moves them) and swept like
   * `saveTo`'s after `partialTtlMs`. @default `<os.tmpdir()>/stream-spool`
   */
  readonly spoolDir?: string;
  /**
   * How many streams this receiver takes in all (a command that receives one file and exits).
   * Streams that arrive past it stay queued here until the receiver closes; their senders then
   * offer them to other receivers. A stream its sender withdrew (it fails with
   * {@link StreamWithdrawnError}: no receiver had answered it in time) does not count. @default Infinity
   */
  readonly maxStreams?: number;
  /**
   * How often, in ms, each stream's `'status'` (`IncomingStream.status`: bytes, rate, ETA) is
   * emitted while it goes on; `saveTo`'s `statusIntervalMs` changes it for one stream. @default 1000
   */
  readonly statusIntervalMs?: number;
  /**
   * The keys to open end-to-end encrypted streams with (`SendOptions.encryption`), by key id. A
   * stream under a key id not held here is refused (its sender gets a `StreamRefusedError` naming
   * the key id, `onFrameError` an {@link E2eKeyError}) and nothing of it is written; one whose
   * sealed manifest, chunk or End was changed on the way fails with an `IntegrityError`.
   */
  readonly keys?: E2eKeyring | readonly E2eKey[];
  /** Refuse streams that are not encrypted end to end (`onFrameError` gets an {@link E2eKeyError}). @default false */
  readonly requireEncryption?: boolean;
}

/** @internal What the client gives a receiver besides its options. */
export interface ReceiverInternals {
  /** Journal each `saveTo` here (`direction: "receive"`), and check partial files against it. */
  readonly journal?: TransferJournal | undefined;
  /** How journal entries name the broker. */
  readonly brokerLabel?: string | undefined;
  /**
   * Take only this stream (`resumeSaveTo`): frames of others are left alone, unanswered, so their
   * senders offer them to the destination's other receivers.
   */
  readonly onlyStreamId?: string;
}

/** How many ended streams the receiver remembers, to drop their late duplicates. */
const REMEMBERED_STREAMS = 4096;
/** Bytes of frames whose stream's open frame has not arrived yet, held at most (all streams). */
const ORPHAN_BYTES = 16 * 1024 * 1024;
/** Streams whose frames are being held or counted without their Open, at most. */
const MAX_ORPHANS = 4096;
/** The protocol's longest stream name, in characters (`parseManifest`). */
const MAX_NAME_CHARS = 1024;
/** A queued stream's keepalive: like an active stream's, at least once a second. */
const QUEUED_KEEPALIVE_MS = 1000;

/** Checks a limit: a whole number from 1 to `max`, or Infinity when `max` allows. */
function checkLimit(option: string, value: number | undefined, byDefault: number, max = Number.POSITIVE_INFINITY): number {
  if (value === undefined) return byDefault;
  if (value >= 1 && value <= max && (Number.isInteger(value) || value === Number.POSITIVE_INFINITY)) return value;
  const range = max === Number.POSITIVE_INFINITY ? "at least 1 (Infinity for no limit)" : `from 1 to ${max}`;
  throw new RangeError(`[stream] ${option} must be a whole number, ${range}; got ${String(value)}`);
}

/** Frames of a stream whose Open has not come (yet), and how many came in all. */
interface HeldOrphans {
  readonly frames: Frame[];
  readonly since: number;
  /** Frames and payload bytes that came, held or not (past the bound they are dropped). */
  seenFrames: number;
  seenBytes: number;
}

/** Frames that came without their stream's Open and were dropped; see `'orphaned'`. */
export interface OrphanReport {
  readonly streamId: string;
  /** Frames of the stream that came, and their payload bytes. */
  readonly frames: number;
  readonly bytes: number;
  /** How long they were held waiting for the Open, in ms. */
  readonly heldMs: number;
}

/**
 * A stream waiting for its turn: heard of but not taken yet (the receiver is at its
 * `concurrency`), or spooled and verified (`stream`).
 */
interface QueuedStream {
  readonly manifest: Manifest;
  readonly stream?: IncomingStream;
  /** When a frame of it last arrived: a queued stream whose sender fell silent is dropped. */
  lastFrameAt: number;
  lastAckAt: number;
}

/** The cause a stream that ended with `error` was rejected for, or `undefined` for an ending that rejects nothing (a timeout, an abort). */
function rejectionCodeOf(error: StreamError | undefined): RejectionCode | undefined {
  if (IntegrityError.isInstance(error)) return "integrity";
  if (UnsafePathError.isInstance(error)) return "unsafe-name";
  if (TargetFolderError.isInstance(error)) return error.fsCode === "ENOSPC" || error.fsCode === "EDQUOT" ? "no-space" : "refused";
  return undefined; // a StreamRefusedError of the receiver's own is reported where it is made (refuse)
}

const openKey = (manifest: Manifest): string => `${manifest.streamId}/${manifest.createdAt}`;

const frameBytes = (frame: Frame): number => (frame.type === FrameType.Data ? frame.payload.byteLength : 64);

/** Events of a {@link StreamReceiver}. */
export interface StreamReceiverEvents {
  stream: [stream: IncomingStream];
  /** A stream taken over was refused under `takeover: "discard"`; its sender was told. */
  takeoverDiscarded: [manifest: Manifest];
  /** A stream arrived while the receiver was at its `concurrency`: it waits in the queue (its sender was told). */
  queued: [manifest: Manifest];
  /**
   * Frames of a stream whose Open never came were dropped after `orphanTimeoutMs`: chunks left
   * behind by a dead-lettered or purged Open, a foreign or mistaken consumer. Never handed over.
   * (Reported as `'rejected'` too, code `"orphaned"`.)
   */
  orphaned: [report: OrphanReport];
  /**
   * A frame or stream was refused or dropped for cause: one that does not decode, an Open past a
   * limit, a stream whose data failed its checks, a name `saveTo` will not write, frames of no
   * known stream; see {@link RejectionCode}. Its sender was told (Abort Rejected, or
   * IntegrityFailed) when its inbox is known. Duplicates and late copies of ended streams are
   * normal traffic, not reported. At most `maxReportsPerSecond` per code, then a summary.
   */
  rejected: [rejection: Rejection];
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
  private readonly orphans = new Map<string, HeldOrphans>();
  private orphanBytes = 0;
  private readonly unclaimed: IncomingStream[] = [];
  private waiter: (() => void) | undefined;
  private subscription: Subscription | undefined;
  private closed = false;
  private readonly timer: NodeJS.Timeout;
  private readonly retry: RetryPolicy;
  /** Aborted by {@link close}: a retry in progress stops waiting. */
  private readonly closing = new AbortController();
  /** `streamId/createdAt` of streams their sender aborted: a late copy of such an Open is stale. */
  private readonly abortedOpens = new Set<string>();
  /** Streams waiting for room, in order of arrival; see {@link ReceiveOptions.concurrency}. */
  private readonly queued = new Map<string, QueuedStream>();
  private readonly concurrency: number;
  private readonly maxStreams: number;
  /** {@link ReceiveOptions.keys} as a keyring. */
  private readonly keys: E2eKeyring | undefined;
  private readonly limits: { manifestBytes: number; metadataEntries: number; nameChars: number; openStreams: number; windowBytes: number };
  /** Holds reports back past `maxReportsPerSecond`; see {@link report}. */
  private readonly limiter: ReportLimiter;
  /** Streams handed over so far; see {@link ReceiveOptions.maxStreams}. */
  private taken = 0;

  /** @internal Use {@link StreamClient.receive}. */
  constructor(
    private readonly transport: Transport,
    readonly destination: string,
    private readonly options: ReceiveOptions = {},
    private readonly internals: ReceiverInternals = {},
  ) {
    super();
    this.retry = retryPolicy(options.retry, RECEIVE_RETRY);
    this.concurrency = checkLimit("concurrency", options.concurrency, 1);
    this.maxStreams = checkLimit("maxStreams", options.maxStreams, Number.POSITIVE_INFINITY);
    this.keys = options.keys === undefined || options.keys instanceof E2eKeyring ? options.keys : new E2eKeyring(options.keys);
    this.limits = {
      manifestBytes: checkLimit("maxManifestBytes", options.maxManifestBytes, MAX_MANIFEST_BYTES, MAX_MANIFEST_BYTES),
      metadataEntries: checkLimit("maxMetadataEntries", options.maxMetadataEntries, 256),
      nameChars: checkLimit("maxNameChars", options.maxNameChars, MAX_NAME_CHARS, MAX_NAME_CHARS),
      openStreams: checkLimit("maxOpenStreams", options.maxOpenStreams, 4096),
      windowBytes: checkLimit("maxWindowBytes", options.maxWindowBytes, 64 * 1024 * 1024),
    };
    this.limiter = new ReportLimiter(checkLimit("maxReportsPerSecond", options.maxReportsPerSecond, DEFAULT_REPORTS_PER_SECOND), (summary) =>
      this.emit("rejected", summary),
    );
    checkStatusInterval(options.statusIntervalMs, "statusIntervalMs");
    // Spool files a receiver that died left behind go once abandoned, as saveTo's partial files do.
    if (!options.keepPartial) void sweepPartials(options.spoolDir ?? defaultSpoolDir(), options.partialTtlMs ?? DEFAULT_PARTIAL_TTL_MS, "");
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
      this.tickQueued(now);
      // Frames of a stream whose open frame never came (it went to another consumer) expire.
      for (const [id, held] of this.orphans) {
        if (now - held.since < this.orphanTimeoutMs) continue;
        this.dropOrphans(id);
        const report = { streamId: id, frames: held.seenFrames, bytes: held.seenBytes, heldMs: now - held.since };
        this.emit("orphaned", report);
        const reason = `${report.frames} frame(s) (${report.bytes} payload bytes) of stream ${id} came without its Open and were dropped after ${report.heldMs} ms`;
        this.report(new ProtocolError({ message: `[stream] ${reason}` }), { code: "orphaned", reason, streamId: id });
      }
      this.limiter.flush(now);
    }, 250);
    this.timer.unref();
    options.signal?.addEventListener("abort", () => void this.close(), { once: true });
    // Streams that came before the first 'stream' listener (a transport may deliver within
    // subscribe) go to it, unless an iterator takes them.
    (this as EventEmitter).on("newListener", (event: string | symbol) => {
      if (event === "stream") queueMicrotask(() => this.flushUnclaimed());
    });
  }

  /**
   * The transport's handler. It never rejects: a frame whose handling throws is tried again here
   * with backoff, then its stream is refused and the frame dropped (acknowledged), so no broker
   * redelivers it in a loop, whatever its adapter does with a rejected frame.
   */
  private onFrame(bytes: Uint8Array): Promise<void> | undefined {
    try {
      return this.handle(bytes);
    } catch (error) {
      // Attempt 1 was the call above; withRetries waits before each further one.
      return withRetries((attempt) => (attempt === 1 ? Promise.reject(error) : this.handle(bytes)), this.retry, {
        signal: this.closing.signal,
      }).catch((last: unknown) => this.refuse(decodeFrame(bytes), last));
    }
  }

  private handle(bytes: Uint8Array): Promise<void> | undefined {
    let frame: Frame;
    try {
      frame = decodeFrame(bytes);
    } catch (error) {
      this.rejectUndecodable(bytes, error);
      return undefined;
    }
    const { streamId } = frame;
    if (this.internals.onlyStreamId !== undefined && streamId !== this.internals.onlyStreamId) return undefined;
    // A late copy of the Open of an attempt its sender aborted (a new attempt has a new createdAt).
    if (frame.type === FrameType.Open && this.abortedOpens.has(openKey(frame.manifest))) return undefined;
    if (frame.type === FrameType.Open) {
      const manifest = this.unseal(frame.manifest);
      if (!manifest) return undefined;
      frame = { ...frame, manifest };
    }
    if (this.ended.has(streamId)) {
      const finalAck = this.ended.get(streamId);
      if (finalAck) {
        // A late duplicate of a completed stream. If its sender missed the final ack, it asks
        // again with its end frame (or, silent for long, with a takeover Open).
        if (frame.type === FrameType.End || (frame.type === FrameType.Open && frame.manifest.takeover)) {
          // An Open says where its sender listens now: a resume from a new process has a new inbox.
          this.reply(finalAck, frame.streamId, frame.type === FrameType.Open ? frame.manifest.replyTo : this.replyTo.get(streamId));
        }
        return undefined;
      }
      // A failed stream may be sent again under the same id; anything else of it is stale.
      if (frame.type !== FrameType.Open) return undefined;
      this.ended.delete(streamId);
    }
    const queued = this.queued.get(streamId);
    if (queued && !queued.stream) {
      // Nothing of a queued stream is kept: it is asked for again when the stream is taken.
      queued.lastFrameAt = Date.now();
      if (frame.type === FrameType.Abort) {
        this.queued.delete(streamId);
        this.rememberAborted(queued.manifest);
        this.ended.set(streamId, undefined);
      }
      return undefined;
    }
    const stream = this.streams.get(streamId);
    if (frame.type === FrameType.Open) {
      if (!stream) {
        this.open(frame.manifest, bytes.byteLength - COMMON_HEADER_BYTES - 4);
      } else if (frame.manifest.createdAt !== stream.manifest.createdAt && !stream.settled) {
        // A new attempt: its sender restarted (or resumes). The old one ends, keeping what it
        // saved, and the new one takes its place once it has.
        stream.supersede();
        this.ended.delete(streamId); // the old attempt ended; frames of the new one are not stale
        this.enqueue(frame.manifest);
      }
      return undefined;
    }
    if (frame.type === FrameType.Ack || frame.type === FrameType.Request) return undefined;
    if (!stream) {
      this.holdOrphan(frame);
      return undefined;
    }
    stream.accept(frame);
    if (frame.type === FrameType.Abort) this.rememberAborted(stream.manifest);
    return stream.roomForMore();
  }

  /** Records that the sender aborted this attempt at the stream (a withdrawn send among them). */
  private rememberAborted(manifest: Manifest): void {
    this.abortedOpens.add(openKey(manifest));
    if (this.abortedOpens.size > REMEMBERED_STREAMS) this.abortedOpens.delete(this.abortedOpens.values().next().value as string);
  }

  /** Refuses the stream of `frame`, whose handling kept failing with `error`; its sender is told. */
  private refuse(frame: Frame, error: unknown): void {
    const { streamId } = frame;
    const attempts = this.retry.retries + 1;
    const reason = `the receiver could not take the stream (${attempts} attempt${attempts === 1 ? "" : "s"}): ${error instanceof Error ? error.message : String(error)}`;
    const refused = new StreamRefusedError({ message: `[stream] ${reason}`, cause: error, reason });
    const stream = this.streams.get(streamId);
    if (stream) {
      stream.destroy(refused); // Abort Rejected with the reason, and the stream is remembered as failed.
    } else {
      const replyTo = frame.type === FrameType.Open ? frame.manifest.replyTo : this.replyTo.get(streamId);
      this.reply({ type: FrameType.Abort, streamId, code: AbortCode.Rejected, reason }, streamId, replyTo);
      if (frame.type === FrameType.Open) this.rememberAborted(frame.manifest);
      this.ended.set(streamId, undefined);
      this.orphans.delete(streamId);
    }
    const name = stream?.manifest.name ?? (frame.type === FrameType.Open ? frame.manifest.name : undefined);
    const reported = new StreamRefusedError({ message: `[stream] refused stream ${streamId}: ${reason}`, cause: error, reason });
    this.report(reported, { code: "refused", reason, streamId, ...(name === undefined ? {} : { name }) });
  }

  /**
   * The one place the receiver reports: `onFrameError` and, for refused input (`rejection`),
   * `'rejected'`: the same reports, at most `maxReportsPerSecond` per code (see {@link ReportLimiter}).
   * Returns whether it went out.
   */
  private report(error: StreamError, rejection?: Omit<Rejection, "error">): boolean {
    const full = rejection && { ...rejection, error };
    if (!this.limiter.admit(rejection?.code ?? error.code, Date.now(), full)) return false;
    try {
      this.options.onFrameError?.(error);
      if (full) this.emit("rejected", full);
    } catch (thrown) {
      // A listener's bug, not the frame's: thrown where it surfaces as any listener's would,
      // never into the frame handler (which would take it for a frame it cannot handle).
      queueMicrotask(() => {
        throw thrown;
      });
    }
    return true;
  }

  /** Reports a frame that does not decode; the sender of an Open is told why when its manifest names its inbox. */
  private rejectUndecodable(bytes: Uint8Array, error: unknown): void {
    const { kind, streamId, name, replyTo } = peekFrame(bytes);
    const typed = StreamError.isInstance(error) ? error : new ProtocolError({ message: `[stream] [protocol] ${String(error)}`, cause: error });
    const code: RejectionCode = kind === "malformed" ? "malformed-frame" : kind;
    const reason = typed.message.replace(/^\[stream\] (\[protocol\] )?/, "");
    const reported = this.report(typed, { code, reason, ...(streamId === undefined ? {} : { streamId }), ...(name === undefined ? {} : { name }) });
    // Best effort, and no more often than reports: an attacker's flood must not become one of replies.
    if (reported && streamId !== undefined && replyTo !== undefined && !this.streams.has(streamId)) {
      this.reply({ type: FrameType.Abort, streamId, code: AbortCode.Rejected, reason: `its Open frame was refused: ${reason}` }, streamId, replyTo);
    }
  }

  /** Reports a stream that ended for cause (its data failed its checks, or it was refused); other endings are not rejections. */
  private reportSettled(manifest: Manifest, error: StreamError | undefined): void {
    const code = rejectionCodeOf(error);
    if (!error || !code) return;
    const reason = error.message.replace(/^\[stream\] /, "");
    this.report(error, { code, reason, streamId: manifest.streamId, name: manifest.name });
  }

  private readonly replyTo = new Map<string, string>();

  /** Replies still being published; {@link close} lets them go out before it closes. */
  private readonly replies = new Set<Promise<void>>();

  private reply(frame: Frame, key: string, channel: string | undefined): void {
    if (!channel) return;
    const sending = this.transport.publish(channel, encodeFrame(frame), { key, kind: "inbox" }).catch((error: unknown) => {
      // Acks repeat every second and requests until answered, so a lost reply is repaired.
      this.report(
        StreamError.isInstance(error)
          ? error
          : new TransportError({ message: `[stream] [${this.transport.name}] could not reply to ${channel}: ${String(error)}`, cause: error }),
      );
    });
    this.replies.add(sending);
    void sending.finally(() => this.replies.delete(sending));
  }

  /**
   * The manifest of an Open, its sealed fields restored when the stream is encrypted end to end;
   * `undefined` when the stream is refused: no key under its key id, a seal that does not hold, a
   * plain stream when only encrypted ones are taken. The sender is told (without any secret: the
   * key id is in the clear anyway) unless the stream is already here (a forged Open does not end it).
   */
  private unseal(wire: Manifest): Manifest | undefined {
    if (!wire.e2e && !this.options.requireEncryption) return wire;
    let failure: StreamError;
    try {
      if (!wire.e2e) {
        throw new E2eKeyError({ message: `[stream] [e2e] stream ${wire.streamId} is not end-to-end encrypted and this receiver takes only encrypted streams (requireEncryption); it was refused` });
      }
      return StreamCipher.forManifest(wire, this.keys).openManifest(wire);
    } catch (error) {
      failure = StreamError.isInstance(error) ? error : new ProtocolError({ message: `[stream] [e2e] ${String(error)}`, cause: error });
    }
    const { streamId } = wire;
    const reason = E2eKeyError.isInstance(failure)
      ? failure.keyId === undefined
        ? "the receiver takes only end-to-end encrypted streams"
        : `the receiver has no key ${failure.keyId} for this end-to-end encrypted stream`
      : "its sealed manifest does not open under the receiver's key: changed on the way, or another key under the same id";
    this.report(failure, { code: E2eKeyError.isInstance(failure) ? "refused" : "integrity", reason, streamId });
    if (this.streams.has(streamId) || this.ended.get(streamId) || this.queued.has(streamId)) return undefined;
    this.refuseOpen(wire, reason, E2eKeyError.isInstance(failure) ? AbortCode.Rejected : AbortCode.IntegrityFailed);
    this.rememberAborted(wire); // its repeated Opens are dropped unseen
    return undefined;
  }

  /** Refuses the stream of `manifest` on its Open: its sender is told (Abort `code`, Rejected by default), and what else of it comes is dropped. */
  private refuseOpen(manifest: Manifest, reason: string, code: AbortCode = AbortCode.Rejected): void {
    const { streamId, replyTo } = manifest;
    this.reply({ type: FrameType.Abort, streamId, code, reason }, streamId, replyTo);
    this.dropOrphans(streamId);
    this.ended.set(streamId, undefined);
  }

  /** Which of this receiver's limits `manifest` (of `manifestBytes` bytes of JSON) is past, if any. */
  private overLimit(manifest: Manifest, manifestBytes: number): { code: RejectionCode; reason: string } | undefined {
    const { limits } = this;
    if (manifestBytes > limits.manifestBytes) {
      return { code: "manifest-too-large", reason: `its manifest of ${manifestBytes} bytes exceeds this receiver's maxManifestBytes ${limits.manifestBytes}; send less metadata` };
    }
    if (manifest.name.length > limits.nameChars) {
      return { code: "name-too-long", reason: `its name of ${manifest.name.length} characters exceeds this receiver's maxNameChars ${limits.nameChars}; send a shorter name` };
    }
    const entries = Object.keys(manifest.metadata).length;
    if (entries > limits.metadataEntries) {
      return { code: "too-many-metadata", reason: `its ${entries} metadata entries exceed this receiver's maxMetadataEntries ${limits.metadataEntries}; send fewer` };
    }
    if (manifest.windowBytes > limits.windowBytes) {
      return { code: "window-too-large", reason: `its window of ${manifest.windowBytes} bytes exceeds this receiver's maxWindowBytes ${limits.windowBytes}; send with a smaller windowBytes` };
    }
    // A spooled stream waiting its turn is in both maps; counted once (looked at only near the limit).
    const held = this.streams.size + this.queued.size;
    const open = held < limits.openStreams ? held : held - [...this.queued.values()].filter((entry) => entry.stream).length;
    if (open >= limits.openStreams) {
      return { code: "too-many-streams", reason: `the receiver holds ${open} streams, its maxOpenStreams; send it again later` };
    }
    return undefined;
  }

  private open(manifest: Manifest, manifestBytes: number): void {
    if (this.closed) return;
    const { streamId, replyTo, name } = manifest;
    const { expiresAt } = manifest;
    if (expiresAt !== undefined && Date.parse(expiresAt) <= Date.now()) {
      // Its frames are being dropped by the broker: waiting for them could only end in a gap.
      const reason = `it expired at ${expiresAt} (the sender's expireAfterMs), so the broker may already have dropped some of its frames; send it again`;
      this.refuseOpen(manifest, reason);
      this.rememberAborted(manifest); // its repeated Opens are dropped unseen
      const error = new StreamExpiredError({ message: `[stream] refused stream ${streamId} (${name}): ${reason}`, expiresAt });
      this.report(error, { code: "expired", reason, streamId, name });
      return;
    }
    const over = this.overLimit(manifest, manifestBytes);
    if (over) {
      const { code, reason } = over;
      this.refuseOpen(manifest, reason);
      this.report(new StreamRefusedError({ message: `[stream] refused stream ${streamId} (${name}): ${reason}`, reason }), { ...over, streamId, name });
      return;
    }
    if (manifest.takeover && this.options.takeover === "discard") {
      this.refuseOpen(manifest, 'the receiver discards streams whose first receiver died (takeover: "discard"); send again');
      this.emit("takeoverDiscarded", manifest);
      return;
    }
    const held = this.orphans.get(streamId)?.frames ?? [];
    if (held.some((frame) => frame.type === FrameType.Abort)) {
      // Its sender aborted it (withdrew it, say) before this Open came: never hand it over.
      this.dropOrphans(streamId);
      this.rememberAborted(manifest);
      this.ended.set(streamId, undefined);
      return;
    }
    const mustWait = !this.hasRoom() || this.queued.size > 0;
    // Spooled: a transactional stream, and a store-and-forward one that must wait its turn (its
    // frames cannot be asked for again: its sender is not listening).
    if (manifest.delivery === "transactional" || (mustWait && replyTo === "")) {
      this.take(manifest, held, true);
    } else if (mustWait) {
      this.enqueue(manifest);
    } else {
      this.take(manifest, held, false);
    }
  }

  /**
   * Creates the stream and hands it over, or (`spool`) has it spooled first and queued once
   * verified; `held` are its frames that came before its Open.
   */
  private take(manifest: Manifest, held: readonly Frame[], spool: boolean): IncomingStream {
    const { streamId, replyTo } = manifest;
    this.replyTo.set(streamId, replyTo);
    const partialTtlMs = this.options.keepPartial ? Number.POSITIVE_INFINITY : (this.options.partialTtlMs ?? DEFAULT_PARTIAL_TTL_MS);
    const stream = new IncomingStream(manifest, {
      reply: (frame) => this.reply(frame, streamId, replyTo),
      settled: (id, finalAck, error) => {
        this.reportSettled(manifest, error);
        // A stream its sender withdrew was never a file to take: it does not count against maxStreams.
        if (StreamWithdrawnError.isInstance(error) && this.handed.has(id)) this.taken -= 1;
        this.streams.delete(id);
        this.handed.delete(id);
        this.queued.delete(id); // a spooled stream that failed before it was handed over
        this.ended.set(id, finalAck);
        if (this.ended.size > REMEMBERED_STREAMS) {
          const oldest = this.ended.keys().next().value as string;
          this.ended.delete(oldest);
          this.replyTo.delete(oldest);
        }
        if (!finalAck) {
          this.replyTo.delete(id);
          // This attempt failed here and its sender was told: a takeover Open of it still on its
          // way is stale (a new attempt under the same id has a new createdAt).
          this.rememberAborted(manifest);
        }
        // Not from inside the stream's own settling, and after what the application does once
        // the stream is read or saved (the continuation of its await): then the next one.
        setImmediate(() => this.dequeue());
      },
      producerTimeoutMs: this.producerTimeoutMs,
      gapTimeoutMs: this.options.gapTimeoutMs ?? 1000,
      retry: this.retry,
      takeover: this.options.takeover === "restart" ? "restart" : "continue",
      partialTtlMs,
      ...(this.options.statusIntervalMs === undefined ? {} : { statusIntervalMs: this.options.statusIntervalMs }),
      ...(spool ? { spoolDir: this.options.spoolDir ?? defaultSpoolDir(), spooled: (verified: IncomingStream) => this.spooled(verified) } : {}),
      ...(this.internals.journal ? { journal: this.journalFor(this.internals.journal) } : {}),
      ...(manifest.e2e ? { cipher: StreamCipher.forManifest(manifest, this.keys) } : {}),
    });
    this.streams.set(streamId, stream);
    if (!spool) {
      try {
        this.handOver(stream);
      } catch (error) {
        // Undone, so that the next attempt (see onFrame) hands the listeners a fresh stream.
        this.streams.delete(streamId);
        stream.discard();
        throw error;
      }
    }
    this.dropOrphans(streamId);
    for (const frame of held) stream.accept(frame);
    stream.tick(Date.now()); // The first Ack at once: the sender holds its End until it hears a receiver.
    return stream;
  }

  /** How a stream's `saveTo` is journaled: under this destination and broker, a mismatch reported to `onFrameError`. */
  private journalFor(journal: TransferJournal) {
    return (stream: IncomingStream, folder: string, save: { fileName?: string } | undefined) =>
      journalReceive({
        journal,
        stream,
        folder,
        destination: this.destination,
        broker: this.internals.brokerLabel,
        fileName: save?.fileName,
        report: (error) => void this.report(error),
      });
  }

  /** Gives the application `stream`: to the `'stream'` listeners, or to the iterator. */
  private handOver(stream: IncomingStream): void {
    this.handed.add(stream.streamId);
    this.taken += 1;
    // Listeners take streams as they come; otherwise they wait for the iterator.
    if (this.listenerCount("stream") > 0) {
      try {
        this.emit("stream", stream);
      } catch (error) {
        this.handed.delete(stream.streamId);
        this.taken -= 1;
        throw error;
      }
    } else {
      this.unclaimed.push(stream);
    }
    const wake = this.waiter;
    this.waiter = undefined;
    wake?.();
  }

  /** A spooled stream is all there and verified: it joins the queue, to be handed over in turn. */
  private spooled(stream: IncomingStream): void {
    const now = Date.now();
    this.queued.set(stream.streamId, { manifest: stream.manifest, lastFrameAt: now, lastAckAt: now, stream });
    this.dequeue();
  }

  private get producerTimeoutMs(): number {
    return this.options.producerTimeoutMs ?? 60_000;
  }

  /** Whether another stream may be handed over now; see {@link ReceiveOptions.concurrency}. */
  private hasRoom(): boolean {
    return this.handed.size + this.taking < this.concurrency && this.taken + this.taking < this.maxStreams;
  }

  /** Streams handed to the application and not yet read to the end, saved or failed. */
  private readonly handed = new Set<string>();

  /** Streams being taken from the queue (a `'stream'` listener that threw is being tried again). */
  private taking = 0;

  /** Queues a stream the receiver has no room for; its sender hears so at once, and every second. */
  private enqueue(manifest: Manifest): void {
    const { streamId } = manifest;
    this.dropOrphans(streamId); // asked for again when the stream is taken
    const now = Date.now();
    const entry: QueuedStream = { manifest, lastFrameAt: now, lastAckAt: 0 };
    this.queued.set(streamId, entry);
    this.replyTo.set(streamId, manifest.replyTo);
    this.ackQueued(entry, now);
    this.emit("queued", manifest);
  }

  private ackQueued(entry: QueuedStream, now: number): void {
    entry.lastAckAt = now;
    const { streamId, replyTo } = entry.manifest;
    // windowChunks 0: "I have it, queued; send nothing until I ask".
    this.reply({ type: FrameType.Ack, streamId, nextSequence: 0, offset: 0, windowChunks: 0, complete: false }, streamId, replyTo);
  }

  /** Keepalives for queued streams; a queued stream whose sender fell silent is dropped. */
  private tickQueued(now: number): void {
    for (const [streamId, entry] of this.queued) {
      if (entry.stream) continue; // spooled: the stream keeps its sender informed itself
      if (now - entry.lastFrameAt > this.producerTimeoutMs) {
        this.queued.delete(streamId);
        this.replyTo.delete(streamId);
        this.ended.set(streamId, undefined);
        this.report(
          new StreamTimeoutError({
            message: `[stream] stream ${streamId} (${entry.manifest.name}) was queued and its sender fell silent for ${this.producerTimeoutMs} ms; dropped, nothing of it was kept`,
          }),
        );
      } else if (now - entry.lastAckAt >= QUEUED_KEEPALIVE_MS) {
        this.ackQueued(entry, now);
      }
    }
  }

  /** Hands queued streams over while there is room, oldest first. */
  private dequeue(): void {
    while (!this.closed && this.queued.size > 0 && this.hasRoom()) {
      const [streamId, { manifest, stream: spooled }] = this.queued.entries().next().value as [string, QueuedStream];
      this.queued.delete(streamId);
      this.taking += 1;
      // Attempt 1 at once; a 'stream' listener that throws is tried again with backoff, as in onFrame.
      const handing = spooled
        ? withRetries(() => this.handOver(spooled), this.retry, { signal: this.closing.signal })
        : withRetries(() => this.take(manifest, [], false), this.retry, { signal: this.closing.signal }).then(
            // What its sender published while it was queued was dropped: ask for it from the start.
            (stream) => stream.askFromStart(),
          );
      void handing
        .catch((error: unknown) => this.refuse({ type: FrameType.Open, streamId, manifest }, error))
        .finally(() => {
          this.taking -= 1;
          this.dequeue();
        });
    }
  }

  private dropOrphans(streamId: string): void {
    const held = this.orphans.get(streamId);
    if (!held) return;
    this.orphans.delete(streamId);
    this.orphanBytes -= held.frames.reduce((sum, frame) => sum + frameBytes(frame), 0);
  }

  /**
   * Holds a frame that overtook its stream's open frame. Bounded in bytes: past the bound it is
   * dropped, and the sender's retransmission or the receiver's request brings it back.
   */
  private holdOrphan(frame: Frame): void {
    const bytes = frameBytes(frame);
    let held = this.orphans.get(frame.streamId);
    if (!held) {
      if (this.orphans.size >= MAX_ORPHANS) {
        const reason = `a frame of stream ${frame.streamId} came without its Open while ${MAX_ORPHANS} other streams' frames wait for theirs; dropped`;
        this.report(new ProtocolError({ message: `[stream] ${reason}` }), { code: "orphaned", reason, streamId: frame.streamId });
        return;
      }
      held = { frames: [], since: Date.now(), seenFrames: 0, seenBytes: 0 };
      this.orphans.set(frame.streamId, held);
    }
    held.seenFrames += 1;
    if (frame.type === FrameType.Data) held.seenBytes += frame.payload.byteLength;
    if (this.orphanBytes + bytes > ORPHAN_BYTES) return;
    held.frames.push(frame);
    this.orphanBytes += bytes;
  }

  private get orphanTimeoutMs(): number {
    return this.options.orphanTimeoutMs ?? 30_000;
  }

  /** Whether an iterator takes the streams (then listeners added later do not). */
  private iterating = false;

  private flushUnclaimed(): void {
    if (this.iterating) return;
    while (this.unclaimed.length > 0 && this.listenerCount("stream") > 0) {
      const stream = this.unclaimed.shift() as IncomingStream;
      try {
        this.emit("stream", stream);
      } catch (error) {
        stream.destroy(error as Error); // its sender is told
      }
    }
  }

  /** Streams handed to the application and not yet read to the end, saved or failed. */
  get activeStreams(): number {
    return this.handed.size;
  }

  /** Streams waiting for room; see {@link ReceiveOptions.concurrency}. */
  get queuedStreams(): number {
    return this.queued.size;
  }

  /**
   * Yields each stream as its open frame arrives, until {@link close}; streams that arrived
   * before iteration began come first. One iterator at a time. Streams go to `'stream'`
   * listeners instead, when there are any.
   */
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

  /**
   * Stops receiving. Streams still arriving are destroyed and their senders told; replies
   * already sent (a final acknowledgement above all) get up to `flushTimeoutMs` to reach the
   * broker first.
   */
  async close({ flushTimeoutMs = 5000 }: { flushTimeoutMs?: number } = {}): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.closing.abort();
    clearInterval(this.timer);
    this.limiter.flush(Number.POSITIVE_INFINITY); // what was held back is still summed up
    for (const stream of this.streams.values()) stream.destroy();
    // Said nothing: their senders, hearing no more keepalives, offer them to other receivers.
    this.queued.clear();
    const wake = this.waiter;
    this.waiter = undefined;
    wake?.();
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      Promise.allSettled([...this.replies]),
      new Promise((resolve) => {
        timer = setTimeout(resolve, flushTimeoutMs);
      }),
    ]);
    clearTimeout(timer);
    await this.subscription?.close();
  }
}
