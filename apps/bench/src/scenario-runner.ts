import { randomUUID } from "node:crypto";
import { rm } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { BrokerName } from "./brokers";
import type { ScenarioReport, ScenarioTask } from "./bench-run";
import { runTimeoutMs, Worker } from "./bench-runner";

const SCENARIO_WORKER = fileURLToPath(new URL("./scenario-worker.mjs", import.meta.url));
/** How long a receiver may take to subscribe (a Kafka consumer group join takes seconds). */
const READY_TIMEOUT_MS = 120_000;
/** How long a worker may take to exit after its report (its cleanup has 20 s of it). */
const EXIT_TIMEOUT_MS = 30_000;
/** Extra time a failover or resume run may take: takeoverAfterMs, a new process and subscription, a Kafka rebalance. */
const TAKEOVER_ALLOWANCE_MS = 120_000;

/** A fan-in, failover or resume run to make. */
export interface ScenarioSpec {
  readonly broker: Exclude<BrokerName, "memory">;
  readonly chunkBytes: number;
  /** Bytes of each stream. */
  readonly sizeBytes: number;
  readonly inputFile: string;
  /** SHA-256 of `inputFile`: what every saved file must have. */
  readonly expectedSha256: string;
  /** Where receivers save (a folder per run, removed after it). */
  readonly workDir: string;
  readonly onProgress?: (bytes: number) => void;
  readonly onNote?: (note: string) => void;
}

/** P producers into one consumer, measured. */
export interface FanInResult {
  readonly broker: BrokerName;
  readonly producers: number;
  /** Bytes of each stream. */
  readonly sizeBytes: number;
  readonly chunkBytes: number;
  /** From the producers' first read to the consumer's last stream saved and verified. */
  readonly seconds: number;
  /** All streams' bytes over `seconds`, MB (10^6 bytes) per second. */
  readonly mbPerSecond: number;
  /** Streams saved with the right SHA-256 (all of them, or the run fails). */
  readonly verified: number;
  /** Most streams the consumer had open (arrived, not yet saved) at once. */
  readonly maxOpenStreams: number;
  readonly receiverPeakRssMB: number;
  readonly receiverCpuSeconds: number;
  /** The one process holding the P sending clients. */
  readonly senderPeakRssMB: number;
  readonly senderCpuSeconds: number;
}

/** A receiver SIGKILLed mid-stream and a second one taking the stream over, measured. */
export interface FailoverResult {
  readonly broker: BrokerName;
  readonly sizeBytes: number;
  readonly chunkBytes: number;
  /** What the first receiver had saved when it said so (it was killed right then). */
  readonly killedAtBytes: number;
  /** From the SIGKILL to the second receiver's first byte saved. */
  readonly killToFirstByteMs: number;
  /** From the sender's first read to the second receiver's file saved and verified. */
  readonly totalSeconds: number;
  /** Bytes of the dead receiver's partial file the second one continued from. */
  readonly startOffset: number;
  /** Whether the second receiver got the stream as a takeover. */
  readonly takeover: boolean;
  readonly receiverPeakRssMB: number;
}

/** A sender SIGKILLed half-way and a second sender process resuming its stream, against an uninterrupted send. */
export interface ResumeResult {
  readonly broker: BrokerName;
  readonly sizeBytes: number;
  readonly chunkBytes: number;
  /** The senders' window (core's resolved `windowBytes`): the most a resume may send twice. */
  readonly windowBytes: number;
  /** The same file sent without a kill: the sender's first read to the file saved and verified. */
  readonly uninterruptedSeconds: number;
  /** What the receiver had saved when it said so (its sender was killed right then). */
  readonly killedAtBytes: number;
  /** Data payload bytes the killed sender had published (its last count before the kill: at least this). */
  readonly killedSenderPublishedBytes: number;
  /** Where the resumed send started: the receiver's partial file, cut to whole chunks. */
  readonly resumedFromBytes: number;
  /** Data payload bytes the resumed sender published beyond the `sizeBytes - resumedFromBytes` it had to. */
  readonly resentBytes: number;
  /** From the SIGKILL to the file saved and verified (the second sender's process start included). */
  readonly killToDoneSeconds: number;
  /** From the first sender's first read to the file saved and verified. */
  readonly totalSeconds: number;
  /** `totalSeconds` over `uninterruptedSeconds`. */
  readonly ratio: number;
}

const MB = 1e6;
const destinationFor = (kind: string, broker: BrokerName): string => `bench.${broker}.${kind}.${randomUUID().slice(0, 8)}`;

function spawn(task: ScenarioTask, onProgress?: (bytes: number) => void): Worker {
  return new Worker(task, { round: 0 }, onProgress, SCENARIO_WORKER);
}

/** Waits for each worker to exit by itself (ends it after a while), passing on its notes. */
async function settle(workers: readonly Worker[], onNote?: (note: string) => void): Promise<void> {
  for (const worker of workers) {
    if (!(await worker.exitWithin(EXIT_TIMEOUT_MS))) onNote?.(`a worker had not exited ${EXIT_TIMEOUT_MS / 1000} s after its report; ended it`);
    for (const line of worker.stderrTail.split("\n")) if (line.startsWith("[stream] [bench]")) onNote?.(line);
  }
}

/**
 * Fan-in: one consumer process (saveTo, each SHA-256 checked) subscribed first, then one process
 * sending `producers` streams at once from as many clients.
 */
export async function runFanIn(spec: ScenarioSpec, producers: number): Promise<FanInResult> {
  const destination = destinationFor("fan-in", spec.broker);
  const outputDir = join(spec.workDir, destination);
  const base = { mode: "stream", broker: spec.broker, destination, chunkBytes: spec.chunkBytes, sizeBytes: spec.sizeBytes, producers } as const;
  const deadline = runTimeoutMs(spec.sizeBytes * producers);
  const workers: Worker[] = [];
  try {
    const consumer = spawn({ ...base, role: "fanin-receive", outputDir, expectedSha256: spec.expectedSha256 }, spec.onProgress);
    workers.push(consumer);
    await consumer.wait("ready", READY_TIMEOUT_MS);
    const sending = spawn({ ...base, role: "fanin-send", inputFile: spec.inputFile });
    workers.push(sending);
    const started = Date.now();
    const sender = (await sending.wait("scenario", deadline)).report;
    const receiver = (await consumer.wait("scenario", Math.max(60_000, deadline - (Date.now() - started)))).report;
    await settle(workers, spec.onNote);
    return toFanInResult(spec, producers, sender, receiver);
  } finally {
    await Promise.all(workers.map((worker) => worker.stop()));
    await rm(outputDir, { recursive: true, force: true });
  }
}

/** Turns the fan-in workers' reports into a {@link FanInResult}; throws unless every stream verified. */
export function toFanInResult(spec: Pick<ScenarioSpec, "broker" | "sizeBytes" | "chunkBytes">, producers: number, sender: ScenarioReport, receiver: ScenarioReport): FanInResult {
  if (receiver.streams !== producers) throw new Error(`[stream] [bench] fan-in: ${receiver.streams} of ${producers} streams saved and verified`);
  const seconds = Math.max(1e-6, (receiver.doneAt - (sender.startedAt ?? 0)) / 1000);
  return {
    broker: spec.broker,
    producers,
    sizeBytes: spec.sizeBytes,
    chunkBytes: spec.chunkBytes,
    seconds,
    mbPerSecond: receiver.bytes / MB / seconds,
    verified: receiver.streams,
    maxOpenStreams: receiver.maxOpenStreams ?? 0,
    receiverPeakRssMB: receiver.peakRssBytes / MB,
    receiverCpuSeconds: receiver.cpuSeconds,
    senderPeakRssMB: sender.peakRssBytes / MB,
    senderCpuSeconds: sender.cpuSeconds,
  };
}

/**
 * Failover: a receiver saving the file is SIGKILLed once it has saved half of it, and a second
 * receiver process is started at once on the same destination and folder (`takeover:
 * "continue"`). The sender's `takeoverAfterMs` is core's default.
 */
export async function runFailover(spec: ScenarioSpec): Promise<FailoverResult> {
  const destination = destinationFor("failover", spec.broker);
  const outputDir = join(spec.workDir, destination);
  const base = { mode: "stream", broker: spec.broker, destination, chunkBytes: spec.chunkBytes, sizeBytes: spec.sizeBytes, outputDir } as const;
  const deadline = runTimeoutMs(spec.sizeBytes) + TAKEOVER_ALLOWANCE_MS;
  const workers: Worker[] = [];
  try {
    const first = spawn({ ...base, role: "failover-receive", reachAtBytes: Math.floor(spec.sizeBytes / 2) }, spec.onProgress);
    workers.push(first);
    await first.wait("ready", READY_TIMEOUT_MS);
    const sending = spawn({ ...base, role: "failover-send", inputFile: spec.inputFile });
    workers.push(sending);
    const started = Date.now();
    const reached = await first.wait("reached", deadline);
    first.child.kill("SIGKILL");
    const killedAt = performance.timeOrigin + performance.now();
    const second = spawn({ ...base, role: "failover-receive", expectedSha256: spec.expectedSha256 }, spec.onProgress);
    workers.push(second);
    await first.exited;
    const remaining = (): number => Math.max(60_000, deadline - (Date.now() - started));
    const receiver = (await second.wait("scenario", remaining())).report;
    const sender = (await sending.wait("scenario", remaining())).report;
    await settle([sending, second], spec.onNote);
    return toFailoverResult(spec, { killedAt, killedAtBytes: reached.bytes }, sender, receiver);
  } finally {
    await Promise.all(workers.map((worker) => worker.stop()));
    await rm(outputDir, { recursive: true, force: true });
  }
}

/** Turns the failover reports into a {@link FailoverResult}; throws unless the whole file was saved. */
export function toFailoverResult(
  spec: Pick<ScenarioSpec, "broker" | "sizeBytes" | "chunkBytes">,
  kill: { readonly killedAt: number; readonly killedAtBytes: number },
  sender: ScenarioReport,
  receiver: ScenarioReport,
): FailoverResult {
  if (receiver.bytes !== spec.sizeBytes) throw new Error(`[stream] [bench] failover: ${receiver.bytes} bytes saved of ${spec.sizeBytes}`);
  return {
    broker: spec.broker,
    sizeBytes: spec.sizeBytes,
    chunkBytes: spec.chunkBytes,
    killedAtBytes: kill.killedAtBytes,
    killToFirstByteMs: receiver.firstByteAt === undefined ? Number.NaN : receiver.firstByteAt - kill.killedAt,
    totalSeconds: (receiver.doneAt - (sender.startedAt ?? 0)) / 1000,
    startOffset: receiver.startOffset ?? 0,
    takeover: receiver.takeover ?? false,
    receiverPeakRssMB: receiver.peakRssBytes / MB,
  };
}

/** What one send of the resume scenario's file measured: the workers' reports, and the kill if there was one. */
export interface ResumeSend {
  readonly receiver: ScenarioReport;
  /** The sender that finished: the resumed one after a kill. */
  readonly sender: ScenarioReport;
  /** The sending's first read: the first (killed) sender's after a kill. */
  readonly startedAt: number;
  readonly kill?: { readonly killedAt: number; readonly killedAtBytes: number; readonly publishedBytes: number };
}

/**
 * One send of the resume scenario's file under a fresh stream id: a receiver saving it, then a
 * sender; with `kill`, the sender is SIGKILLed once the receiver has saved half of the file and a
 * second sender process is started at once with the same stream id and `resume: true`.
 */
async function sendForResume(spec: ScenarioSpec, windowBytes: number | undefined, kill: boolean): Promise<ResumeSend> {
  const destination = destinationFor(kill ? "resume" : "resume-base", spec.broker);
  const outputDir = join(spec.workDir, destination);
  const base = { mode: "stream", broker: spec.broker, destination, chunkBytes: spec.chunkBytes, sizeBytes: spec.sizeBytes } as const;
  const sendTask = { ...base, role: "resume-send", inputFile: spec.inputFile, streamId: randomUUID(), ...(windowBytes === undefined ? {} : { windowBytes }) } as const;
  const deadline = runTimeoutMs(spec.sizeBytes) + (kill ? TAKEOVER_ALLOWANCE_MS : 0);
  const workers: Worker[] = [];
  try {
    const receiving = spawn({ ...base, role: "resume-receive", outputDir, expectedSha256: spec.expectedSha256, ...(kill ? { reachAtBytes: Math.floor(spec.sizeBytes / 2) } : {}) }, spec.onProgress);
    workers.push(receiving);
    await receiving.wait("ready", READY_TIMEOUT_MS);
    let publishedBytes = 0;
    const first = spawn(sendTask, (published) => void (publishedBytes = published));
    workers.push(first);
    const started = Date.now();
    const remaining = (): number => Math.max(60_000, deadline - (Date.now() - started));
    let sending = first;
    let killed: ResumeSend["kill"];
    if (kill) {
      const reached = await receiving.wait("reached", deadline);
      first.child.kill("SIGKILL");
      const killedAt = performance.timeOrigin + performance.now();
      sending = spawn({ ...sendTask, resume: true });
      workers.push(sending);
      // Its IPC channel closes once every message it got out before dying has been read: its last
      // count. Not waited for past a few seconds: a count, not the run, hangs on it.
      await new Promise((resolve) => {
        if (!first.child.connected) return resolve(undefined);
        first.child.once("disconnect", resolve);
        setTimeout(resolve, 5000).unref();
      });
      killed = { killedAt, killedAtBytes: reached.bytes, publishedBytes };
    }
    const { at: startedAt } = await first.wait("started", remaining());
    const receiver = (await receiving.wait("scenario", remaining())).report;
    const sender = (await sending.wait("scenario", remaining())).report;
    await settle([sending, receiving], spec.onNote);
    return { receiver, sender, startedAt, ...(killed ? { kill: killed } : {}) };
  } finally {
    await Promise.all(workers.map((worker) => worker.stop()));
    await rm(outputDir, { recursive: true, force: true });
  }
}

/**
 * Resume: the file sent once without a kill, then again with the sender SIGKILLed half-way (by
 * the receiver's progress) and a second sender process resuming it (same stream id, `resume:
 * true`); the receiver keeps serving and continues its partial file. `windowBytes` is the
 * senders' window (undefined: core's default).
 */
export async function runResume(spec: ScenarioSpec, windowBytes?: number): Promise<ResumeResult> {
  const uninterrupted = await sendForResume(spec, windowBytes, false);
  const resumed = await sendForResume(spec, windowBytes, true);
  return toResumeResult(spec, uninterrupted, resumed);
}

/**
 * Turns the two sends into a {@link ResumeResult}. Throws unless both saved the whole file
 * (the receivers checked its SHA-256) and the resumed sender re-sent at most one window, nor the
 * killed one published more than a window past where the resume started: core's promise.
 */
export function toResumeResult(spec: Pick<ScenarioSpec, "broker" | "sizeBytes" | "chunkBytes">, uninterrupted: ResumeSend, resumed: ResumeSend): ResumeResult {
  for (const { receiver } of [uninterrupted, resumed]) {
    if (receiver.bytes !== spec.sizeBytes) throw new Error(`[stream] [bench] resume: ${receiver.bytes} bytes saved of ${spec.sizeBytes}`);
  }
  const { kill, sender } = resumed;
  if (!kill) throw new Error("[stream] [bench] resume: the second send was not killed");
  const resumedFromBytes = sender.sendStartOffset ?? 0;
  const windowBytes = sender.windowBytes ?? Number.NaN;
  const resentBytes = (sender.publishedBytes ?? 0) - (spec.sizeBytes - resumedFromBytes);
  const sentTwiceBytes = kill.publishedBytes - resumedFromBytes;
  if (!(resentBytes <= windowBytes)) throw new Error(`[stream] [bench] resume: the resumed sender re-sent ${resentBytes} bytes, more than its window of ${windowBytes}`);
  if (!(sentTwiceBytes <= windowBytes)) throw new Error(`[stream] [bench] resume: the killed sender had published ${sentTwiceBytes} bytes past where the resume started (${resumedFromBytes}), more than its window of ${windowBytes}`);
  const uninterruptedSeconds = (uninterrupted.receiver.doneAt - uninterrupted.startedAt) / 1000;
  const totalSeconds = (resumed.receiver.doneAt - resumed.startedAt) / 1000;
  return {
    broker: spec.broker,
    sizeBytes: spec.sizeBytes,
    chunkBytes: spec.chunkBytes,
    windowBytes,
    uninterruptedSeconds,
    killedAtBytes: kill.killedAtBytes,
    killedSenderPublishedBytes: kill.publishedBytes,
    resumedFromBytes,
    resentBytes,
    killToDoneSeconds: (resumed.receiver.doneAt - kill.killedAt) / 1000,
    totalSeconds,
    ratio: totalSeconds / uninterruptedSeconds,
  };
}
