/**
 * One end of the takeover test, in a process of its own (the test SIGKILLs the first receiver):
 *   takeover-worker receive <transport module> <destination> <folder>
 *   takeover-worker send-readable <transport module> <destination> <file> [send options JSON]
 * A receiver prints "ready" once receiving, then JSON lines: `{"event":"progress",...}` as bytes
 * are saved (the first one is the first byte), and `{"event":"saved",...}` once the file has its
 * name. The sender sends the file as a `Readable` (a source that cannot be read again) and prints
 * one JSON line with its sha256 and byteCount. A receiver takes receive options as JSON (e.g.
 * `{"takeover":"discard"}`); one that discards a stream taken over prints `{"event":"discarded",...}`.
 */
import { createReadStream } from "node:fs";
import { stat } from "node:fs/promises";
import { pathToFileURL } from "node:url";
import { createStreamClient, type Transport } from "@stream/core";

const [mode, modulePath, destination, path, extra] = process.argv.slice(2);
if ((mode !== "receive" && mode !== "send-readable") || !modulePath || !destination || !path) {
  console.error("usage: takeover-worker receive|send-readable <transport module> <destination> <folder|file> [receive|send options JSON]");
  process.exit(2);
}
const { createTransport } = (await import(pathToFileURL(modulePath).href)) as { createTransport: () => Transport | Promise<Transport> };
const client = createStreamClient({ transport: await createTransport() });
const print = (line: Record<string, unknown>): void => void process.stdout.write(`${JSON.stringify(line)}\n`);
const folder = path;
try {
  if (mode === "send-readable") {
    const { size } = await stat(path);
    const options = { destination, name: "source.bin", sizeBytes: size, ...(extra ? JSON.parse(extra) : {}) };
    const result = await client.send(createReadStream(path, { highWaterMark: 1024 * 1024 }), options);
    print({ sha256: result.sha256, byteCount: result.byteCount, seconds: 0, peakRssBytes: 0 });
  } else {
    const receiver = client.receive(destination, extra ? JSON.parse(extra) : {});
    await receiver.ready;
    process.stdout.write("ready\n");
    // takeover: "discard": the stream is refused, and the receiver says so instead of saving it.
    const discarded = new Promise<void>((resolve) =>
      receiver.once("takeoverDiscarded", (manifest) => {
        print({ event: "discarded", at: Date.now(), streamId: manifest.streamId, startOffset: 0, takeover: true });
        resolve();
      }),
    );
    const saving = (async () => {
      for await (const stream of receiver) {
        const { chunkBytes, sizeBytes } = stream.manifest;
        const takeover = stream.takeover !== undefined;
        let last = 0;
        let handed = 0;
        const saved = await stream.saveTo(folder, {
          onProgress: ({ bytesReceived }) => {
            handed = bytesReceived;
            // Every 1 MiB and the first byte: enough for the test to kill at half way.
            if (last === 0 || bytesReceived - last >= 1024 * 1024) {
              print({ event: "progress", at: Date.now(), bytesReceived, startOffset: stream.startOffset, chunkBytes, sizeBytes, takeover });
              last = bytesReceived;
            }
          },
        });
        print({ event: "saved", at: Date.now(), ...saved, takeover, bytesHanded: handed });
        break;
      }
    })();
    await Promise.race([saving, discarded]);
  }
} finally {
  await client.close();
}
