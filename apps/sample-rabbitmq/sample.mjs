// Sends a file through RabbitMQ and receives it in the same run, as two applications would (a
// client each), then prints the SHA-256 sent and received. Exits 1 if they differ.
//
//   node sample.mjs [file]        (no file: a 32 MiB random one is made)
//   STREAM_RABBITMQ_URL=amqp://user:pass@host:5672 node sample.mjs
import { createHash, randomBytes, randomUUID } from "node:crypto";
import { createReadStream, createWriteStream } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { pipeline } from "node:stream/promises";
import { createStreamClient } from "@stream/core";
import { createRabbitmqTransport } from "@stream/rabbitmq";
import amqplib from "amqplib";

const url = process.env.STREAM_RABBITMQ_URL ?? "amqp://127.0.0.1:5672";
const work = await mkdtemp(join(tmpdir(), "stream-sample-rabbitmq-"));
let source = process.argv[2];
if (!source) {
  source = join(work, "sample.bin");
  await writeFile(source, randomBytes(32 * 1024 * 1024));
}
const target = join(work, "received.bin");
// A destination of its own, so an earlier run's leftovers are never picked up.
const destination = `sample.${randomUUID().slice(0, 8)}`;

// The adapter reconnects; the client retries what failed meanwhile (and drops the duplicates).
const receiving = createStreamClient({ transport: createRabbitmqTransport({ url }) });
const sending = createStreamClient({ transport: createRabbitmqTransport({ url }) });

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
  await deleteQueue(destination);
  await rm(work, { recursive: true, force: true });
}
process.exitCode = exitCode;

async function sha256Of(path) {
  const hash = createHash("sha256");
  for await (const piece of createReadStream(path)) hash.update(piece);
  return hash.digest("hex");
}

/** The destination's queue is durable: remove it so the sample leaves nothing behind. */
async function deleteQueue(queue) {
  const connection = await amqplib.connect(url);
  try {
    const channel = await connection.createChannel();
    await channel.deleteQueue(queue);
  } finally {
    await connection.close();
  }
}
