/**
 * One end of one bench run, in a process of its own so its peak RSS and CPU time are its own.
 * Forked by the orchestrator with the task as JSON in argv[2]; talks back over IPC
 * ({@link WorkerMessage}): `ready` once receiving, `progress`, then one `report` or `error`.
 */
import { createReadStream, createWriteStream } from "node:fs";
import { pipeline } from "node:stream/promises";
import { createStreamClient, type IncomingStream } from "@stream/core";
import { BENCH_E2E_KEY, cpuSeconds, now, type ParentMessage, peakRssBytes, type WorkerMessage, type WorkerReport, type WorkerTask } from "./bench-run";
import type { RawClient } from "./raw/raw-client";
import { sendRawFile } from "./raw/raw-sender";
import { RawSink } from "./raw/raw-sink";
import { createStreamTransport, removeStreamDestination } from "./stream-transports";

/** The name of the 1-byte stream a @stream sender sends first, to connect and open its inbox. */
const WARMUP_NAME = "stream-bench-warmup";
/** A raw receiver whose sender is done stops after this long without a message: the rest is lost. */
const QUIET_MS = 5000;
/** Disconnecting and removing the run's queue or topic, after the report, gets this long. */
const CLEANUP_TIMEOUT_MS = 20_000;

/** A worker's measurement, and what to close once it has been reported. */
interface Outcome {
  readonly report: WorkerReport;
  readonly cleanup?: () => Promise<void>;
}

const task = JSON.parse(process.argv[2] ?? "{}") as WorkerTask;
const tell = (message: WorkerMessage): Promise<void> =>
  new Promise((resolve) => {
    if (!process.send) return resolve();
    process.send(message, undefined, {}, () => resolve());
  });
let senderDoneAt: number | undefined;
process.on("message", (message: ParentMessage) => {
  if (message.type === "sender-done") senderDoneAt = now();
});

const measured = (report: Omit<WorkerReport, "cpuSeconds" | "peakRssBytes" | "role">): WorkerReport => ({
  role: task.role,
  ...report,
  cpuSeconds: cpuSeconds(),
  peakRssBytes: peakRssBytes(),
});

function required<T>(value: T | undefined, name: string): T {
  if (value === undefined) throw new Error(`[stream] [bench] the ${task.role} task has no ${name}`);
  return value;
}

async function rawClient(): Promise<RawClient> {
  switch (task.broker) {
    case "activemq":
      return (await import("./raw/raw-activemq")).rawActivemq;
    case "rabbitmq":
      return (await import("./raw/raw-rabbitmq")).rawRabbitmq;
    case "mqtt":
      return (await import("./raw/raw-mqtt")).rawMqtt;
    case "kafka":
      return (await import("./raw/raw-kafka")).rawKafka;
    case "kafkajs":
      return (await import("./raw/raw-kafkajs")).rawKafkajs;
    default:
      throw new Error(`[stream] [bench] no raw client for ${task.broker}`);
  }
}

/** Passes chunks through, noting the first one's arrival and reporting progress. */
function watch(onFirst: () => void) {
  return async function* (source: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
    let bytes = 0;
    let toldAt = 0;
    for await (const chunk of source) {
      if (bytes === 0) onFirst();
      bytes += chunk.byteLength;
      if (now() - toldAt > 1000) {
        toldAt = now();
        void tell({ type: "progress", bytes });
      }
      yield chunk;
    }
  };
}

async function rawSend(): Promise<Outcome> {
  const client = await rawClient();
  const setupFrom = now();
  const publisher = await client.openPublisher(task.destination, task.chunkBytes);
  const startedAt = now();
  const { bytes, chunks } = await sendRawFile(publisher, required(task.inputFile, "inputFile"), task.chunkBytes, required(task.windowChunks, "windowChunks"));
  const doneAt = now();
  return { report: measured({ startedAt, doneAt, bytes, chunks, setupMs: startedAt - setupFrom }), cleanup: () => publisher.close() };
}

async function rawReceive(): Promise<Outcome> {
  const client = await rawClient();
  const sink = new RawSink(required(task.outputFile, "outputFile"), task.sizeBytes, task.chunkBytes);
  let failure: Error | undefined;
  const consumer = await client.openConsumer(task.destination, task.chunkBytes, sink.accept, (error) => {
    failure ??= error;
  });
  await tell({ type: "ready" });
  let quiet: NodeJS.Timeout | undefined;
  const gaveUp = new Promise<void>((resolve) => {
    quiet = setInterval(() => {
      void tell({ type: "progress", bytes: sink.uniqueBytes });
      if (failure) resolve();
      if (senderDoneAt !== undefined && now() - Math.max(sink.lastWrittenAt, senderDoneAt) > QUIET_MS) resolve();
    }, 250);
  });
  await Promise.race([sink.completed, gaveUp]);
  clearInterval(quiet);
  await sink.close();
  if (failure) throw failure;
  const report = measured({
    ...(sink.firstByteAt === undefined ? {} : { firstByteAt: sink.firstByteAt }),
    doneAt: sink.lastWrittenAt,
    bytes: sink.uniqueBytes,
    chunks: sink.uniqueChunks,
    lost: sink.lost,
    duplicated: sink.duplicated,
  });
  return { report, cleanup: () => consumer.close() };
}

/** What every @stream send of this task is given besides its destination. */
function streamOptions() {
  return {
    chunkBytes: task.chunkBytes,
    ...(task.windowChunks === undefined ? {} : { windowChunks: task.windowChunks }),
    ...(task.e2e ? { encryption: BENCH_E2E_KEY } : {}),
  };
}

async function streamSend(): Promise<Outcome> {
  if (task.broker === "memory") throw new Error("[stream] [bench] the memory transport runs as one local process");
  const setupFrom = now();
  const client = createStreamClient({ transport: await createStreamTransport(task.broker, task.chunkBytes) });
  const options = { ...streamOptions(), destination: task.destination };
  // A long-lived client has connected and opened its inbox before the file that matters.
  await client.send(new Uint8Array(1), { ...options, name: WARMUP_NAME });
  const startedAt = now();
  const result = await client.send(required(task.inputFile, "inputFile"), options);
  const doneAt = now();
  return {
    report: measured({ startedAt, doneAt, bytes: result.byteCount, chunks: result.chunkCount, sha256: result.sha256, setupMs: startedAt - setupFrom }),
    cleanup: () => client.close(),
  };
}

async function receiveOne(streams: AsyncIterable<IncomingStream>, outputFile: string) {
  for await (const stream of streams) {
    if (stream.manifest.name === WARMUP_NAME) {
      stream.resume();
      await stream.result;
      continue;
    }
    let firstByteAt = 0;
    await pipeline(
      stream,
      watch(() => {
        firstByteAt = now();
      }),
      createWriteStream(outputFile, { highWaterMark: 1024 * 1024 }),
    );
    const result = await stream.result;
    return { firstByteAt, doneAt: now(), result };
  }
  throw new Error("[stream] [bench] the receiver closed before a stream arrived");
}

async function streamReceive(): Promise<Outcome> {
  const { broker } = task;
  if (broker === "memory") throw new Error("[stream] [bench] the memory transport runs as one local process");
  const client = createStreamClient({ transport: await createStreamTransport(broker, task.chunkBytes) });
  const receiver = client.receive(task.destination, task.e2e ? { keys: [BENCH_E2E_KEY] } : {});
  await receiver.ready;
  await tell({ type: "ready" });
  const { firstByteAt, doneAt, result } = await receiveOne(receiver, required(task.outputFile, "outputFile"));
  return {
    report: measured({ firstByteAt, doneAt, bytes: result.byteCount, chunks: result.chunkCount, sha256: result.sha256 }),
    async cleanup() {
      await client.close();
      await removeStreamDestination(broker, task.destination);
    },
  };
}

/** The in-memory transport: sender and receiver in this one process, like `bench:core`. */
async function local(): Promise<Outcome> {
  const inputFile = required(task.inputFile, "inputFile");
  const outputFile = required(task.outputFile, "outputFile");
  if (task.mode === "raw") {
    let firstByteAt = 0;
    const startedAt = now();
    await pipeline(
      createReadStream(inputFile, { highWaterMark: task.chunkBytes }),
      watch(() => {
        firstByteAt = now();
      }),
      createWriteStream(outputFile, { highWaterMark: 1024 * 1024 }),
    );
    const doneAt = now();
    return { report: measured({ startedAt, firstByteAt, doneAt, bytes: task.sizeBytes, chunks: Math.ceil(task.sizeBytes / task.chunkBytes) }) };
  }
  const { createMemoryTransport, MemoryBroker } = await import("@stream/core/testing");
  const broker = new MemoryBroker();
  const sender = createStreamClient({ transport: createMemoryTransport({ broker }) });
  const receiver = createStreamClient({ transport: createMemoryTransport({ broker }) });
  try {
    const streams = receiver.receive(task.destination, task.e2e ? { keys: [BENCH_E2E_KEY] } : {});
    await streams.ready;
    const startedAt = now();
    const received = receiveOne(streams, outputFile);
    const sent = await sender.send(inputFile, { ...streamOptions(), destination: task.destination });
    const { firstByteAt, doneAt, result } = await received;
    if (result.sha256 !== sent.sha256) throw new Error(`[stream] [bench] SHA-256 mismatch: sent ${sent.sha256}, received ${result.sha256}`);
    return { report: measured({ startedAt, firstByteAt, doneAt, bytes: result.byteCount, chunks: result.chunkCount, sha256: result.sha256 }) };
  } finally {
    await Promise.all([sender.close(), receiver.close()]);
  }
}

async function main(): Promise<Outcome> {
  if (task.role === "local") return local();
  if (task.role === "send") return task.mode === "raw" ? rawSend() : streamSend();
  return task.mode === "raw" ? rawReceive() : streamReceive();
}

try {
  const { report, cleanup } = await main();
  // The measurement is complete: report it before disconnecting and removing the destination,
  // which may take long (or hang in a client library) and must not hold up or spoil the run.
  await tell({ type: "report", report });
  if (cleanup) {
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<string>((resolve) => {
      timer = setTimeout(() => resolve(`cleanup took over ${CLEANUP_TIMEOUT_MS / 1000} s`), CLEANUP_TIMEOUT_MS);
    });
    const outcome = await Promise.race([cleanup().then(() => "", (error: unknown) => `cleanup failed: ${String(error)}`), timedOut]);
    clearTimeout(timer);
    if (outcome) process.stderr.write(`[stream] [bench] ${task.broker} ${task.mode} ${task.role}: ${outcome}\n`);
  }
  process.exit(0);
} catch (error) {
  await tell({ type: "error", message: error instanceof Error ? (error.stack ?? error.message) : String(error) });
  process.exit(1);
}
