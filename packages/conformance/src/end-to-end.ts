import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { TestApi } from "./conformance-suite";
import { hashFile, writeRandomFile } from "./files";

/** What one end of an end-to-end run reports. */
export interface EndToEndSide {
  readonly sha256: string;
  readonly byteCount: number;
  readonly seconds: number;
  readonly peakRssBytes: number;
}

/** What {@link runEndToEndTest} measured. */
export interface EndToEndReport {
  readonly sizeBytes: number;
  readonly sent: EndToEndSide;
  readonly received: EndToEndSide;
  /** Bytes per second from the sender's start to the receiver's verified end, in MB/s (10^6). */
  readonly megabytesPerSecond: number;
}

/** Options of {@link runEndToEndTest}. */
export interface EndToEndOptions extends Pick<TestApi, "test"> {
  readonly name: string;
  /** Absolute path of an ES module exporting `createTransport(): Transport | Promise<Transport>`. */
  readonly transportModule: string;
  /** @default 256 MiB */
  readonly sizeBytes?: number;
  /** Peak RSS either process may reach. @default 200 MB */
  readonly maxRssBytes?: number;
  /** @default 600000 */
  readonly timeoutMs?: number;
  /** Extra options for the sender's `send` (chunkBytes, windowChunks, ...), as JSON. */
  readonly sendOptions?: Record<string, unknown>;
  /** Called with the figures, e.g. to print them. */
  readonly onReport?: (report: EndToEndReport) => void;
}

const workerPath = (): string => fileURLToPath(new URL("./e2e-worker.mjs", import.meta.url));

/** Runs the worker script in a process of its own; resolves with its last JSON line. */
/** @internal */
export function runWorker<T = EndToEndSide>(args: string[], onLine?: (line: string) => void, script = workerPath()): Promise<T> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [script, ...args], { stdio: ["ignore", "pipe", "pipe"] });
    let stderr = "";
    let last = "";
    let buffered = "";
    child.stdout.setEncoding("utf8").on("data", (text: string) => {
      buffered += text;
      let at: number;
      while ((at = buffered.indexOf("\n")) >= 0) {
        const line = buffered.slice(0, at);
        buffered = buffered.slice(at + 1);
        last = line;
        onLine?.(line);
      }
    });
    child.stderr.setEncoding("utf8").on("data", (text: string) => void (stderr = (stderr + text).slice(-4000)));
    child.on("error", reject);
    child.on("close", (code) => {
      if (code !== 0) reject(new Error(`${args[0]} process exited with ${code}: ${stderr}`));
      else resolve(JSON.parse(last) as T);
    });
  });
}

/**
 * Registers an end-to-end test: a generated file of `sizeBytes` goes from a sender process to a
 * receiver process through the real broker; the SHA-256 of what arrived must equal what was sent
 * and neither process may exceed `maxRssBytes` of resident memory.
 */
export function runEndToEndTest(options: EndToEndOptions): void {
  const sizeBytes = options.sizeBytes ?? 256 * 1024 * 1024;
  const maxRssBytes = options.maxRssBytes ?? 200 * 1000 * 1000;
  const mib = Math.round(sizeBytes / 1024 / 1024);
  options.test(
    `${options.name}: a ${mib} MiB file crosses the broker between two processes byte-exact, memory bounded`,
    async () => {
      const dir = await mkdtemp(join(tmpdir(), "stream-e2e-"));
      try {
        const source = join(dir, "source.bin");
        const target = join(dir, "received.bin");
        const expected = await writeRandomFile(source, sizeBytes);
        const destination = `e2e.${options.name}.${randomUUID().slice(0, 8)}`;
        let ready: () => void = () => {};
        const isReady = new Promise<void>((resolve) => (ready = resolve));
        const receiving = runWorker(["receive", options.transportModule, destination, target], (line) => {
          if (line === "ready") ready();
        });
        await Promise.race([isReady, receiving]);
        const started = Date.now();
        const sending = runWorker(["send", options.transportModule, destination, source, JSON.stringify(options.sendOptions ?? {})]);
        const [sent, received] = await Promise.all([sending, receiving]);
        const seconds = (Date.now() - started) / 1000;
        const report: EndToEndReport = { sizeBytes, sent, received, megabytesPerSecond: sizeBytes / 1e6 / seconds };
        options.onReport?.(report);
        assert.equal(sent.sha256, expected, "the sender hashed the file it was given");
        assert.equal(received.sha256, expected, "what arrived is byte-exact");
        assert.equal(received.byteCount, sizeBytes);
        assert.equal(await hashFile(target), expected, "the file on disk is byte-exact");
        assert.ok(received.peakRssBytes < maxRssBytes, `receiver peak RSS ${received.peakRssBytes} >= ${maxRssBytes}`);
        assert.ok(sent.peakRssBytes < maxRssBytes, `sender peak RSS ${sent.peakRssBytes} >= ${maxRssBytes}`);
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    },
    options.timeoutMs ?? 600_000,
  );
}
