// Streams a file through an MQTT broker and checks it arrives byte-exact.
//
//   node sample.mjs [file]          (default: a generated 32 MiB file)
//   STREAM_MQTT_URL=mqtt://host:1883 node sample.mjs
//
// Exits 0 when the SHA-256 received equals the SHA-256 sent, 1 otherwise.
import { createHash, randomBytes, randomUUID } from "node:crypto";
import { createReadStream, createWriteStream } from "node:fs";
import { mkdtemp, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { pipeline } from "node:stream/promises";
import { createStreamClient } from "@stream/core";
import { createMqttTransport } from "@stream/mqtt";

const url = process.env.STREAM_MQTT_URL ?? "mqtt://127.0.0.1:1883";
const workDir = await mkdtemp(join(tmpdir(), "sample-mqtt-"));

async function makeFile(path, sizeBytes) {
  const out = createWriteStream(path);
  for (let written = 0; written < sizeBytes; written += 1024 * 1024) {
    if (!out.write(randomBytes(Math.min(1024 * 1024, sizeBytes - written)))) {
      await new Promise((resolve) => out.once("drain", resolve));
    }
  }
  await new Promise((resolve, reject) => out.end((error) => (error ? reject(error) : resolve())));
}

async function sha256File(path) {
  const hash = createHash("sha256");
  await pipeline(createReadStream(path), hash);
  return hash.digest("hex");
}

// One transport per side, as two processes would have.
const sender = createStreamClient({ transport: createMqttTransport({ url }) });
const receiver = createStreamClient({ transport: createMqttTransport({ url }) });
let ok = false;
try {
  const source = process.argv[2] ?? join(workDir, "sample.bin");
  if (!process.argv[2]) await makeFile(source, 32 * 1024 * 1024);
  const { size } = await stat(source);
  const destination = `sample.${randomUUID().slice(0, 8)}`;
  const target = join(workDir, "received.bin");

  // Start receiving first: MQTT keeps nothing for a topic nobody is subscribed to.
  const streams = receiver.receive(destination);
  await streams.ready;
  const received = (async () => {
    for await (const incoming of streams) {
      await pipeline(incoming, createWriteStream(target));
      return incoming.result;
    }
  })();

  const started = performance.now();
  const sent = await sender.send(source, { destination, name: basename(source) });
  const result = await received;
  const seconds = (performance.now() - started) / 1000;
  const onDisk = await sha256File(target);

  console.log(`broker    ${url}`);
  console.log(`file      ${source} (${size} bytes, ${sent.chunkCount} chunks)`);
  console.log(`sent      sha256 ${sent.sha256}`);
  console.log(`received  sha256 ${result.sha256} (on disk ${onDisk})`);
  console.log(`speed     ${(size / 1e6 / seconds).toFixed(1)} MB/s`);
  ok = sent.sha256 === result.sha256 && onDisk === sent.sha256 && result.byteCount === size;
  console.log(ok ? "OK: byte-exact" : "MISMATCH");
} catch (error) {
  console.error(error);
} finally {
  await Promise.allSettled([sender.close(), receiver.close()]);
  await rm(workDir, { recursive: true, force: true });
}
process.exit(ok ? 0 : 1);
