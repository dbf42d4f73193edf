import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { TestApi } from "./conformance-suite";
import { runWorker } from "./end-to-end";
import { writeRandomFile } from "./files";

/** What {@link runFanInTest} measured. */
export interface FanInReport {
  readonly producers: number;
  readonly sizeBytes: number;
  /** From the producers' start to the consumer's last stream verified, in s. */
  readonly seconds: number;
  /** All producers' bytes over {@link seconds}, in MB/s. */
  readonly megabytesPerSecond: number;
  /** Streams the consumer had open at once (handed over, not yet read to the end): 1 when one at a time. */
  readonly mostOpen: number;
  /** How often the bytes the consumer read went from one stream to another: producers − 1 when never interleaved. */
  readonly switches: number;
  /** Producers whose stream the consumer held queued for a while (`SendProgress.queued`). */
  readonly queued: number;
  /** Bytes handed to the consumer beyond the files' sizes (0 unless chunks were delivered twice). */
  readonly duplicateBytes: number;
}

/** Options of {@link runFanInTest}. */
export interface FanInOptions extends Pick<TestApi, "test"> {
  readonly name: string;
  /** Absolute path of an ES module exporting `createTransport(): Transport | Promise<Transport>`. */
  readonly transportModule: string;
  /** @default 20 */
  readonly producers?: number;
  /** Bytes each producer streams. @default 8 MiB */
  readonly sizeBytes?: number;
  /** @default 300000 */
  readonly timeoutMs?: number;
  /** Called with the figures, e.g. to print them. */
  readonly onReport?: (report: FanInReport) => void;
}

interface Received {
  readonly streams: ReadonlyArray<{ name: string; sha256: string; bytesHanded: number }>;
  readonly mostOpen: number;
  readonly switches: number;
}

interface Sent {
  readonly sent: ReadonlyArray<{ name: string; sha256: string; queued: boolean }>;
}

const workerPath = (): string => fileURLToPath(new URL("./fan-in-worker.mjs", import.meta.url));

/**
 * Registers the fan-in test on a real broker: `producers` producers (one process, a client and
 * connection each) stream a generated file of `sizeBytes` each, all at once, to one destination;
 * one consumer process with the default receive options reads them. Every stream must arrive
 * byte-exact, no byte handed twice, **one at a time**: the consumer never has two streams open,
 * never reads the chunks of two interleaved; the others wait queued, their producers told.
 */
export function runFanInTest(options: FanInOptions): void {
  const producers = options.producers ?? 20;
  const sizeBytes = options.sizeBytes ?? 8 * 1024 * 1024;
  options.test(
    `${options.name}: ${producers} producers × ${Math.round(sizeBytes / 1024 / 1024)} MiB at once into one consumer, each stream whole and one at a time`,
    async () => {
      const dir = await mkdtemp(join(tmpdir(), "stream-fan-in-"));
      try {
        const files = Array.from({ length: producers }, (_, i) => join(dir, `producer-${String(i).padStart(3, "0")}.bin`));
        const expected = new Map<string, string>();
        for (const file of files) expected.set(file.slice(dir.length + 1), await writeRandomFile(file, sizeBytes));
        const destination = `fan-in.${options.name}.${randomUUID().slice(0, 8)}`;
        let ready: () => void = () => {};
        const isReady = new Promise<void>((resolve) => (ready = resolve));
        const receiving = runWorker<Received>(["receive", options.transportModule, destination, String(producers)], (line) => {
          if (line === "ready") ready();
        }, workerPath());
        await Promise.race([isReady, receiving]);
        const started = Date.now();
        const sending = runWorker<Sent>(["send", options.transportModule, destination, ...files], undefined, workerPath());
        const [{ sent }, received] = await Promise.all([sending, receiving]);
        const seconds = (Date.now() - started) / 1000;
        const handed = received.streams.reduce((sum, stream) => sum + stream.bytesHanded, 0);
        const report: FanInReport = {
          producers,
          sizeBytes,
          seconds,
          megabytesPerSecond: (producers * sizeBytes) / 1e6 / seconds,
          mostOpen: received.mostOpen,
          switches: received.switches,
          queued: sent.filter((stream) => stream.queued).length,
          duplicateBytes: handed - producers * sizeBytes,
        };
        options.onReport?.(report);
        assert.equal(received.streams.length, producers);
        for (const stream of received.streams) assert.equal(stream.sha256, expected.get(stream.name), `${stream.name} arrived byte-exact`);
        for (const stream of sent) assert.equal(stream.sha256, expected.get(stream.name), `${stream.name}: its producer hashed the file it was given`);
        assert.equal(new Set(received.streams.map((stream) => stream.name)).size, producers, "every stream once");
        assert.equal(report.duplicateBytes, 0, "no byte handed to the consumer twice");
        assert.equal(received.mostOpen, 1, "one stream open at a time");
        assert.equal(received.switches, producers - 1, "the chunks of two streams never interleaved");
        assert.ok(report.queued > 0, "streams that came while the consumer was busy were queued, their producers told");
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    },
    options.timeoutMs ?? 300_000,
  );
}
