/**
 * One side of a fan-in or failover run ({@link ScenarioTask}), in a process of its own so the
 * receiver's peak RSS and CPU time are its own. Forked by scenario-runner.ts with the task as JSON
 * in argv[2]; talks back over IPC: `ready` once receiving, `progress`, `reached` (failover), then
 * one `scenario` report or `error`.
 */
import { rm } from "node:fs/promises";
import { createStreamClient, type IncomingStream } from "@stream/core";
import { cpuSeconds, now, peakRssBytes, type ScenarioReport, type ScenarioTask, type WorkerMessage } from "./bench-run";
import { createStreamTransport, removeStreamDestination } from "./stream-transports";

/** The 1-byte stream each sending client sends first, to connect and open its inbox. */
const WARMUP_NAME = "stream-bench-warmup";
/** Disconnecting and removing the destination, after the report, gets this long. */
const CLEANUP_TIMEOUT_MS = 20_000;

const task = JSON.parse(process.argv[2] ?? "{}") as ScenarioTask;
const tell = (message: WorkerMessage): Promise<void> =>
  new Promise((resolve) => {
    if (!process.send) return resolve();
    process.send(message, undefined, {}, () => resolve());
  });
const measured = (report: Omit<ScenarioReport, "cpuSeconds" | "peakRssBytes">): ScenarioReport => ({ ...report, cpuSeconds: cpuSeconds(), peakRssBytes: peakRssBytes() });

function required<T>(value: T | undefined, name: string): T {
  if (value === undefined) throw new Error(`[stream] [bench] the ${task.role} task has no ${name}`);
  return value;
}

/** Drains a warm-up stream; true if `stream` was one. */
function skipWarmup(stream: IncomingStream): boolean {
  if (stream.manifest.name !== WARMUP_NAME) return false;
  stream.resume();
  stream.result.catch(() => {});
  return true;
}

interface Outcome {
  readonly report: ScenarioReport;
  readonly cleanup: () => Promise<void>;
}

/** Sends `inputFile` from `count` clients at once, each with its own connection, warmed up first. */
async function send(count: number): Promise<Outcome> {
  const inputFile = required(task.inputFile, "inputFile");
  const clients = await Promise.all(Array.from({ length: count }, async () => createStreamClient({ transport: await createStreamTransport(task.broker, task.chunkBytes) })));
  const options = { destination: task.destination, chunkBytes: task.chunkBytes };
  await Promise.all(clients.map((client) => client.send(new Uint8Array(1), { ...options, name: WARMUP_NAME })));
  const startedAt = now();
  const results = await Promise.all(clients.map((client, index) => client.send(inputFile, { ...options, name: count === 1 ? "failover.bin" : `fan-in-${index}.bin` })));
  const doneAt = now();
  return {
    report: measured({ startedAt, doneAt, bytes: results.reduce((sum, result) => sum + result.byteCount, 0), streams: results.length }),
    cleanup: async () => {
      await Promise.all(clients.map((client) => client.close()));
    },
  };
}

/** Saves `producers` streams with saveTo, checking each SHA-256, counting the streams open at once. */
async function fanInReceive(): Promise<Outcome> {
  const producers = required(task.producers, "producers");
  const expected = required(task.expectedSha256, "expectedSha256");
  const outputDir = required(task.outputDir, "outputDir");
  const client = createStreamClient({ transport: await createStreamTransport(task.broker, task.chunkBytes) });
  const receiver = client.receive(task.destination);
  let open = 0;
  let maxOpen = 0;
  let saved = 0;
  let bytes = 0;
  let firstByteAt: number | undefined;
  let toldAt = 0;
  const onProgress = (): void => {
    firstByteAt ??= now();
    if (now() - toldAt > 1000) {
      toldAt = now();
      void tell({ type: "progress", bytes });
    }
  };
  const done = new Promise<number>((resolve, reject) => {
    receiver.on("stream", (stream) => {
      if (skipWarmup(stream)) return;
      open += 1;
      maxOpen = Math.max(maxOpen, open);
      stream.saveTo(outputDir, { overwrite: true, onProgress }).then(async (result) => {
        open -= 1;
        if (result.sha256 !== expected) return reject(new Error(`[stream] [bench] ${stream.manifest.name ?? "a stream"} saved with SHA-256 ${result.sha256}, expected ${expected}`));
        saved += 1;
        bytes += result.byteCount;
        await rm(result.path, { force: true }); // verified: P copies need not fill the disk
        if (saved === producers) resolve(now());
      }, reject);
    });
  });
  await receiver.ready;
  await tell({ type: "ready" });
  const doneAt = await done;
  return {
    report: measured({ ...(firstByteAt === undefined ? {} : { firstByteAt }), doneAt, bytes, streams: saved, maxOpenStreams: maxOpen }),
    cleanup: async () => {
      await client.close();
      await removeStreamDestination(task.broker, task.destination);
    },
  };
}

/**
 * Saves the one stream into `outputDir` (continuing a dead receiver's partial file there), saying
 * `reached` once `reachAtBytes` are saved: the first receiver is killed then, the second one
 * (without `reachAtBytes`) reports.
 */
async function failoverReceive(): Promise<Outcome> {
  const outputDir = required(task.outputDir, "outputDir");
  const client = createStreamClient({ transport: await createStreamTransport(task.broker, task.chunkBytes) });
  const receiver = client.receive(task.destination, { takeover: "continue" });
  let firstByteAt: number | undefined;
  let toldAt = 0;
  let reached = false;
  const done = new Promise<{ doneAt: number; stream: IncomingStream; result: { byteCount: number; startOffset: number; sha256: string; path: string } }>((resolve, reject) => {
    receiver.on("stream", (stream) => {
      if (skipWarmup(stream)) return;
      const onProgress = ({ bytesReceived }: { bytesReceived: number }): void => {
        firstByteAt ??= now();
        if (!reached && task.reachAtBytes !== undefined && bytesReceived >= task.reachAtBytes) {
          reached = true;
          void tell({ type: "reached", bytes: bytesReceived, at: now() });
        }
        if (now() - toldAt > 1000) {
          toldAt = now();
          void tell({ type: "progress", bytes: bytesReceived });
        }
      };
      stream.saveTo(outputDir, { overwrite: true, onProgress }).then((result) => resolve({ doneAt: now(), stream, result }), reject);
    });
  });
  await receiver.ready;
  await tell({ type: "ready" });
  const { doneAt, stream, result } = await done;
  if (task.expectedSha256 !== undefined && result.sha256 !== task.expectedSha256) {
    throw new Error(`[stream] [bench] saved with SHA-256 ${result.sha256}, expected ${task.expectedSha256}`);
  }
  await rm(result.path, { force: true });
  return {
    report: measured({
      ...(firstByteAt === undefined ? {} : { firstByteAt }),
      doneAt,
      bytes: result.byteCount,
      streams: 1,
      startOffset: result.startOffset,
      takeover: stream.takeover !== undefined,
    }),
    cleanup: async () => {
      await client.close();
      await removeStreamDestination(task.broker, task.destination);
    },
  };
}

function main(): Promise<Outcome> {
  switch (task.role) {
    case "fanin-send":
      return send(required(task.producers, "producers"));
    case "failover-send":
      return send(1);
    case "fanin-receive":
      return fanInReceive();
    case "failover-receive":
      return failoverReceive();
  }
}

try {
  const { report, cleanup } = await main();
  await tell({ type: "scenario", report });
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<string>((resolve) => {
    timer = setTimeout(() => resolve(`cleanup took over ${CLEANUP_TIMEOUT_MS / 1000} s`), CLEANUP_TIMEOUT_MS);
  });
  const outcome = await Promise.race([cleanup().then(() => "", (error: unknown) => `cleanup failed: ${String(error)}`), timedOut]);
  clearTimeout(timer);
  if (outcome) process.stderr.write(`[stream] [bench] ${task.broker} ${task.role}: ${outcome}\n`);
  process.exit(0);
} catch (error) {
  await tell({ type: "error", message: error instanceof Error ? (error.stack ?? error.message) : String(error) });
  process.exit(1);
}
