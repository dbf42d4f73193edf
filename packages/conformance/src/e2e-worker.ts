/**
 * One end of an end-to-end test, in a process of its own:
 *   e2e-worker send    <transport module> <destination> <file> [send options JSON]
 *   e2e-worker receive <transport module> <destination> <output file>
 * Prints "ready" once receiving, then one JSON line with sha256, byteCount, seconds, peakRssBytes.
 */
import { createWriteStream, readFileSync } from "node:fs";
import { pipeline } from "node:stream/promises";
import { pathToFileURL } from "node:url";
import { createStreamClient, type Transport } from "@stream/core";

const [mode, modulePath, destination, file, extra] = process.argv.slice(2);
if (!mode || !modulePath || !destination || !file) {
  console.error("usage: e2e-worker send|receive <transport module> <destination> <file> [send options JSON]");
  process.exit(2);
}
const { createTransport } = (await import(pathToFileURL(modulePath).href)) as { createTransport: () => Transport | Promise<Transport> };
const client = createStreamClient({ transport: await createTransport() });
const started = Date.now();
/**
 * This process's own peak resident memory. Linux keeps getrusage's maxRSS across exec, so a
 * child would report its parent's peak; VmHWM belongs to this process image alone.
 */
const peakRssBytes = (): number => {
  try {
    const match = /^VmHWM:\s+(\d+) kB$/m.exec(readFileSync("/proc/self/status", "utf8"));
    if (match) return Number(match[1]) * 1024;
  } catch {
    // Not Linux: fall back to getrusage.
  }
  return process.resourceUsage().maxRSS * 1024;
};
try {
  if (mode === "send") {
    const result = await client.send(file, { destination, ...(extra ? JSON.parse(extra) : {}) });
    console.log(JSON.stringify({ sha256: result.sha256, byteCount: result.byteCount, seconds: (Date.now() - started) / 1000, peakRssBytes: peakRssBytes() }));
  } else {
    const receiver = client.receive(destination);
    await receiver.ready;
    console.log("ready");
    for await (const stream of receiver) {
      await pipeline(stream, createWriteStream(file, { highWaterMark: 1024 * 1024 }));
      const result = await stream.result;
      console.log(JSON.stringify({ sha256: result.sha256, byteCount: result.byteCount, seconds: (Date.now() - started) / 1000, peakRssBytes: peakRssBytes() }));
      break;
    }
  }
} finally {
  await client.close();
}
