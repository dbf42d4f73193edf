/**
 * One end of a fault-injection test (see fault-harness.ts), in a process of its own:
 *   fault-worker <JSON of FaultWorkerArgs>
 * It connects through the proxy port it is given, so the test can cut this side alone. It prints
 * one JSON object per line on stdout: see FaultWorkerEvent.
 */
import { pathToFileURL } from "node:url";
import { createStreamClient, StreamError, type Transport } from "@stream/core";
import type { FaultWorkerArgs, FaultWorkerEvent } from "./fault-harness";
import { hashFile } from "./files";

const args = JSON.parse(process.argv[2] ?? "{}") as FaultWorkerArgs;
const print = (event: FaultWorkerEvent): void => void process.stdout.write(`${JSON.stringify(event)}\n`);
const { createTransport } = (await import(pathToFileURL(args.transportModule).href)) as {
  createTransport: (options: { port: number }) => Transport | Promise<Transport>;
};
const client = createStreamClient({ transport: await createTransport({ port: args.port }), ...(args.retry ? { retry: args.retry } : {}) });
const started = Date.now();
const seconds = (): number => (Date.now() - started) / 1000;
const describe = (error: unknown) => ({
  code: StreamError.isInstance(error) ? error.code : "UNEXPECTED",
  message: error instanceof Error ? error.message : String(error),
});

if (args.mode === "send") {
  let reconnecting = false;
  try {
    const result = await client.send(args.path, {
      destination: args.destination,
      ...args.sendOptions,
      onProgress: ({ bytesAcknowledged, connection }) => {
        if (connection === "reconnecting") reconnecting = true;
        print({ event: "progress", bytesAcknowledged, connection, at: Date.now() });
      },
    });
    print({ event: "sent", sha256: result.sha256, byteCount: result.byteCount, seconds: seconds(), reconnecting });
  } catch (error) {
    print({ event: "failed", ...describe(error), seconds: seconds() });
    process.exitCode = 1;
  } finally {
    await client.close();
  }
} else {
  const receiver = client.receive(args.destination, args.receiveOptions);
  const stop = (): void => void client.close().finally(() => process.exit(0));
  process.once("SIGTERM", stop);
  await receiver.ready;
  print({ event: "ready" });
  // Streams one after another, until stopped: a failed stream must not stop the receiver.
  for await (const stream of receiver) {
    // What saveTo handed to the file, as core reports it: more than the stream's size would be
    // duplicates given to the application.
    let bytesHanded = 0;
    try {
      const saved = await stream.saveTo(args.path, { onProgress: ({ bytesReceived }) => (bytesHanded = bytesReceived), overwrite: true });
      print({ event: "saved", path: saved.path, sha256: await hashFile(saved.path), byteCount: saved.byteCount, bytesHanded, startOffset: saved.startOffset, seconds: seconds() });
    } catch (error) {
      print({ event: "failed", ...describe(error), bytesHanded, seconds: seconds() });
    }
  }
}
