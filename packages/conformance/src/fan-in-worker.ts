/**
 * One side of the fan-in test, in a process of its own:
 *   fan-in-worker receive <transport module> <destination> <streams> [receive options JSON]
 *   fan-in-worker send <transport module> <destination> <file>...
 * The receiver prints "ready" once receiving, reads `streams` streams (default options: one at a
 * time) and prints one JSON line: per stream its name, SHA-256 and the bytes it was handed, and
 * how many streams were open at once (handed over, not yet read to the end) and how often the
 * bytes it read switched from one stream to another. The sender sends every file at once, each
 * from a client of its own (a connection of its own, as separate producers have), and prints
 * one JSON line: per file its SHA-256 and whether the receiver had it queued for a while.
 */
import { createHash } from "node:crypto";
import { basename } from "node:path";
import { pathToFileURL } from "node:url";
import { createStreamClient, type IncomingStream, type Transport } from "@stream/core";

const [mode, modulePath, destination, ...rest] = process.argv.slice(2);
if ((mode !== "receive" && mode !== "send") || !modulePath || !destination || rest.length === 0) {
  console.error("usage: fan-in-worker receive <transport module> <destination> <streams> [options JSON] | send <transport module> <destination> <file>...");
  process.exit(2);
}
const { createTransport } = (await import(pathToFileURL(modulePath).href)) as { createTransport: () => Transport | Promise<Transport> };
const print = (line: unknown): void => void process.stdout.write(`${JSON.stringify(line)}\n`);

if (mode === "receive") {
  const count = Number(rest[0]);
  const client = createStreamClient({ transport: await createTransport() });
  try {
    const receiver = client.receive(destination, rest[1] ? JSON.parse(rest[1]) : {});
    await receiver.ready;
    process.stdout.write("ready\n");
    let open = 0;
    let mostOpen = 0;
    let switches = 0;
    let lastRead: string | undefined;
    const streams: Array<{ name: string; sha256: string; bytesHanded: number }> = [];
    await new Promise<void>((resolve, reject) => {
      receiver.on("stream", (stream: IncomingStream) => {
        open += 1;
        mostOpen = Math.max(mostOpen, open);
        stream.once("end", () => void (open -= 1));
        void (async () => {
          const hash = createHash("sha256");
          let bytesHanded = 0;
          for await (const part of stream) {
            if (lastRead !== undefined && lastRead !== stream.streamId) switches += 1;
            lastRead = stream.streamId;
            hash.update(part as Buffer);
            bytesHanded += (part as Buffer).byteLength;
          }
          streams.push({ name: stream.manifest.name, sha256: hash.digest("hex"), bytesHanded });
          if (streams.length === count) resolve();
        })().catch(reject);
      });
    });
    print({ streams, mostOpen, switches });
  } finally {
    await client.close();
  }
} else {
  const clients = await Promise.all(rest.map(async () => createStreamClient({ transport: await createTransport() })));
  try {
    const sent = await Promise.all(
      rest.map(async (file, i) => {
        let queued = false;
        const result = await clients[i]!.send(file, {
          destination,
          name: basename(file),
          onProgress: (progress) => void (queued ||= progress.queued),
        });
        return { name: basename(file), sha256: result.sha256, queued };
      }),
    );
    print({ sent });
  } finally {
    await Promise.all(clients.map((client) => client.close()));
  }
}
