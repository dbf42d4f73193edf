// Sends a file through Apache Kafka and receives it in the same run, as two applications would (a
// client each), then prints the SHA-256 sent and received. Exits 1 if they differ.
//
//   node sample.mjs [file]        (no file: a 32 MiB random one is made)
//   STREAM_KAFKA_BROKERS=host1:9092,host2:9092 node sample.mjs
import { createHash, randomBytes, randomUUID } from "node:crypto";
import { createReadStream, createWriteStream } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { pipeline } from "node:stream/promises";
import { createStreamClient } from "@stream/core";
import { createKafkaTransport } from "@stream/kafka";
import { Admin } from "@platformatic/kafka";

const brokers = (process.env.STREAM_KAFKA_BROKERS ?? "127.0.0.1:9092").split(",");
const work = await mkdtemp(join(tmpdir(), "stream-sample-kafka-"));
let source = process.argv[2];
if (!source) {
  source = join(work, "sample.bin");
  await writeFile(source, randomBytes(32 * 1024 * 1024));
}
const target = join(work, "received.bin");
// A destination of its own, so an earlier run's leftovers are never picked up.
const destination = `sample.${randomUUID().slice(0, 8)}`;

// Retries (and the dedupe that makes them safe) live in core's client; the adapter reconnects.
// The transport runs on @platformatic/kafka; `createKafkaTransport({ kafkajs: new Kafka({...}) })`
// would run it on kafkajs instead.
const connect = () => createKafkaTransport({ brokers });
const receiving = createStreamClient({ transport: connect() });
const sending = createStreamClient({ transport: connect() });

let exitCode = 1;
try {
  const receiver = receiving.receive(destination);
  await receiver.ready;
  const received = (async () => {
    for await (const incoming of receiver) {
      console.log(`receiving ${incoming.manifest.name} (${incoming.manifest.sizeBytes} bytes)`);
      await pipeline(incoming, createWriteStream(target));
      return incoming.result;
    }
    throw new Error("the receiver closed before a stream arrived");
  })();

  const started = performance.now();
  const sent = await sending.send(source, { destination, name: basename(source) });
  const result = await received;
  const seconds = (performance.now() - started) / 1000;
  const onDisk = await sha256Of(target);

  console.log(`sent     ${sent.sha256}  ${sent.byteCount} bytes in ${sent.chunkCount} chunks`);
  console.log(`received ${result.sha256}  ${result.byteCount} bytes (${(sent.byteCount / 1e6 / seconds).toFixed(1)} MB/s)`);
  console.log(`on disk  ${onDisk}`);
  exitCode = sent.sha256 === result.sha256 && result.sha256 === onDisk ? 0 : 1;
  console.log(exitCode === 0 ? "OK: byte-exact" : "MISMATCH");
} finally {
  await receiving.close();
  await sending.close();
  await deleteDestination(destination);
  await rm(work, { recursive: true, force: true });
}
process.exitCode = exitCode;

async function sha256Of(path) {
  const hash = createHash("sha256");
  for await (const piece of createReadStream(path)) hash.update(piece);
  return hash.digest("hex");
}

/** The destination's topic and consumer group are durable: remove them so the sample leaves nothing behind. */
async function deleteDestination(topic) {
  const admin = new Admin({ clientId: "stream-sample", bootstrapBrokers: brokers });
  try {
    await admin.deleteGroups({ groups: [`stream.${topic}`] }).catch(() => {});
    await admin.deleteTopics({ topics: [topic] });
  } finally {
    await admin.close();
  }
}
