import type { TransferStatus } from "@stream/core";
import { MultiBar, type SingleBar } from "cli-progress";
import type { Redactor } from "./broker-url";
import type { Failure } from "./describe-failure";
import { formatBytes, formatDuration, formatRate, printable } from "./format";

/** One line of `--json` output: `{"event": "start" | "listening" | "progress" | "done" | "error", ...}`. */
export type CliEvent = { readonly event: string } & Readonly<Record<string, unknown>>;

/**
 * Progress of one transfer: fed core's status of it (bytes, rate, ETA, phase, connection: the
 * `'status'` events, every {@link STATUS_INTERVAL_MS}), it draws a bar or emits `progress` events.
 */
export interface Transfer {
  /** The transfer's status now; while a send's connection is being re-established the bar says "reconnecting…". */
  update(status: TransferStatus): void;
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

/**
 * How often the commands ask core for a transfer's status (`statusIntervalMs`), and so how often
 * a bar is redrawn or a `progress` event printed, in milliseconds.
 */
export const STATUS_INTERVAL_MS = 250;

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
        let last = "";
        return {
          update(status) {
            const sizeBytes = status.sizeBytes ?? totalBytes;
            const event = {
              event: "progress",
              id,
              phase: status.phase,
              bytes: status.bytesTransferred,
              ...(sizeBytes === undefined ? {} : { totalBytes: sizeBytes }),
              bytesPerSecond: status.bytesPerSecond,
              ...(status.etaSeconds === undefined ? {} : { etaSeconds: status.etaSeconds }),
              connection: status.connection,
            };
            // A stalled transfer says so once its rate has fallen to 0, then stays quiet until something changes.
            const line = JSON.stringify(event);
            if (line === last) return;
            last = line;
            writeEvent(event);
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
      const payload = (status?: TransferStatus) => ({
        label: shorten(printable(redactor.redact(label))),
        transferred: formatBytes(status?.bytesTransferred ?? 0),
        total_h: totalBytes === undefined ? "?" : formatBytes(totalBytes),
        rate: status?.connection === "reconnecting" ? "reconnecting…" : formatRate(status?.bytesPerSecond ?? 0),
        eta_h: status?.connection === "reconnecting" ? "?" : formatDuration(status?.etaSeconds),
      });
      let finished = false;
      activeBars += 1;
      const bar: SingleBar = ensureBars().create(
        totalBytes ?? 0,
        0,
        payload(),
        totalBytes === undefined ? { format: "{label} | {transferred} | {rate}" } : {},
      );
      return {
        update(status) {
          bar.update(status.bytesTransferred, payload(status));
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
