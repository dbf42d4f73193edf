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
/** Extra time a failover run may take: takeoverAfterMs, a new subscription, a Kafka rebalance. */
const TAKEOVER_ALLOWANCE_MS = 120_000;

/** A fan-in or failover run to make. */
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
