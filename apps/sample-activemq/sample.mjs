// Sends a file through ActiveMQ and receives it back, comparing SHA-256s.
//   node sample.mjs [file]     (default: a generated 32 MiB file)
// Broker: STREAM_ACTIVEMQ_URL, default stomp://127.0.0.1:61613. Needs the built packages
// (`pnpm --filter @stream/activemq... build`).
import { createHash, randomBytes } from "node:crypto";
import { createReadStream, createWriteStream } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { pipeline } from "node:stream/promises";
import { createActivemqTransport } from "@stream/activemq";
import { createStreamClient } from "@stream/core";

const url = process.env.STREAM_ACTIVEMQ_URL ?? "stomp://127.0.0.1:61613";
const dir = await mkdtemp(join(tmpdir(), "sample-activemq-"));
let source = process.argv[2];
if (!source) {
  source = join(dir, "sample.bin");
  await writeFile(source, randomBytes(32 * 1024 * 1024));
}
const destination = `sample-activemq.${randomBytes(4).toString("hex")}`;

// One client sends, another receives: in a real system they are different processes.
const sender = createStreamClient({ transport: createActivemqTransport({ url }) });
const receiver = createStreamClient({ transport: createActivemqTransport({ url }) });
try {
  const incoming = receiver.receive(destination);
  const received = (async () => {
    for await (const stream of incoming) {
      await pipeline(stream, createWriteStream(join(dir, "received.bin")));
      return stream.result;
    }
    throw new Error("the receiver closed before a stream arrived");
  })();

  const started = performance.now();
  const sent = await sender.send(source, { destination, name: basename(source) });
  const got = await received;
  const seconds = (performance.now() - started) / 1000;
  await incoming.close();
  // Hash the file on disk ourselves rather than trusting the receiver's own figure.
  const hash = createHash("sha256");
  for await (const chunk of createReadStream(join(dir, "received.bin"))) hash.update(chunk);
  const onDisk = hash.digest("hex");

  console.log(`sent     ${sent.sha256}  ${sent.byteCount} bytes in ${sent.chunkCount} chunks`);
  console.log(`received ${onDisk}  ${got.byteCount} bytes, ${(got.byteCount / 1e6 / seconds).toFixed(1)} MB/s`);
  if (onDisk !== sent.sha256 || got.sha256 !== sent.sha256 || got.byteCount !== sent.byteCount) {
    console.error("MISMATCH: what arrived differs from what was sent");
    process.exitCode = 1;
  } else {
    console.log("OK: byte-exact");
  }
} finally {
  await Promise.allSettled([sender.close(), receiver.close()]);
  await rm(dir, { recursive: true, force: true });
}
