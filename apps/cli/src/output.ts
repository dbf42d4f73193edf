import type { ConnectionState } from "@stream/core";
import { MultiBar, type SingleBar } from "cli-progress";
import type { Redactor } from "./broker-url";
import type { Failure } from "./describe-failure";
import { formatBytes, formatDuration, formatRate, printable } from "./format";

/** One line of `--json` output: `{"event": "start" | "listening" | "progress" | "done" | "error", ...}`. */
export type CliEvent = { readonly event: string } & Readonly<Record<string, unknown>>;

/** Progress of one transfer: fed byte counts, it draws a bar or emits `progress` events. */
export interface Transfer {
  /**
   * The total bytes so far (not a delta), and (a send) whether its broker connection is being
   * re-established (`SendProgress.connection`): the bar then says "reconnecting…".
   */
  update(bytes: number, connection?: ConnectionState): void;
  /** Removes the bar; `line` (human mode) is printed in its place. */
  finish(line?: string): void;
}

/** Where a command's words go: a progress bar and lines on stderr, or JSON events on stdout. */
export interface Output {
  readonly json: boolean;
  /** A machine-readable event; printed in `--json` mode only. */
  emit(event: CliEvent): void;
  /** A line for a person, on stderr; silent in `--json` mode. */
  note(line: string): void;
  /** Reports a failure: an `error` event, or `stream: <message>` and the hint on stderr. */
  failure(failure: Failure, extra?: Readonly<Record<string, unknown>>): void;
  /** Starts showing the progress of one transfer. */
  transfer(options: { readonly id: string; readonly label: string; readonly totalBytes?: number }): Transfer;
  /** Stops drawing; call before exiting. */
  close(): void;
}

/** How often a `progress` event may be printed per transfer, in milliseconds. */
const PROGRESS_EVENT_INTERVAL_MS = 250;
/** The span the rate (and so the ETA) is measured over, in milliseconds. */
const RATE_WINDOW_MS = 3000;

/** A sliding-window rate: bytes per second over the last few seconds. */
class RateMeter {
  private readonly samples: Array<{ at: number; bytes: number }> = [];
  readonly startedAt = Date.now();

  sample(bytes: number): number {
    const at = Date.now();
    this.samples.push({ at, bytes });
    while (this.samples.length > 2 && at - (this.samples[1] as { at: number }).at > RATE_WINDOW_MS) this.samples.shift();
    const first = this.samples[0] as { at: number; bytes: number };
    const span = at - first.at;
    if (span < 200) return (bytes / Math.max(1, at - this.startedAt)) * 1000;
    return ((bytes - first.bytes) / span) * 1000;
  }
}

function etaSeconds(bytes: number, totalBytes: number | undefined, rate: number): number | undefined {
  if (totalBytes === undefined || rate <= 0) return undefined;
  return Math.max(0, (totalBytes - bytes) / rate);
}

function shorten(label: string, max = 28): string {
  return label.length <= max ? label.padEnd(max) : `${label.slice(0, max - 1)}…`;
}

/** Creates the output of a command: `--json` events on `stdout`, or bars and lines on `stderr`. */
export function createOutput(options: {
  readonly json: boolean;
  readonly redactor: Redactor;
  readonly stdout?: NodeJS.WriteStream;
  readonly stderr?: NodeJS.WriteStream;
}): Output {
  const { json, redactor } = options;
  const stdout = options.stdout ?? process.stdout;
  const stderr = options.stderr ?? process.stderr;
  const writeEvent = (event: CliEvent): void => {
    stdout.write(`${redactor.redact(JSON.stringify(event))}\n`);
  };
  if (json) {
    return {
      json,
      emit: writeEvent,
      note: () => {},
      failure: (failure, extra) =>
        writeEvent({ event: "error", code: failure.code, exitCode: failure.exitCode, message: failure.message, hint: failure.hint, ...extra }),
      transfer({ id, totalBytes }) {
        const meter = new RateMeter();
        let lastEventAt = 0;
        let lastBytes = -1;
        let lastConnection: ConnectionState | undefined;
        return {
          update(bytes, connection) {
            const rate = meter.sample(bytes);
            const now = Date.now();
            // A change of connection state is always worth an event; bytes at most every 250 ms.
            const changed = connection !== lastConnection;
            if (!changed && (bytes === lastBytes || (now - lastEventAt < PROGRESS_EVENT_INTERVAL_MS && bytes !== totalBytes))) return;
            lastEventAt = now;
            lastBytes = bytes;
            lastConnection = connection;
            const eta = etaSeconds(bytes, totalBytes, rate);
            writeEvent({
              event: "progress",
              id,
              bytes,
              ...(totalBytes === undefined ? {} : { totalBytes }),
              bytesPerSecond: Math.round(rate),
              ...(eta === undefined ? {} : { etaSeconds: Math.round(eta * 10) / 10 }),
              ...(connection === undefined ? {} : { connection }),
            });
          },
          finish() {},
        };
      },
      close() {},
    };
  }

  const tty = stderr.isTTY === true;
  let bars: MultiBar | undefined;
  let activeBars = 0;
  const line = (text: string): void => {
    // Names come from the wire: no escape sequence of theirs reaches the terminal.
    const safe = redactor.redact(text).split("\n").map(printable).join("\n");
    // Above the bars while any are drawn; cli-progress prints its log on the next redraw.
    if (bars && activeBars > 0) bars.log(`${safe}\n`);
    else stderr.write(`${safe}\n`);
  };
  const ensureBars = (): MultiBar => {
    bars ??= new MultiBar({
      stream: stderr,
      hideCursor: true,
      clearOnComplete: true,
      stopOnComplete: false,
      autopadding: true,
      barsize: 24,
      fps: 10,
      barCompleteChar: "█",
      barIncompleteChar: "░",
      format: "{label} |{bar}| {percentage}% | {transferred} / {total_h} | {rate} | ETA {eta_h}",
    });
    return bars;
  };
  return {
    json,
    emit: () => {},
    note: line,
    failure(failure) {
      line(`stream: ${failure.message}`);
      if (failure.hint) line(`  what to do: ${failure.hint}`);
    },
    transfer({ label, totalBytes }) {
      // Not a terminal: no bar (cli-progress would only print blank lines), just the summary.
      if (!tty) {
        return {
          update() {},
          finish(text) {
            if (text) line(text);
          },
        };
      }
      const meter = new RateMeter();
      const payload = (bytes: number, rate: number, connection?: ConnectionState) => ({
        label: shorten(printable(redactor.redact(label))),
        transferred: formatBytes(bytes),
        total_h: totalBytes === undefined ? "?" : formatBytes(totalBytes),
        rate: connection === "reconnecting" ? "reconnecting…" : formatRate(rate),
        eta_h: connection === "reconnecting" ? "?" : formatDuration(etaSeconds(bytes, totalBytes, rate)),
      });
      let finished = false;
      activeBars += 1;
      const bar: SingleBar = ensureBars().create(
        totalBytes ?? 0,
        0,
        payload(0, 0),
        totalBytes === undefined ? { format: "{label} | {transferred} | {rate}" } : {},
      );
      return {
        update(bytes, connection) {
          bar.update(bytes, payload(bytes, meter.sample(bytes), connection));
        },
        finish(text) {
          if (finished) return;
          finished = true;
          bars?.remove(bar);
          activeBars -= 1;
          if (activeBars === 0) {
            bars?.stop();
            bars = undefined;
          }
          if (text) line(text);
        },
      };
    },
    close() {
      bars?.stop();
      bars = undefined;
    },
  };
}
