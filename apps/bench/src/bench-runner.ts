import { type ChildProcess, fork } from "node:child_process";
import { randomUUID } from "node:crypto";
import { rm } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { BrokerName } from "./brokers";
import type { ParentMessage, RunMode, RunResult, ScenarioTask, WorkerMessage, WorkerReport, WorkerTask } from "./bench-run";

/** One run to make. */
export interface RunSpec {
  readonly broker: BrokerName;
  readonly mode: RunMode;
  readonly chunkBytes: number;
  readonly sizeBytes: number;
  readonly round: number;
  readonly inputFile: string;
  /** Where receivers write (the copy is deleted after the run). */
  readonly workDir: string;
  /** Chunks in flight; for @stream, undefined leaves core's default. */
  readonly windowChunks: number | undefined;
  /** @stream's transfers encrypted end to end (`--e2e`). */
  readonly e2e?: boolean;
  /** Runs the workers under `node --cpu-prof`, profiles into this folder. */
  readonly profileDir?: string;
  /** Bytes received so far, about once a second. */
  readonly onProgress?: (bytes: number) => void;
  /** Something worth a line that does not fail the run (a slow cleanup). */
  readonly onNote?: (note: string) => void;
}

const WORKER = fileURLToPath(new URL("./bench-worker.mjs", import.meta.url));
/** How long a worker may take to exit after its report (its cleanup has 20 s of it). */
const EXIT_TIMEOUT_MS = 30_000;
/** How long a receiver may take to subscribe (a Kafka consumer group join takes seconds). */
const READY_TIMEOUT_MS = 120_000;

/** A forked worker and the messages it sends (bench-worker.mjs by default, or `script`). */
export class Worker {
  readonly child: ChildProcess;
  private readonly waiters = new Map<string, { resolve: (message: WorkerMessage) => void; reject: (error: Error) => void }>();
  private readonly received = new Map<string, WorkerMessage>();
  private failure: Error | undefined;
  private stderr = "";
  readonly exited: Promise<number | null>;

  constructor(
    task: WorkerTask | ScenarioTask,
    spec: Pick<RunSpec, "profileDir" | "round">,
    onProgress?: (bytes: number) => void,
    script = WORKER,
  ) {
    // A folder per worker: each of its threads (core hashes on a worker thread) writes a profile.
    const execArgv = spec.profileDir
      ? ["--cpu-prof", "--cpu-prof-dir", join(spec.profileDir, `${task.broker}-${task.mode}-${task.chunkBytes}-${task.role}-r${spec.round}`)]
      : [];
    this.child = fork(script, [JSON.stringify(task)], { execArgv, stdio: ["ignore", "inherit", "pipe", "ipc"] });
    this.child.stderr?.on("data", (data: Buffer) => {
      this.stderr = (this.stderr + data.toString()).slice(-4000);
    });
    this.child.on("message", (message: WorkerMessage) => {
      if (message.type === "progress") return onProgress?.(message.bytes);
      if (message.type === "error") return this.fail(new Error(`${task.role} worker: ${message.message}`));
      this.received.set(message.type, message);
      this.waiters.get(message.type)?.resolve(message);
    });
    this.exited = new Promise((resolve) => {
      this.child.once("exit", (code, signal) => {
        if (code !== 0) this.fail(new Error(`${task.role} worker exited with ${code ?? signal}${this.stderr ? `: ${errorLines(this.stderr)}` : ""}`));
        else this.fail(new Error(`${task.role} worker exited without a word`));
        resolve(code);
      });
    });
  }

  private fail(error: Error): void {
    this.failure ??= error;
    for (const waiter of this.waiters.values()) waiter.reject(this.failure);
  }

  /** Resolves with the next message of `type`; rejects if the worker fails or `timeoutMs` passes first. */
  wait<T extends WorkerMessage["type"]>(type: T, timeoutMs: number): Promise<Extract<WorkerMessage, { type: T }>> {
    const got = this.received.get(type);
    if (got) return Promise.resolve(got as Extract<WorkerMessage, { type: T }>);
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no "${type}" from the worker within ${Math.round(timeoutMs / 1000)} s`)), timeoutMs);
      this.waiters.set(type, {
        resolve: (message) => {
          clearTimeout(timer);
          resolve(message as Extract<WorkerMessage, { type: T }>);
        },
        reject: (error) => {
          clearTimeout(timer);
          reject(error);
        },
      });
    });
  }

  tell(message: ParentMessage): void {
    if (this.child.connected) this.child.send(message);
  }

  /** Waits up to `timeoutMs` for the worker to exit by itself; false if it had not. */
  async exitWithin(timeoutMs: number): Promise<boolean> {
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<false>((resolve) => {
      timer = setTimeout(() => resolve(false), timeoutMs);
    });
    const exited = await Promise.race([this.exited.then(() => true as const), late]);
    clearTimeout(timer);
    return exited;
  }

  /** The tail of the worker's stderr. */
  get stderrTail(): string {
    return this.stderr.trim();
  }

  /** Ends the worker if it still runs (by its own pid), and waits for it. */
  async stop(): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill("SIGKILL");
    await this.exited;
  }
}

/** The telling part of a worker's stderr: from its first `...Error` line on, else all of it. */
export function errorLines(stderr: string): string {
  const lines = stderr.trim().split("\n");
  const first = lines.findIndex((line) => /^\s*(\w+)?Error\b/.test(line));
  return (first < 0 ? lines : lines.slice(first)).join("\n");
}

/** How long one run may take in all: generous, a guard against a hang, not a judgement of speed. */
export function runTimeoutMs(sizeBytes: number): number {
  return 180_000 + (sizeBytes / 1e6) * 1000; // 3 minutes, plus a second per MB (1 MB/s)
}

/**
 * Makes one run: for a broker, the receiver worker first (once it is subscribed) and then the
 * sender; for the in-memory transport, one local worker. Checks @stream's SHA-256 on both sides.
 */
export async function runOnce(spec: RunSpec): Promise<RunResult> {
  const destination = `bench.${spec.broker}.${spec.mode}.${spec.chunkBytes}.${randomUUID().slice(0, 8)}`;
  const outputFile = join(spec.workDir, `${destination}.out`);
  const base = { mode: spec.mode, broker: spec.broker, destination, sizeBytes: spec.sizeBytes, chunkBytes: spec.chunkBytes, windowChunks: spec.windowChunks, e2e: spec.e2e === true };
  const deadline = runTimeoutMs(spec.sizeBytes);
  const workers: Worker[] = [];
  try {
    let sender: WorkerReport;
    let receiver: WorkerReport;
    if (spec.broker === "memory") {
      const local = new Worker({ ...base, role: "local", inputFile: spec.inputFile, outputFile }, spec, spec.onProgress);
      workers.push(local);
      sender = receiver = (await local.wait("report", deadline)).report;
    } else {
      const receiving = new Worker({ ...base, role: "receive", outputFile }, spec, spec.onProgress);
      workers.push(receiving);
      await receiving.wait("ready", READY_TIMEOUT_MS);
      const sending = new Worker({ ...base, role: "send", inputFile: spec.inputFile }, spec);
      workers.push(sending);
      const started = Date.now();
      sender = (await sending.wait("report", deadline)).report;
      receiving.tell({ type: "sender-done" });
      receiver = (await receiving.wait("report", Math.max(60_000, deadline - (Date.now() - started)))).report;
    }
    // Reported means measured; a worker still cleaning up (disconnecting, deleting its queue or
    // topic) gets a while, so the next run starts on a quiet broker, and then is ended.
    for (const worker of workers) {
      if (!(await worker.exitWithin(EXIT_TIMEOUT_MS))) spec.onNote?.(`a worker had not exited ${EXIT_TIMEOUT_MS / 1000} s after its report; ended it`);
      for (const line of worker.stderrTail.split("\n")) if (line.startsWith("[stream] [bench]")) spec.onNote?.(line);
    }
    return toResult(spec, sender, receiver);
  } finally {
    await Promise.all(workers.map((worker) => worker.stop()));
    await rm(outputFile, { force: true });
  }
}

/** Turns the two workers' reports into a {@link RunResult}; throws on a @stream integrity failure. */
export function toResult(spec: Pick<RunSpec, "broker" | "mode" | "chunkBytes" | "sizeBytes" | "round">, sender: WorkerReport, receiver: WorkerReport): RunResult {
  if (spec.mode === "stream") {
    if (!sender.sha256 || sender.sha256 !== receiver.sha256) {
      throw new Error(`@stream SHA-256 mismatch: sender ${sender.sha256 ?? "none"}, receiver ${receiver.sha256 ?? "none"}`);
    }
    if (receiver.bytes !== spec.sizeBytes) throw new Error(`@stream delivered ${receiver.bytes} bytes of ${spec.sizeBytes}`);
  }
  const startedAt = sender.startedAt ?? 0;
  const seconds = Math.max(1e-6, (receiver.doneAt - startedAt) / 1000);
  return {
    broker: spec.broker,
    mode: spec.mode,
    chunkBytes: spec.chunkBytes,
    sizeBytes: spec.sizeBytes,
    round: spec.round,
    seconds,
    mbPerSecond: receiver.bytes / 1e6 / seconds,
    timeToFirstByteMs: receiver.firstByteAt === undefined ? Number.NaN : receiver.firstByteAt - startedAt,
    bytesDelivered: receiver.bytes,
    lost: receiver.lost ?? 0,
    duplicated: receiver.duplicated ?? 0,
    sender,
    receiver,
    oneProcess: sender.role === "local",
  };
}
