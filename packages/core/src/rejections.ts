import type { StreamError } from "./errors/stream-error";

/**
 * Why a receiver refused or dropped input, one word per cause; its reports are rate-limited per
 * code (see {@link ReceiveOptions.maxReportsPerSecond}).
 * - `"not-a-frame"`: shorter than a header or without the protocol's magic (another producer?).
 * - `"unsupported-version"`: a frame of another protocol version.
 * - `"malformed-frame"`: a length that disagrees with the bytes, a truncated frame, an unknown
 *   type, a bad field, a manifest that is not one (a 10,000-character name, a stream id that
 *   differs from the header's).
 * - `"orphaned"`: frames of a stream whose Open never came (after `orphanTimeoutMs`).
 * - `"manifest-too-large"`, `"name-too-long"`, `"too-many-metadata"`, `"window-too-large"`,
 *   `"too-many-streams"`: an Open past one of the receiver's limits.
 * - `"expired"`: an Open whose `expiresAt` had passed.
 * - `"integrity"`: a stream whose data broke its own promises (CRC-32, offsets, sizes, SHA-256).
 * - `"unsafe-name"`: a name `saveTo` will not write (a path, NUL).
 * - `"no-space"`: a declared size larger than the folder's free space.
 * - `"refused"`: the receiver could not take the stream (its folder, its application).
 */
export type RejectionCode =
  | "not-a-frame"
  | "unsupported-version"
  | "malformed-frame"
  | "orphaned"
  | "manifest-too-large"
  | "name-too-long"
  | "too-many-metadata"
  | "window-too-large"
  | "too-many-streams"
  | "expired"
  | "integrity"
  | "unsafe-name"
  | "no-space"
  | "refused";

/** A frame or stream the receiver refused or dropped for cause; see `StreamReceiver`'s `'rejected'`. */
export interface Rejection {
  readonly code: RejectionCode;
  /** What was wrong, in words, for a person (the CLI prints it). */
  readonly reason: string;
  /** The stream the frame claimed to belong to, when its header could be read. */
  readonly streamId?: string;
  /** The stream's name, when its manifest could be read (cut to 256 characters). */
  readonly name?: string;
  /** The typed error: the same one `ReceiveOptions.onFrameError` is given. */
  readonly error: StreamError;
  /**
   * Set on a summary: this many more reports of `code` were held back in the last second (past
   * `maxReportsPerSecond`); `streamId` and `name` are the last one's.
   */
  readonly suppressed?: number;
}

/** The default of `ReceiveOptions.maxReportsPerSecond`. */
export const DEFAULT_REPORTS_PER_SECOND = 10;

const PERIOD_MS = 1000;

interface Period {
  startedAt: number;
  reported: number;
  suppressed: number;
  last?: Rejection;
}

/**
 * Lets through at most `perSecond` reports of each code per second; past that it counts them,
 * and once the second is over hands one summary of the count to `summarize`. A flood of bad
 * frames costs a counter increment each, not a log line.
 */
export class ReportLimiter {
  private readonly periods = new Map<string, Period>();

  constructor(
    private readonly perSecond: number,
    private readonly summarize: (summary: Rejection) => void,
  ) {}

  /** Whether a report of `code` may go out now; if not, it is counted (`rejection`, the last, names the summary). */
  admit(code: string, now: number, rejection?: Rejection): boolean {
    let period = this.periods.get(code);
    if (period && now - period.startedAt >= PERIOD_MS) {
      this.close(code, period);
      period = undefined;
    }
    if (!period) {
      period = { startedAt: now, reported: 0, suppressed: 0 };
      this.periods.set(code, period);
    }
    if (period.reported < this.perSecond) {
      period.reported += 1;
      return true;
    }
    period.suppressed += 1;
    if (rejection) period.last = rejection;
    return false;
  }

  /** Summarizes the periods that are over (call it now and then: a flood that stops is still summed up). */
  flush(now: number): void {
    for (const [code, period] of this.periods) {
      if (now - period.startedAt >= PERIOD_MS) this.close(code, period);
    }
  }

  private close(code: string, period: Period): void {
    this.periods.delete(code);
    const { last, suppressed } = period;
    if (suppressed === 0 || !last) return;
    this.summarize({ ...last, reason: `${suppressed} more like this suppressed in the last second (${last.reason})`, suppressed });
  }
}
