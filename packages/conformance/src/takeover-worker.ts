/**
 * A receiver of the takeover test, in a process of its own (the test SIGKILLs the first one):
 *   takeover-worker <transport module> <destination> <folder>
 * Prints "ready" once receiving, then JSON lines: `{"event":"progress",...}` as bytes are saved
 * (the first one is the first byte), and `{"event":"saved",...}` once the file has its name.
 */
import { pathToFileURL } from "node:url";
import { createStreamClient, type Transport } from "@stream/core";

const [modulePath, destination, folder] = process.argv.slice(2);
if (!modulePath || !destination || !folder) {
  console.error("usage: takeover-worker <transport module> <destination> <folder>");
  process.exit(2);
}
const { createTransport } = (await import(pathToFileURL(modulePath).href)) as { createTransport: () => Transport | Promise<Transport> };
const client = createStreamClient({ transport: await createTransport() });
const print = (line: Record<string, unknown>): void => void process.stdout.write(`${JSON.stringify(line)}\n`);
try {
  const receiver = client.receive(destination);
  await receiver.ready;
  process.stdout.write("ready\n");
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
} finally {
  await client.close();
}
