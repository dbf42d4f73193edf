import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import { mkdir, mkdtemp, readdir, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { TestApi } from "./conformance-suite";
import { runWorker } from "./end-to-end";
import { hashFile, writeRandomFile } from "./files";

/** A receiver's policy for a stream taken over (`ReceiveOptions.takeover`). */
export type TakeoverPolicy = "continue" | "restart" | "discard";

/** What {@link runTakeoverTest} measured. */
export interface TakeoverReport {
  /** The second receiver's policy. */
  readonly policy: TakeoverPolicy;
  /** What the sender sent: the file's path, or a `Readable` of it. */
  readonly source: "file" | "readable";
  readonly sizeBytes: number;
  /** Bytes the first receiver had saved when it was killed (its last progress line). */
  readonly killedAtBytes: number;
  /** Length of the partial file the first receiver left. */
  readonly partialBytes: number;
  /** Where the second receiver started: the partial file cut to whole chunks. */
  readonly startOffset: number;
  /** Bytes the second receiver was handed: `sizeBytes − startOffset` when none came twice. */
  readonly bytesHanded: number;
  /** From the SIGKILL to the second receiver's first byte saved, in ms. */
  readonly takeoverMs: number;
  /** From the sender's start to its send resolving, in s. */
  readonly sendSeconds: number;
}

/** Options of {@link runTakeoverTest}. */
export interface TakeoverOptions extends Pick<TestApi, "test"> {
  readonly name: string;
  /** Absolute path of an ES module exporting `createTransport(): Transport | Promise<Transport>`. */
  readonly transportModule: string;
  /** @default 128 MiB */
  readonly sizeBytes?: number;
  /** @default 300000 */
  readonly timeoutMs?: number;
  /** Extra options for the sender's `send`, as JSON. */
  readonly sendOptions?: Record<string, unknown>;
  /**
   * What the sender sends, one test each: the file's path (`"file"`, read again from wherever the
   * second receiver starts) and a `Readable` of it (`"readable"`, which can serve the second
   * receiver only from its window). @default ["file", "readable"]
   */
  readonly sources?: ReadonlyArray<"file" | "readable">;
  /**
   * The second receiver's policies tried besides `"continue"` (run for every source above), each
   * with a file as the source and `otherPoliciesSizeBytes`: `"restart"` (saved from byte 0, the
   * partial file removed) and `"discard"` (refused: the sender fails with `StreamRefusedError`,
   * the receiver emits `'takeoverDiscarded'`). @default ["restart", "discard"]
   */
  readonly otherPolicies?: ReadonlyArray<"restart" | "discard">;
  /** @default 32 MiB */
  readonly otherPoliciesSizeBytes?: number;
  /** Called with the figures, e.g. to print them. */
  readonly onReport?: (report: TakeoverReport) => void;
}

const workerPath = (): string => fileURLToPath(new URL("./takeover-worker.mjs", import.meta.url));

interface ReceiverLine {
  readonly event: "progress" | "saved" | "discarded";
  readonly at: number;
  readonly bytesReceived?: number;
  readonly startOffset: number;
  readonly chunkBytes?: number;
  readonly takeover: boolean;
  readonly sha256?: string;
  readonly path?: string;
  readonly bytesHanded?: number;
}

/** A receiver process; `lines` has every JSON line it printed. */
function startReceiver(args: string[], onLine: (line: ReceiverLine) => void) {
  const child: ChildProcess = spawn(process.execPath, [workerPath(), ...args], { stdio: ["ignore", "pipe", "pipe"] });
  let stderr = "";
  let buffered = "";
  let ready: () => void = () => {};
  const isReady = new Promise<void>((resolve) => (ready = resolve));
  child.stdout?.setEncoding("utf8").on("data", (text: string) => {
    buffered += text;
    let at: number;
    while ((at = buffered.indexOf("\n")) >= 0) {
      const line = buffered.slice(0, at);
      buffered = buffered.slice(at + 1);
      if (line === "ready") ready();
      else if (line.startsWith("{")) onLine(JSON.parse(line) as ReceiverLine);
    }
  });
  child.stderr?.setEncoding("utf8").on("data", (text: string) => void (stderr = (stderr + text).slice(-4000)));
  const exited = new Promise<number | null>((resolve, reject) => {
    child.on("error", reject);
    child.on("close", (code, signal) => resolve(signal ? null : code));
  });
  return { child, isReady, exited, stderr: () => stderr };
}

/**
 * Registers a failure test on a real broker: a receiver **process** saving a generated file of
 * `sizeBytes` into a folder is SIGKILLed at half way; a second receiver process is started on
 * the same destination and folder. The sender (a third process, default options but
 * `sendOptions`) must finish; the second receiver must have taken the stream over, continued the
 * dead receiver's partial file from its last whole chunk (no byte handed twice), and saved a file
 * whose SHA-256 is the source's, leaving no partial file behind.
 */
export function runTakeoverTest(options: TakeoverOptions): void {
  for (const source of options.sources ?? ["file", "readable"]) registerTakeoverTest(options, source, "continue", options.sizeBytes ?? 128 * 1024 * 1024);
  for (const policy of options.otherPolicies ?? ["restart", "discard"]) {
    registerTakeoverTest(options, "file", policy, options.otherPoliciesSizeBytes ?? 32 * 1024 * 1024);
  }
}

const OUTCOMES: Readonly<Record<TakeoverPolicy, string>> = {
  continue: "a second one takes the stream over from the partial file",
  restart: 'a second one with takeover "restart" saves it from byte 0 and removes the partial file',
  discard: 'a second one with takeover "discard" refuses it, and the sender is told',
};

function registerTakeoverTest(options: TakeoverOptions, sourceKind: "file" | "readable", policy: TakeoverPolicy, sizeBytes: number): void {
  const mib = Math.round(sizeBytes / 1024 / 1024);
  options.test(
    `${options.name}: a receiver process killed half way through a ${mib} MiB ${sourceKind === "readable" ? "Readable" : "file"}; ${OUTCOMES[policy]}`,
    async () => {
      const dir = await mkdtemp(join(tmpdir(), "stream-takeover-"));
      const children: ChildProcess[] = [];
      try {
        const source = join(dir, "source.bin");
        const folder = join(dir, "inbox");
        await mkdir(folder);
        const expected = await writeRandomFile(source, sizeBytes);
        const destination = `takeover.${options.name}.${randomUUID().slice(0, 8)}`;
        const receiverArgs = ["receive", options.transportModule, destination, folder];

        let killedAt = 0;
        let killedAtBytes = 0;
        let chunkBytes = 0;
        let killed: () => void = () => {};
        const isKilled = new Promise<void>((resolve) => (killed = resolve));
        const first = startReceiver(receiverArgs, (line) => {
          if (line.event !== "progress" || killedAt) return;
          chunkBytes = line.chunkBytes ?? chunkBytes;
          killedAtBytes = line.bytesReceived ?? 0;
          if (killedAtBytes >= sizeBytes / 2) {
            first.child.kill("SIGKILL");
            killedAt = Date.now();
            killed();
          }
        });
        children.push(first.child);
        await Promise.race([first.isReady, first.exited.then((code) => assert.fail(`the first receiver exited (${code}): ${first.stderr()}`))]);

        const started = Date.now();
        const sendArgs = [options.transportModule, destination, source, JSON.stringify(options.sendOptions ?? {})];
        const sending = sourceKind === "readable" ? runWorker(["send-readable", ...sendArgs], undefined, workerPath()) : runWorker(["send", ...sendArgs]);
        sending.catch(() => {});
        await Promise.race([
          isKilled,
          first.exited.then((code) => assert.fail(`the first receiver ended (${code}) before half way: ${first.stderr()}`)),
          sending.then(() => assert.fail("the send ended before the first receiver was killed")),
        ]);
        await first.exited;
        const left = (await readdir(folder)).filter((name) => name.endsWith(".partial"));
        assert.equal(left.length, 1, `the killed receiver left one partial file (${left.join(", ")})`);
        const partialBytes = (await stat(join(folder, left[0] as string))).size;
        const kept = Math.floor(Math.min(partialBytes, sizeBytes) / chunkBytes) * chunkBytes;

        let firstByteAt = 0;
        let discardedAt = 0;
        let saved: ReceiverLine | undefined;
        let startOffset: number | undefined;
        const second = startReceiver(policy === "continue" ? receiverArgs : [...receiverArgs, JSON.stringify({ takeover: policy })], (line) => {
          if (line.event === "progress" && !firstByteAt) {
            firstByteAt = line.at;
            startOffset = line.startOffset;
          }
          if (line.event === "saved") saved = line;
          if (line.event === "discarded") discardedAt = line.at;
        });
        children.push(second.child);
        if (policy === "discard") {
          const [refusal, code] = await Promise.all([sending.then(() => undefined, (error: unknown) => error as Error), second.exited]);
          assert.equal(code, 0, `the second receiver exited with ${code}: ${second.stderr()}`);
          assert.ok(discardedAt > 0, "the second receiver discarded the stream taken over ('takeoverDiscarded')");
          assert.match(String(refusal?.message), /discards streams whose first receiver died/, "the sender was refused with the reason");
          assert.equal(saved, undefined, "nothing was saved");
          options.onReport?.({ policy, source: sourceKind, sizeBytes, killedAtBytes, partialBytes, startOffset: 0, bytesHanded: 0, takeoverMs: discardedAt - killedAt, sendSeconds: (Date.now() - started) / 1000 });
          return;
        }
        const [sent, code] = await Promise.all([sending, second.exited]);
        const sendSeconds = (Date.now() - started) / 1000;
        assert.equal(code, 0, `the second receiver exited with ${code}: ${second.stderr()}`);
        assert.ok(saved, "the second receiver saved the stream");
        const report: TakeoverReport = {
          policy,
          source: sourceKind,
          sizeBytes,
          killedAtBytes,
          partialBytes,
          startOffset: saved.startOffset,
          bytesHanded: saved.bytesHanded ?? -1,
          takeoverMs: firstByteAt - killedAt,
          sendSeconds,
        };
        options.onReport?.(report);
        assert.equal(sent.sha256, expected, "the sender hashed the file it was given");
        assert.ok(saved.takeover, "the second receiver got the stream as a takeover");
        assert.equal(saved.sha256, expected, "the second receiver verified the whole stream");
        assert.equal(await hashFile(saved.path as string), expected, "the saved file is byte-exact");
        const from = policy === "continue" ? kept : 0;
        assert.equal(saved.startOffset, from, policy === "continue" ? "the second receiver started where the partial file was cut to whole chunks" : "the second receiver started from byte 0");
        assert.equal(startOffset, from, "its first byte saved was at that offset");
        assert.equal(saved.bytesHanded, sizeBytes - from, "no byte was handed to the second receiver twice, none skipped");
        assert.deepEqual((await readdir(folder)).filter((name) => name.endsWith(".partial")), [], "no partial file is left");
      } finally {
        for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
        await rm(dir, { recursive: true, force: true });
      }
    },
    options.timeoutMs ?? 300_000,
  );
}
