import { createHash, randomFillSync } from "node:crypto";
import { createReadStream } from "node:fs";
import { mkdir, mkdtemp, open, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { createStreamClient, type ReceiveResult, type StreamReceiver } from "@stream/core";
import { createMemoryTransport, MemoryBroker } from "@stream/core/testing";
import { parseCommandArgs, parseSize } from "../args";
import { CliError } from "../cli-errors";
import { ExitCode, type ExitCodeValue } from "../exit-codes";
import { formatBytes, formatRate, megabytesPerSecond } from "../format";
import { DEMO_HELP } from "../help";
import { STATUS_INTERVAL_MS } from "../output";
import { type CommandContext, closeWithin } from "./command-context";

const DEFAULT_SIZE = "256MiB";
const BLOCK_BYTES = 1024 * 1024;
const DESTINATION = "demo";

/** Writes `sizeBytes` of random bytes to `path`; resolves with their SHA-256. */
async function generateFile(path: string, sizeBytes: number): Promise<string> {
  const hash = createHash("sha256");
  const block = Buffer.allocUnsafe(BLOCK_BYTES);
  const handle = await open(path, "wx");
  try {
    for (let written = 0; written < sizeBytes; ) {
      const piece = block.subarray(0, Math.min(BLOCK_BYTES, sizeBytes - written));
      randomFillSync(piece);
      hash.update(piece);
      await handle.write(piece, 0, piece.byteLength);
      written += piece.byteLength;
    }
  } finally {
    await handle.close();
  }
  return hash.digest("hex");
}

/** SHA-256 of a file as it lies on disk, read afresh. */
async function hashFile(path: string): Promise<string> {
  const hash = createHash("sha256");
  for await (const chunk of createReadStream(path, { highWaterMark: BLOCK_BYTES })) hash.update(chunk as Buffer);
  return hash.digest("hex");
}

/** The first stream the receiver yields, saved into `dir`: where it went, and what was verified. */
async function receiveFirst(receiver: StreamReceiver, dir: string): Promise<{ path: string; result: ReceiveResult }> {
  for await (const stream of receiver) {
    const { path } = await stream.saveTo(dir);
    return { path, result: await stream.result };
  }
  throw new Error("[stream] [cli] the demo receiver closed before the stream arrived");
}

/**
 * `stream demo`: the whole path of a real transfer (chunking, CRC-32 per chunk, ack window,
 * SHA-256, temp file and rename) through an in-process transport, with no broker to set up.
 */
export async function demoCommand(args: string[], context: CommandContext): Promise<ExitCodeValue> {
  const { values } = parseCommandArgs(
    "demo",
    args,
    { size: { type: "string" }, keep: { type: "boolean" }, json: { type: "boolean" }, help: { type: "boolean", short: "h" } },
    false,
  );
  if (values.help) {
    context.stdout.write(DEMO_HELP);
    return ExitCode.Ok;
  }
  const { output } = context;
  const sizeBytes = parseSize(values.size ?? DEFAULT_SIZE, "--size");
  const dir = await mkdtemp(join(tmpdir(), "stream-demo-"));
  const sourcePath = join(dir, `demo-${sizeBytes}.bin`);
  const outDir = join(dir, "received");
  // Sender and receiver have a transport each on one in-process broker, as two processes would.
  const broker = new MemoryBroker();
  const receiving = createStreamClient({ transport: createMemoryTransport({ broker }) });
  const sending = createStreamClient({ transport: createMemoryTransport({ broker }) });
  try {
    await mkdir(outDir);
    output.note(`generating ${formatBytes(sizeBytes)} of random data in ${sourcePath}`);
    const sourceSha256 = await generateFile(sourcePath, sizeBytes);

    const receiver = receiving.receive(DESTINATION, { signal: context.signal });
    const received = receiveFirst(receiver, outDir);
    received.catch(() => {});
    await receiver.ready;

    output.emit({ event: "start", command: "demo", transport: "memory", name: `demo-${sizeBytes}.bin`, sizeBytes, path: sourcePath });
    output.note(`streaming it through the in-process memory transport (no broker)`);
    const view = output.transfer({ id: "demo", label: `demo-${sizeBytes}.bin`, totalBytes: sizeBytes });
    const startedAt = performance.now();
    let sent;
    let saved;
    try {
      sent = await sending.send(sourcePath, {
        destination: DESTINATION,
        signal: context.signal,
        statusIntervalMs: STATUS_INTERVAL_MS,
        onStatus: (status) => view.update(status),
      });
      saved = await received;
    } catch (error) {
      view.finish();
      if (context.signal.aborted) throw new CliError("stopped", ExitCode.Interrupted, "", { cause: error });
      throw error;
    }
    const seconds = (performance.now() - startedAt) / 1000;
    view.finish();
    const fileSha256 = await hashFile(saved.path);
    const peakRssBytes = process.resourceUsage().maxRSS * 1024;
    const rate = megabytesPerSecond(sent.byteCount, seconds);
    const hashes = { source: sourceSha256, sent: sent.sha256, received: saved.result.sha256, written: fileSha256 };
    const match = new Set(Object.values(hashes)).size === 1 && saved.result.byteCount === sizeBytes;

    output.emit({
      event: "done",
      command: "demo",
      bytes: sent.byteCount,
      chunks: sent.chunkCount,
      chunkBytes: sent.manifest.chunkBytes,
      seconds: Math.round(seconds * 1000) / 1000,
      megabytesPerSecond: Math.round(rate * 10) / 10,
      peakRssBytes,
      sha256: hashes,
      match,
      ...(values.keep ? { path: saved.path } : {}),
    });
    output.note(
      [
        `  source file    sha256 ${hashes.source}`,
        `  sent           sha256 ${hashes.sent}`,
        `  received       sha256 ${hashes.received}  (verified by the receiver)`,
        `  written file   sha256 ${hashes.written}`,
        `  ${formatBytes(sent.byteCount)} in ${seconds.toFixed(2)} s: ${formatRate(rate * 1e6)}, ${sent.chunkCount} chunks of ${formatBytes(sent.manifest.chunkBytes)}, peak RSS ${formatBytes(peakRssBytes)}`,
        match ? "OK: all four SHA-256 match" : "MISMATCH: the SHA-256 values differ",
        ...(values.keep ? [`  kept: ${dir}`] : []),
      ].join("\n"),
    );
    if (!match) {
      throw new CliError("the demo's SHA-256 values differ", ExitCode.IntegrityMismatch, "this is a bug in @stream/core or the CLI; please report it with the output above");
    }
    return ExitCode.Ok;
  } finally {
    await closeWithin(() => sending.close());
    await closeWithin(() => receiving.close());
    if (!values.keep) await rm(dir, { recursive: true, force: true });
  }
}
