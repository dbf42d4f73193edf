/**
 * One side of a fan-in, failover or resume run ({@link ScenarioTask}), in a process of its own so the
 * receiver's peak RSS and CPU time are its own. Forked by scenario-runner.ts with the task as JSON
 * in argv[2]; talks back over IPC: `ready` once receiving, `progress`, `reached` (failover, resume), then
 * one `scenario` report or `error`.
 */
import { rm } from "node:fs/promises";
import { createStreamClient, DATA_HEADER_BYTES, FrameType, type IncomingStream, readFrameType, resolveFlow, type StreamClient, type Transport } from "@stream/core";
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

/** What every send of a scenario uses: the task's destination and chunk size. */
const sendOptions = (): { destination: string; chunkBytes: number } => ({ destination: task.destination, chunkBytes: task.chunkBytes });

/** Sends each client's 1-byte warm-up stream: connects it and opens its inbox before the clock starts. */
async function warmUp(clients: readonly StreamClient[]): Promise<void> {
  await Promise.all(clients.map((client) => client.send(new Uint8Array(1), { ...sendOptions(), name: WARMUP_NAME })));
}

/** Sends `inputFile` from `count` clients at once, each with its own connection, warmed up first. */
async function send(count: number): Promise<Outcome> {
  const inputFile = required(task.inputFile, "inputFile");
  const clients = await Promise.all(Array.from({ length: count }, async () => createStreamClient({ transport: await createStreamTransport(task.broker, task.chunkBytes) })));
  await warmUp(clients);
  const startedAt = now();
  const results = await Promise.all(clients.map((client, index) => client.send(inputFile, { ...sendOptions(), name: count === 1 ? "failover.bin" : `fan-in-${index}.bin` })));
  const doneAt = now();
  return {
    report: measured({ startedAt, doneAt, bytes: results.reduce((sum, result) => sum + result.byteCount, 0), streams: results.length }),
    cleanup: async () => {
      await Promise.all(clients.map((client) => client.close()));
    },
  };
}

/**
 * `transport`, calling `onData` with the payload bytes of each data frame published through it (a
 * retransmission again): what a send really put on the broker, which its progress does not say.
 */
function countingData(transport: Transport, onData: (payloadBytes: number) => void): Transport {
  return {
    specificationVersion: transport.specificationVersion,
    name: transport.name,
    capabilities: transport.capabilities,
    ...(transport.connection ? { connection: transport.connection } : {}),
    publish(channel, frame, options) {
      if (readFrameType(frame) === FrameType.Data) onData(frame.byteLength - DATA_HEADER_BYTES);
      return transport.publish(channel, frame, options);
    },
    subscribe: (channel, handler, options) => transport.subscribe(channel, handler, options),
    close: () => transport.close(),
  };
}

/**
 * Sends `inputFile` under the task's `streamId`, counting the data payload bytes published and
 * telling the total as `progress` on each publish (so the count of a sender killed mid-stream is
 * known up to its last publish). With `resume`, no warm-up: the clock of a restarted sender runs
 * from its process's start, connection included.
 */
async function resumeSend(): Promise<Outcome> {
  const inputFile = required(task.inputFile, "inputFile");
  let published = 0;
  const transport = countingData(await createStreamTransport(task.broker, task.chunkBytes), (payloadBytes) => {
    published += payloadBytes;
    void tell({ type: "progress", bytes: published });
  });
  const client = createStreamClient({ transport });
  if (!task.resume) await warmUp([client]);
  published = 0;
  const flow = { chunkBytes: task.chunkBytes, ...(task.windowBytes === undefined ? {} : { windowBytes: task.windowBytes }) };
  const startedAt = now();
  void tell({ type: "started", at: startedAt });
  const result = await client.send(inputFile, { ...sendOptions(), ...flow, name: "resume.bin", streamId: required(task.streamId, "streamId"), ...(task.resume ? { resume: true } : {}) });
  const doneAt = now();
  return {
    report: measured({
      startedAt,
      doneAt,
      bytes: result.byteCount,
      streams: 1,
      publishedBytes: published,
      windowBytes: resolveFlow(transport.capabilities, flow).windowBytes,
      sendStartOffset: result.startOffset,
    }),
    cleanup: () => client.close(),
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
 * Saves the one stream into `outputDir`, saying `reached` once `reachAtBytes` are saved.
 * Failover: continuing a dead receiver's partial file there (the first receiver is killed at
 * `reached`, the second one, without `reachAtBytes`, reports). Resume: its sender is killed at
 * `reached`; the attempt that fails then is passed over, and the resumed one continues the
 * partial file it kept.
 */
async function saveOne(): Promise<Outcome> {
  const outputDir = required(task.outputDir, "outputDir");
  const resuming = task.role === "resume-receive";
  const client = createStreamClient({ transport: await createStreamTransport(task.broker, task.chunkBytes) });
  const receiver = client.receive(task.destination, resuming ? {} : { takeover: "continue" });
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
      stream.saveTo(outputDir, { overwrite: true, onProgress }).then(
        (result) => resolve({ doneAt: now(), stream, result }),
        // The attempt whose sender was killed fails (superseded or timed out): the resumed one follows.
        (error: unknown) => (resuming && reached ? undefined : reject(error)),
      );
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
    case "resume-receive":
      return saveOne();
    case "resume-send":
      return resumeSend();
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
