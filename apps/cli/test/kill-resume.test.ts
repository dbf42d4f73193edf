import { mkdtemp, open, readdir, rm, stat, utimes } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type BrokerUnderTest, selectedBrokers } from "./brokers";
import { freshDestination, parseEvents, randomFile, run, sha256File, start } from "./cli-process";

// Issue 10: a sender or a receiver SIGKILLed half way, on real brokers, each side its own process.
// 64 MiB in chunks of 256 KiB, a window of 4 (1 MiB): half way is 32 windows in.
const SIZE = 64 * 1024 * 1024;
const CHUNK = 256 * 1024;
const WINDOW_CHUNKS = 4;
const WINDOW_BYTES = WINDOW_CHUNKS * CHUNK;
/** How often core brings a send's journal entry up to date (packages/core/src/journaled-send.ts). */
const JOURNAL_EVERY_MS = 1000;
const FLOW = ["--chunk-bytes", "256KiB", "--window", String(WINDOW_CHUNKS), "--json"];

let dir: string;
let source: string;
let sourceSha256: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "stream-cli-kill-"));
  source = join(dir, "movie.bin");
  sourceSha256 = await randomFile(source, SIZE);
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** The temporary files a receiver writes into `out` until a stream is verified. */
async function partialFiles(out: string): Promise<string[]> {
  return (await readdir(out)).filter((name) => name.endsWith(".partial"));
}

/** A journal of its own for each test: `stream ls` sees that test's sends only. */
async function privateState(): Promise<NodeJS.ProcessEnv> {
  return { STREAM_STATE_DIR: await mkdtemp(join(dir, "state-")) };
}

describe.each(selectedBrokers())("a process SIGKILLed half way through $name", (broker) => {
  it("the sender: `stream ls` lists the send, `stream resume <id>` completes it sending at most one window again, `ls` is then empty", async () => {
    const destination = freshDestination(`${broker.key}-kill-send`);
    const env = await privateState();
    const out = await mkdtemp(join(dir, `${broker.key}-send-`));
    const receiver = start(["receive", "--broker", broker.url, "--dest", destination, "--out", out, "--json"], env);
    const sender = start(["send", source, "--broker", broker.url, "--dest", destination, ...FLOW], env);
    try {
      await receiver.waitForEvent("listening");
      const { streamId } = await sender.waitForEvent("start");
      const startedAt = Date.now();
      await sender.waitFor("half the file acknowledged", (event) => event.event === "progress" && Number(event.bytes) >= SIZE / 2, 90_000);
      // The journal is brought up to date once a second: on a fast broker, half way comes sooner.
      await new Promise((resolve) => setTimeout(resolve, JOURNAL_EVERY_MS + 200 - (Date.now() - startedAt)));
      sender.child.kill("SIGKILL");
      const killed = await sender.finished;
      expect(killed.code).toBeNull();
      const acknowledgedAtKill = Math.max(...parseEvents(killed.stdout).map((event) => (event.event === "progress" ? Number(event.bytes) : 0)));

      // One state folder for both ends here: the receive is journaled too (its partial file).
      const listed = parseEvents((await run(["ls", "--json"], env)).stdout).filter((event) => event.direction === "send");
      expect(listed).toEqual([
        expect.objectContaining({ event: "transfer", id: streamId, direction: "send", name: "movie.bin", sizeBytes: SIZE, broker: broker.url, destination }),
      ]);
      const acknowledged = Number(listed[0]?.bytesDone);
      expect(acknowledged).toBeGreaterThan(0);
      expect(acknowledged).toBeLessThan(SIZE);

      const resumed = await run(["resume", String(streamId), "--json"], env);
      expect(resumed.code, resumed.stderr).toBe(0);
      const events = parseEvents(resumed.stdout);
      expect(events[0]).toMatchObject({ event: "resume", streamId, acknowledgedBytes: acknowledged });
      const done = events.at(-1) ?? {};
      expect(done).toMatchObject({ event: "done", streamId, bytes: SIZE, sha256: sourceSha256 });
      // The receiver continued its partial file, which holds at least what it had acknowledged.
      const startOffset = Number(done.startOffset);
      expect(startOffset).toBeGreaterThanOrEqual(Math.max(acknowledged, acknowledgedAtKill));
      expect(startOffset).toBeLessThan(SIZE);
      // What the killed sender had in flight beyond that is sent again, at most one window.
      expect(Number(done.bytesPublished)).toBeGreaterThanOrEqual(SIZE - startOffset);
      expect(Number(done.bytesPublished)).toBeLessThanOrEqual(SIZE - startOffset + WINDOW_BYTES);

      const received = await receiver.waitFor("the resumed stream saved", (event) => event.event === "done" && event.streamId === streamId, 60_000);
      expect(received).toMatchObject({ startOffset, sha256: sourceSha256, path: join(out, "movie.bin") });
      expect(await sha256File(join(out, "movie.bin"))).toBe(sourceSha256);
      expect(await partialFiles(out)).toEqual([]);
      expect(parseEvents((await run(["ls", "--json"], env)).stdout)).toEqual([]);
      receiver.child.kill("SIGTERM");
      expect((await receiver.finished).code).toBe(0);
    } finally {
      sender.child.kill("SIGKILL");
      receiver.child.kill("SIGKILL");
      await broker.cleanUp(destination).catch(() => {});
    }
  }, 150_000);

  it("the receiver: a new `stream receive` on the same --out continues the partial file when the sender offers the stream again", async () => {
    const destination = freshDestination(`${broker.key}-kill-receive`);
    const env = await privateState();
    const out = await mkdtemp(join(dir, `${broker.key}-receive-`));
    const first = start(["receive", "--broker", broker.url, "--dest", destination, "--out", out, "--once", "--json"], env);
    let second: ReturnType<typeof start> | undefined;
    let sender: ReturnType<typeof start> | undefined;
    try {
      await first.waitForEvent("listening");
      sender = start(["send", source, "--broker", broker.url, "--dest", destination, ...FLOW], env);
      await first.waitFor("half the file received", (event) => event.event === "progress" && Number(event.bytes) >= SIZE / 2, 90_000);
      first.child.kill("SIGKILL");
      expect((await first.finished).code).toBeNull();
      const [partial] = await partialFiles(out);
      expect(partial).toBeDefined();
      const kept = (await stat(join(out, partial as string))).size;
      expect(kept).toBeGreaterThan(0);

      // The sender offers the stream again after 3 s without a word (its takeoverAfterMs).
      second = start(["receive", "--broker", broker.url, "--dest", destination, "--out", out, "--once", "--json"], env);
      const received = await second.finished;
      expect(received.code, received.stderr).toBe(0);
      const done = parseEvents(received.stdout).at(-1) ?? {};
      expect(done).toMatchObject({ event: "done", bytes: SIZE, sha256: sourceSha256, path: join(out, "movie.bin") });
      expect(Number(done.startOffset)).toBeGreaterThan(0);
      expect(Number(done.startOffset)).toBeLessThanOrEqual(kept);

      const sent = await sender.finished;
      expect(sent.code, sent.stderr).toBe(0);
      expect(parseEvents(sent.stdout).at(-1)).toMatchObject({ event: "done", sha256: sourceSha256 });
      expect(await sha256File(join(out, "movie.bin"))).toBe(sourceSha256);
      expect(await readdir(out)).toEqual(["movie.bin"]);
    } finally {
      for (const child of [first, second, sender]) child?.child.kill("SIGKILL");
      await broker.cleanUp(destination).catch(() => {});
    }
  }, 150_000);
});

const firstBroker = selectedBrokers()[0];
describe.runIf(firstBroker)("`stream resume` of a file changed since its send was killed", () => {
  it(`is refused with exit 10 (SOURCE_CHANGED), saying why and what to do, and keeps the entry (${firstBroker?.name})`, async () => {
    const broker = firstBroker as BrokerUnderTest;
    const destination = freshDestination(`${broker.key}-changed`);
    const env = await privateState();
    const out = await mkdtemp(join(dir, `${broker.key}-changed-`));
    const file = join(dir, "changing.bin");
    await randomFile(file, 8 * 1024 * 1024);
    const receiver = start(["receive", "--broker", broker.url, "--dest", destination, "--out", out, "--json"], env);
    const sender = start(["send", file, "--broker", broker.url, "--dest", destination, ...FLOW], env);
    try {
      await receiver.waitForEvent("listening");
      const { streamId } = await sender.waitForEvent("start");
      await sender.waitFor("a quarter acknowledged", (event) => event.event === "progress" && Number(event.bytes) >= 2 * 1024 * 1024, 60_000);
      sender.child.kill("SIGKILL");
      await sender.finished;
      // Same size, another modification time: the resume cannot tell the bytes are the same.
      const later = new Date(Date.now() + 5000);
      await utimes(file, later, later);

      const refused = await run(["resume", String(streamId), "--json"], env);
      expect(refused.code).toBe(10);
      const error = parseEvents(refused.stdout).at(-1);
      expect(error).toMatchObject({ event: "error", code: "SOURCE_CHANGED", exitCode: 10 });
      expect(String(error?.message)).toContain(`${file} changed since the send was interrupted`);
      expect(String(error?.hint)).toContain(`send ${file} again`);
      expect(parseEvents((await run(["ls", "--json"], env)).stdout).filter((event) => event.direction === "send")).toEqual([expect.objectContaining({ id: streamId })]);
    } finally {
      sender.child.kill("SIGKILL");
      receiver.child.kill("SIGKILL");
      await broker.cleanUp(destination).catch(() => {});
    }
  }, 120_000);
});

describe.runIf(firstBroker)("`stream resume <id>` of a receive whose process was SIGKILLed", () => {
  it(`checks the partial file against the journal: a byte flipped in it is reported (partial-mismatch) and not continued; the file saved is exact (${firstBroker?.name})`, async () => {
    const broker = firstBroker as BrokerUnderTest;
    const destination = freshDestination(`${broker.key}-kill-mismatch`);
    // Each side its own journal, as on two machines.
    const receiverEnv = await privateState();
    const senderEnv = await privateState();
    const out = await mkdtemp(join(dir, `${broker.key}-mismatch-`));
    const first = start(["receive", "--broker", broker.url, "--dest", destination, "--out", out, "--once", "--json"], receiverEnv);
    let sender: ReturnType<typeof start> | undefined;
    try {
      await first.waitForEvent("listening");
      sender = start(["send", source, "--broker", broker.url, "--dest", destination, ...FLOW], senderEnv);
      // The journal takes a checkpoint at a write a second or more after the last: the sender is
      // held (SIGSTOP) for that second, let go for a few more chunks, and held again, so the
      // receiver dies half way with a checkpoint journaled, however fast the broker is.
      await first.waitFor("a few chunks received", (event) => event.event === "progress" && Number(event.bytes) >= 4 * 1024 * 1024, 90_000);
      sender.child.kill("SIGSTOP");
      await new Promise((resolve) => setTimeout(resolve, 1200));
      sender.child.kill("SIGCONT");
      // Past what can have come in before the hold (a progress event is up to 250 ms old), about half way.
      await first.waitFor("nearly half the file received", (event) => event.event === "progress" && Number(event.bytes) >= (SIZE * 7) / 16, 60_000);
      sender.child.kill("SIGSTOP");
      for (let tries = 0; ; tries++) {
        const [listed] = parseEvents((await run(["ls", "--json"], receiverEnv)).stdout);
        if (Number(listed?.bytesDone) > 0) break;
        if (tries > 50) throw new Error("the receive's journal entry never recorded its bytes");
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      first.child.kill("SIGKILL");
      expect((await first.finished).code).toBeNull();
      const [entry] = parseEvents((await run(["ls", "--json"], receiverEnv)).stdout);
      expect(entry).toMatchObject({ event: "transfer", direction: "receive", name: "movie.bin", destination });
      const [partial] = await partialFiles(out);
      const path = join(out, partial as string);
      // A byte of the verified prefix flipped on disk (a bad sector, a hand that should not have).
      const handle = await open(path, "r+");
      const byte = Buffer.alloc(1);
      await handle.read(byte, 0, 1, 1000);
      byte[0] = (byte[0] as number) ^ 0xff;
      await handle.write(byte, 0, 1, 1000);
      await handle.close();
      sender.child.kill("SIGCONT");

      const resumed = await run(["resume", String(entry?.id), "--json"], receiverEnv);
      expect(resumed.code, resumed.stderr).toBe(0);
      const events = parseEvents(resumed.stdout);
      expect(events).toContainEqual(expect.objectContaining({ event: "partial-mismatch", command: "resume" }));
      const done = events.at(-1) ?? {};
      expect(done).toMatchObject({ event: "done", bytes: SIZE, sha256: sourceSha256, path: join(out, "movie.bin") });
      // The flipped byte is before every checkpoint: nothing of the partial file could be kept.
      expect(done.startOffset).toBe(0);
      expect(await sha256File(join(out, "movie.bin"))).toBe(sourceSha256);
      expect((await sender.finished).code).toBe(0);
      expect(parseEvents((await run(["ls", "--json"], receiverEnv)).stdout)).toEqual([]);
    } finally {
      for (const child of [first, sender]) child?.child.kill("SIGKILL");
      await broker.cleanUp(destination).catch(() => {});
    }
  }, 150_000);
});
