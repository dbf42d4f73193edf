import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import { mkdir, mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { ConnectionState, ReceiveOptions, RetryOptions } from "@stream/core";
import type { TestApi } from "./conformance-suite";
import { writeRandomFile } from "./files";
import { createTcpProxy, type TcpProxy } from "./tcp-proxy";

/**
 * One fault to inject into a transfer:
 * - `{ cut: "sender" | "receiver", seconds }`: once the sender has half the file acknowledged, that
 *   side's proxy drops its connections and refuses new ones for `seconds`, then accepts again.
 *   The transfer must complete: SHA-256 equal, no byte handed to the application twice. A cut of
 *   the sender must also show in its progress: `connection: "reconnecting"` while the cut lasts
 *   (see {@link FaultTestOptions.reportsReconnecting}), `"connected"` again after.
 * - `{ kill: "sender" }`: at half the file, the sender process gets SIGKILL. The receiver must
 *   fail the stream with `StreamTimeoutError` within its `producerTimeoutMs` (5 s here) and keep
 *   its partial file; a new sender process then resumes the send (same stream id, `resume: true`)
 *   and the receiver, still serving, continues the file from where it was: byte-exact, at least
 *   what was acknowledged kept, no byte handed twice, no partial file left.
 * - `{ restart: "broker", seconds }`: at half the file, {@link FaultTestOptions.broker} kills the
 *   broker, waits `seconds` and starts it again (for a broker the test started itself). Checked
 *   like a cut.
 */
export type FaultCase =
  | { readonly cut: "sender" | "receiver"; readonly seconds: number }
  | { readonly kill: "sender" }
  | { readonly restart: "broker"; readonly seconds: number };

/** What {@link runFaultTests} measured for one case. */
export interface FaultReport {
  readonly name: string;
  /** The case's test title, e.g. `sender cut for 3 s`. */
  readonly fault: string;
  readonly sizeBytes: number;
  /** Wall time of the case, from the sender's start to the receiver's verdict, in s. */
  readonly seconds: number;
  /** Bytes handed to the application beyond the file's size (0 unless chunks were delivered twice). */
  readonly duplicateBytes: number;
  /** Whether the sender's progress reported `connection: "reconnecting"`. */
  readonly senderSawReconnecting: boolean;
}

/** What the resume after a killed sender measured (see `{ kill: "sender" }`). */
export interface ResumeReport {
  readonly name: string;
  readonly sizeBytes: number;
  /** Where the resumed stream started: the receiver's partial file, cut to whole chunks. */
  readonly startOffset: number;
  /** What the killed sender had acknowledged when it was killed. */
  readonly acknowledgedAtKill: number;
  /** The send's window: the most that may go twice. */
  readonly windowBytes: number;
  /** From starting the resumed sender to its send resolving, in s. */
  readonly resumeSeconds: number;
}

/** Options of {@link runFaultTests}. */
export interface FaultTestOptions extends Pick<TestApi, "test"> {
  /** The broker's name, in test titles and destinations. */
  readonly name: string;
  /**
   * Absolute path of an ES module exporting `createTransport({ port })`: a transport that connects
   * to the broker through `port` on 127.0.0.1 (the harness's proxy for that process) instead of
   * the broker's own port, for every connection it opens (Kafka: a kafkajs `socketFactory`, since
   * the broker advertises its own address).
   */
  readonly transportModule: string;
  /** The broker's port, which the proxies forward to. */
  readonly brokerPort: number;
  /** @default "127.0.0.1" */
  readonly brokerHost?: string;
  /** @default the five of {@link DEFAULT_FAULT_CASES} */
  readonly cases?: readonly FaultCase[];
  /** The file sent in each case. @default 32 MiB */
  readonly sizeBytes?: number;
  /**
   * Extra options for the send (JSON). The window defaults to 4 MiB, so at half the file most of
   * it is still to be sent when the fault strikes.
   */
  readonly sendOptions?: Record<string, unknown>;
  /** Extra receive options (JSON); `producerTimeoutMs` is 5000 in the kill case. */
  readonly receiveOptions?: Omit<ReceiveOptions, "signal" | "onFrameError">;
  /** Retry options of both clients. @default core's (retry for 5 minutes) */
  readonly retry?: RetryOptions;
  /** For `{ restart: "broker" }` cases: kills the broker (SIGKILL) and starts it again, on the same port. */
  readonly broker?: { kill(): Promise<void>; start(): Promise<void> };
  /** Called with each case's figures, e.g. to print them. */
  readonly onReport?: (report: FaultReport) => void;
  /** Called with the figures of the resume after the sender was killed. */
  readonly onResume?: (report: ResumeReport) => void;
  /** Per case, on top of the outage. @default 120000 */
  readonly timeoutMs?: number;
  /**
   * Whether a cut of the sender must show as `connection: "reconnecting"` in its progress while
   * the cut lasts. Set false only for a transport that cannot say it is reconnecting (no
   * `Transport.connection`) and whose client rides out a short cut in retries of its own, so that
   * no publish fails either.
   * @default true
   */
  readonly reportsReconnecting?: boolean;
}

/** How far from a cut's start or end a sender's report of it may be, in ms: pipes, timers, clocks. */
const REPORT_SLACK_MS = 1000;

/** Each side cut for 3 s and for 30 s, sender killed (and resumed). */
export const DEFAULT_FAULT_CASES: readonly FaultCase[] = [
  { cut: "sender", seconds: 3 },
  { cut: "receiver", seconds: 3 },
  { cut: "sender", seconds: 30 },
  { cut: "receiver", seconds: 30 },
  { kill: "sender" },
];

/** @internal What the harness passes to its worker (`dist/fault-worker.mjs`). */
export interface FaultWorkerArgs {
  readonly mode: "send" | "receive";
  readonly transportModule: string;
  readonly port: number;
  readonly destination: string;
  /** The file to send, or the folder to save into. */
  readonly path: string;
  readonly sendOptions?: Record<string, unknown>;
  readonly receiveOptions?: FaultTestOptions["receiveOptions"];
  readonly retry?: RetryOptions;
}

/** @internal One line of the worker's output. */
export type FaultWorkerEvent =
  | { readonly event: "ready" }
  | {
      readonly event: "progress";
      readonly bytesAcknowledged: number;
      readonly connection: ConnectionState;
      /** When the sender reported it (`Date.now()` in the worker). */
      readonly at: number;
    }
  | { readonly event: "sent"; readonly sha256: string; readonly byteCount: number; readonly seconds: number; readonly reconnecting: boolean }
  | {
      readonly event: "saved";
      readonly path: string;
      readonly sha256: string;
      readonly byteCount: number;
      readonly bytesHanded: number;
      /** Where the saved stream started: what a dead attempt's partial file held. */
      readonly startOffset: number;
      readonly seconds: number;
    }
  | { readonly event: "failed"; readonly code: string; readonly message: string; readonly seconds: number; readonly bytesHanded?: number };

const workerPath = (): string => fileURLToPath(new URL("./fault-worker.mjs", import.meta.url));

/** A worker process and the events it printed, awaitable one by one. */
class Worker {
  readonly child: ChildProcess;
  readonly exited: Promise<number | null>;
  private readonly events: FaultWorkerEvent[] = [];
  private readonly waiters = new Set<() => void>();
  private stderr = "";

  constructor(args: FaultWorkerArgs, onEvent?: (event: FaultWorkerEvent) => void) {
    this.child = spawn(process.execPath, [workerPath(), JSON.stringify(args)], { stdio: ["ignore", "pipe", "pipe"] });
    let buffered = "";
    this.child.stdout?.setEncoding("utf8").on("data", (text: string) => {
      buffered += text;
      let at: number;
      while ((at = buffered.indexOf("\n")) >= 0) {
        const event = JSON.parse(buffered.slice(0, at)) as FaultWorkerEvent;
        buffered = buffered.slice(at + 1);
        this.events.push(event);
        onEvent?.(event);
        for (const wake of [...this.waiters]) wake();
      }
    });
    this.child.stderr?.setEncoding("utf8").on("data", (text: string) => void (this.stderr = (this.stderr + text).slice(-4000)));
    this.exited = new Promise((resolve) => this.child.once("exit", (code) => resolve(code)));
    void this.exited.then(() => {
      for (const wake of [...this.waiters]) wake();
    });
  }

  /** The first event (from `from` on) of one of `kinds`; rejects if the process exits first or after `timeoutMs`. */
  async next<K extends FaultWorkerEvent["event"]>(kinds: K[], timeoutMs: number, from = 0): Promise<Extract<FaultWorkerEvent, { event: K }> & { index: number }> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const index = this.events.findIndex((event, at) => at >= from && (kinds as string[]).includes(event.event));
      if (index >= 0) return { ...(this.events[index] as Extract<FaultWorkerEvent, { event: K }>), index };
      if (this.child.exitCode !== null || this.child.signalCode !== null) {
        throw new Error(`the worker exited (${this.child.exitCode ?? this.child.signalCode}) before ${kinds.join("/")}: ${this.stderr}`);
      }
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no ${kinds.join("/")} from the worker within ${timeoutMs} ms; stderr: ${this.stderr}`);
      await new Promise<void>((resolve) => {
        const wake = (): void => {
          clearTimeout(timer);
          this.waiters.delete(wake);
          resolve();
        };
        const timer = setTimeout(wake, left);
        this.waiters.add(wake);
      });
    }
  }

  async stop(): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill("SIGTERM");
    const timer = setTimeout(() => this.child.kill("SIGKILL"), 5000);
    await this.exited;
    clearTimeout(timer);
  }
}

const title = (fault: FaultCase): string => {
  if ("kill" in fault) return "sender killed (SIGKILL)";
  if ("restart" in fault) return `broker killed (SIGKILL) and restarted after ${fault.seconds} s`;
  return `${fault.cut} cut for ${fault.seconds} s`;
};

/** Kills the broker, waits, starts it again. */
async function restartBroker(options: FaultTestOptions, seconds: number): Promise<void> {
  if (!options.broker) throw new Error("[stream] [faults] a restart case needs the broker option (kill and start)");
  await options.broker.kill();
  await new Promise((resolve) => setTimeout(resolve, seconds * 1000));
  await options.broker.start();
}

/**
 * Registers one test per {@link FaultCase}: a generated file goes from a sender process to a
 * receiver process through the real broker, each process connected through its own TCP proxy
 * (`createTcpProxy`), and the fault strikes at about half the file. See {@link FaultCase} for
 * what each case checks.
 */
export function runFaultTests(options: FaultTestOptions): void {
  const sizeBytes = options.sizeBytes ?? 32 * 1024 * 1024;
  for (const fault of options.cases ?? DEFAULT_FAULT_CASES) {
    const outageMs = "seconds" in fault ? fault.seconds * 1000 : 0;
    options.test(`${options.name}: ${title(fault)} at half of ${Math.round(sizeBytes / 1024 / 1024)} MiB`, () => runCase(options, fault, sizeBytes), (options.timeoutMs ?? 120_000) + outageMs);
  }
}

async function runCase(options: FaultTestOptions, fault: FaultCase, sizeBytes: number): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), "stream-faults-"));
  const proxies: TcpProxy[] = [];
  const workers: Worker[] = [];
  const proxy = async (): Promise<TcpProxy> => {
    const created = await createTcpProxy({ targetPort: options.brokerPort, ...(options.brokerHost ? { targetHost: options.brokerHost } : {}) });
    proxies.push(created);
    return created;
  };
  try {
    const source = join(dir, "source.bin");
    const inbox = join(dir, "inbox");
    await mkdir(inbox);
    const expected = await writeRandomFile(source, sizeBytes);
    const destination = `faults.${options.name}.${randomUUID().slice(0, 8)}`;
    const killing = "kill" in fault;
    const base = { transportModule: options.transportModule, destination, ...(options.retry ? { retry: options.retry } : {}) };
    // The stream id is known to the test, so a killed send can be resumed under it.
    const sendOptions = { windowBytes: 4 * 1024 * 1024, streamId: randomUUID(), ...options.sendOptions };
    let acknowledgedAtKill = 0;
    const [senderProxy, receiverProxy] = [await proxy(), await proxy()];
    const receiver = new Worker({
      ...base,
      mode: "receive",
      port: receiverProxy.port,
      path: inbox,
      receiveOptions: { ...options.receiveOptions, ...(killing ? { producerTimeoutMs: 5000 } : {}) },
    });
    workers.push(receiver);
    await receiver.next(["ready"], 60_000);

    const started = Date.now();
    let struck: Promise<unknown> | undefined;
    let struckAt = 0;
    /** Each change of the sender's `connection`, as its progress reported it. */
    const connectionChanges: Array<{ readonly state: ConnectionState; readonly at: number }> = [];
    const sender = new Worker({ ...base, mode: "send", port: senderProxy.port, path: source, sendOptions }, (event) => {
      if (event.event === "progress" && connectionChanges.at(-1)?.state !== event.connection) {
        connectionChanges.push({ state: event.connection, at: event.at });
      }
      if (struck || event.event !== "progress" || event.bytesAcknowledged < sizeBytes / 2) return;
      struckAt = Date.now();
      acknowledgedAtKill = event.bytesAcknowledged;
      if ("kill" in fault) struck = Promise.resolve(sender.child.kill("SIGKILL"));
      else if ("restart" in fault) struck = restartBroker(options, fault.seconds);
      else struck = (fault.cut === "sender" ? senderProxy : receiverProxy).cutFor(fault.seconds * 1000);
      struck.catch(() => {}); // awaited below, once the transfer is over
    });
    workers.push(sender);
    const budgetMs = (options.timeoutMs ?? 120_000) - 10_000;

    if ("kill" in fault) {
      const failed = await receiver.next(["failed", "saved"], budgetMs);
      const afterKillMs = Date.now() - struckAt;
      assert.ok(struck, "the sender was killed mid-stream");
      assert.equal(failed.event, "failed", "a stream whose sender died must not be saved");
      assert.equal(failed.code, "STREAM_TIMEOUT", `the receiver reports a StreamTimeoutError: ${failed.message}`);
      assert.ok(afterKillMs < 5000 + 3000, `the receiver gave up ${afterKillMs} ms after the kill (producerTimeoutMs 5000)`);
      const partials = (await readdir(inbox)).filter((name) => name.endsWith(".partial"));
      assert.equal(partials.length, 1, `the receiver keeps the partial file for a resume (${partials.join(", ")})`);
      // The sender's process comes back and resumes under the same stream id: the receiver, still
      // serving, continues its partial file, so at most one window goes twice.
      const resumedAt = Date.now();
      const resumed = new Worker({ ...base, mode: "send", port: senderProxy.port, path: source, sendOptions: { ...sendOptions, resume: true } });
      workers.push(resumed);
      const resent = await resumed.next(["sent", "failed"], budgetMs);
      assert.equal(resent.event, "sent", `the resumed send resolved: ${resent.event === "failed" ? resent.message : ""}`);
      const saved = await receiver.next(["saved", "failed"], budgetMs, failed.index + 1);
      if (saved.event !== "saved") assert.fail(`the receiver failed the resumed stream: ${saved.message}`);
      assert.equal(saved.sha256, expected, "the file saved after the resume is byte-exact");
      assert.ok(saved.startOffset >= acknowledgedAtKill, `the resume started at ${saved.startOffset}, at least what the killed sender had acknowledged (${acknowledgedAtKill})`);
      assert.equal(saved.startOffset + saved.bytesHanded, sizeBytes, "no byte was handed to the application twice");
      assert.deepEqual((await readdir(inbox)).filter((name) => name.endsWith(".partial")), [], "no partial file is left");
      options.onResume?.({ name: options.name, sizeBytes, startOffset: saved.startOffset, acknowledgedAtKill, windowBytes: sendOptions.windowBytes as number, resumeSeconds: (Date.now() - resumedAt) / 1000 });
      options.onReport?.({ name: options.name, fault: title(fault), sizeBytes, seconds: (Date.now() - started) / 1000, duplicateBytes: 0, senderSawReconnecting: false });
      return;
    }

    const sent = await sender.next(["sent", "failed"], budgetMs);
    assert.equal(sent.event, "sent", `the send resolved: ${sent.event === "failed" ? sent.message : ""}`);
    const saved = await receiver.next(["saved", "failed"], budgetMs);
    const seconds = (Date.now() - started) / 1000;
    assert.ok(struck, "the fault struck mid-transfer");
    await struck;
    if (saved.event !== "saved") assert.fail(`the receiver failed the stream: ${saved.message}`);
    if (sent.event !== "sent") return;
    const report: FaultReport = {
      name: options.name,
      fault: title(fault),
      sizeBytes,
      seconds,
      duplicateBytes: saved.bytesHanded - sizeBytes,
      senderSawReconnecting: sent.reconnecting,
    };
    options.onReport?.(report);
    assert.equal(sent.sha256, expected, "the sender hashed the file it was given");
    assert.equal(saved.sha256, expected, "the saved file is byte-exact");
    assert.equal(saved.byteCount, sizeBytes);
    assert.equal(report.duplicateBytes, 0, "no byte was handed to the application twice");
    if ("cut" in fault && fault.cut === "sender" && options.reportsReconnecting !== false) {
      assertReconnectingShown(connectionChanges, struckAt, struckAt + fault.seconds * 1000);
    }
  } finally {
    await Promise.allSettled(workers.map((worker) => worker.stop()));
    await Promise.allSettled(proxies.map((created) => created.close()));
    await rm(dir, { recursive: true, force: true });
  }
}

/**
 * The sender's progress said `"reconnecting"` once its connection was cut (at `cutAt`, before the
 * cut was over at `backAt`), kept saying it until the cut was over, and said `"connected"` after.
 */
function assertReconnectingShown(changes: ReadonlyArray<{ readonly state: ConnectionState; readonly at: number }>, cutAt: number, backAt: number): void {
  const seen = changes.map(({ state, at }) => `${state} at ${at - cutAt} ms`).join(", ");
  const reconnecting = changes.find(({ state, at }) => state === "reconnecting" && at >= cutAt && at <= backAt + REPORT_SLACK_MS);
  assert.ok(reconnecting, `the sender's progress said "reconnecting" during its ${backAt - cutAt} ms cut (changes, from the cut: ${seen})`);
  const connected = changes.find(({ state, at }) => state === "connected" && at > reconnecting.at);
  assert.ok(connected, `the sender's progress said "connected" again after the cut (changes, from the cut: ${seen})`);
  assert.ok(connected.at >= backAt - REPORT_SLACK_MS, `the sender's progress said "connected" only once the cut was over (changes, from the cut: ${seen})`);
}
