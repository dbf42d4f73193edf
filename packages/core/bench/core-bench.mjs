#!/usr/bin/env node
// pnpm bench:core [--size 1GiB] [--rounds 3]
// Streams a file through sender and receiver over the in-memory transport (SHA-256 and CRC-32 on
// both sides, the receiver writing a copy to disk) beside a plain copy + SHA-256 of the same
// bytes, alternating, each run in a process of its own so peak RSS is its own.
import { spawnSync } from "node:child_process";
import { createHash, randomFillSync } from "node:crypto";
import { createReadStream, createWriteStream, existsSync, readFileSync, statSync } from "node:fs";
import { mkdir, rm } from "node:fs/promises";
import { tmpdir, cpus, totalmem } from "node:os";
import { join } from "node:path";
import { pipeline } from "node:stream/promises";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

const MiB = 1024 * 1024;
const { values } = parseArgs({
  options: {
    size: { type: "string", default: "1GiB" },
    rounds: { type: "string", default: "3" },
    run: { type: "string" },
    file: { type: "string" },
  },
});

function parseSize(text) {
  const match = /^(\d+(?:\.\d+)?)\s*(B|KiB|MiB|GiB)?$/i.exec(text);
  if (!match) throw new Error(`--size ${text}: use e.g. 256MiB or 1GiB`);
  const unit = { b: 1, kib: 1024, mib: MiB, gib: 1024 * MiB }[(match[2] ?? "B").toLowerCase()];
  return Math.round(Number(match[1]) * unit);
}

// VmHWM: this process's own peak (getrusage's maxRSS survives exec and would report the parent's).
const peakRss = () => Number(/^VmHWM:\s+(\d+) kB$/m.exec(readFileSync("/proc/self/status", "utf8"))?.[1] ?? process.resourceUsage().maxRSS) * 1024;

async function copyAndHash(file, out) {
  const hash = createHash("sha256");
  await pipeline(
    createReadStream(file, { highWaterMark: MiB }),
    async function* (source) {
      for await (const chunk of source) {
        hash.update(chunk);
        yield chunk;
      }
    },
    createWriteStream(out, { highWaterMark: MiB }),
  );
  return hash.digest("hex");
}

async function throughStream(file, out) {
  const { createStreamClient } = await import("../dist/index.mjs");
  const { createMemoryTransport, MemoryBroker } = await import("../dist/testing.mjs");
  const broker = new MemoryBroker();
  const sender = createStreamClient({ transport: createMemoryTransport({ broker }) });
  const receiver = createStreamClient({ transport: createMemoryTransport({ broker }) });
  const streams = receiver.receive("bench");
  await streams.ready;
  const received = (async () => {
    for await (const stream of streams) {
      await pipeline(stream, createWriteStream(out, { highWaterMark: MiB }));
      return (await stream.result).sha256;
    }
  })();
  const sent = await sender.send(file, { destination: "bench" });
  const got = await received;
  await Promise.all([sender.close(), receiver.close()]);
  if (got !== sent.sha256) throw new Error(`SHA-256 mismatch: sent ${sent.sha256}, received ${got}`);
  return got;
}

if (values.run) {
  // A child: one measured run.
  const out = `${values.file}.${values.run}.out`;
  const started = process.hrtime.bigint();
  const sha256 = values.run === "baseline" ? await copyAndHash(values.file, out) : await throughStream(values.file, out);
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  const cpu = process.cpuUsage();
  await rm(out, { force: true });
  console.log(JSON.stringify({ sha256, seconds, peakRssBytes: peakRss(), cpuSeconds: (cpu.user + cpu.system) / 1e6 }));
  process.exit(0);
}

const sizeBytes = parseSize(values.size);
const dir = join(tmpdir(), "stream-bench-core");
await mkdir(dir, { recursive: true });
const file = join(dir, `input-${sizeBytes}.bin`);
if (!existsSync(file) || statSync(file).size !== sizeBytes) {
  process.stderr.write(`generating ${sizeBytes} bytes in ${file}\n`);
  const block = Buffer.alloc(MiB);
  const out = createWriteStream(file);
  for (let written = 0; written < sizeBytes; written += MiB) {
    randomFillSync(block);
    const piece = Buffer.from(block.subarray(0, Math.min(MiB, sizeBytes - written)));
    if (!out.write(piece)) await new Promise((resolve) => out.once("drain", resolve));
  }
  await new Promise((resolve) => out.end(resolve));
}

const self = fileURLToPath(import.meta.url);
const measure = (run) => {
  const child = spawnSync(process.execPath, [self, "--run", run, "--file", file], { encoding: "utf8", maxBuffer: 1 << 20 });
  if (child.status !== 0) throw new Error(`${run} failed: ${child.stderr}`);
  return JSON.parse(child.stdout.trim().split("\n").pop());
};
const runs = { baseline: [], stream: [] };
for (let round = 0; round < Number(values.rounds); round++) {
  for (const run of ["baseline", "stream"]) {
    const result = measure(run);
    runs[run].push(result);
    process.stderr.write(`round ${round + 1} ${run.padEnd(8)} ${(sizeBytes / 1e6 / result.seconds).toFixed(0)} MB/s, peak RSS ${(result.peakRssBytes / 1e6).toFixed(0)} MB\n`);
  }
}
// The median run of each: the baseline's speed swings with the page cache's writeback.
const median = (list) => [...list].sort((a, b) => a.seconds - b.seconds)[Math.floor((list.length - 1) / 2)];
const baseline = median(runs.baseline);
const ours = median(runs.stream);
if (baseline.sha256 !== ours.sha256) throw new Error("the stream's SHA-256 differs from the file's");
const mbps = (r) => sizeBytes / 1e6 / r.seconds;
const summary = {
  date: new Date().toISOString().slice(0, 10),
  machine: `${cpus().length} cores, ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.versions.node}`,
  sizeBytes,
  baselineMBps: Math.round(mbps(baseline)),
  streamMBps: Math.round(mbps(ours)),
  ratio: Number((mbps(ours) / mbps(baseline)).toFixed(2)),
  streamPeakRssMB: Math.round(ours.peakRssBytes / 1e6),
  baselinePeakRssMB: Math.round(baseline.peakRssBytes / 1e6),
  streamCpuSeconds: Number(ours.cpuSeconds.toFixed(2)),
  baselineCpuSeconds: Number(baseline.cpuSeconds.toFixed(2)),
};
console.log(`| file | copy + SHA-256 | @stream/core (memory transport) | ratio | peak RSS @stream | CPU s @stream / copy |`);
console.log(`|---|---|---|---|---|---|`);
console.log(`| ${(sizeBytes / 2 ** 30).toFixed(2)} GiB | ${summary.baselineMBps} MB/s | ${summary.streamMBps} MB/s | ${summary.ratio}x | ${summary.streamPeakRssMB} MB | ${summary.streamCpuSeconds} / ${summary.baselineCpuSeconds} |`);
console.log(JSON.stringify(summary));
