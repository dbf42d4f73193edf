import { createHash, randomBytes } from "node:crypto";
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { Writable } from "node:stream";
import { createStreamClient, decodeFrame, encodeFrame, type Frame, FrameType, TransferJournal, TransportError } from "@stream/core";
import { createMemoryTransport, MemoryBroker, withFaults } from "@stream/core/testing";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { ModuleImporter } from "./broker-transport";
import { BROKER_URL_FORMS } from "./broker-url";
import { ExitCode } from "./exit-codes";
import { main } from "./main";

/** A stand-in for stdout / stderr that keeps what is written. */
function capture(): NodeJS.WriteStream & { text: () => string } {
  const chunks: Buffer[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      chunks.push(Buffer.from(chunk));
      callback();
    },
  });
  return Object.assign(stream, { text: () => Buffer.concat(chunks).toString("utf8") }) as unknown as NodeJS.WriteStream & { text: () => string };
}

async function run(argv: string[], options: { importer?: ModuleImporter; env?: NodeJS.ProcessEnv; signal?: AbortSignal } = {}) {
  const stdout = capture();
  const stderr = capture();
  // The journal of failed sends goes to the test's folder, not the user's state folder.
  const code = await main(argv, { stdout, stderr, ...options, env: options.env ?? { STREAM_STATE_DIR: join(dir, "state") } });
  return { code, stdout: stdout.text(), stderr: stderr.text() };
}

const events = (stdout: string) =>
  stdout
    .trim()
    .split("\n")
    .filter(Boolean)
    .map((line) => JSON.parse(line) as Record<string, unknown>);

/** An importer whose "RabbitMQ adapter" makes in-memory transports on `broker`. */
const memoryAdapter =
  (broker: MemoryBroker, wrap: (transport: ReturnType<typeof createMemoryTransport>) => unknown = (t) => t): ModuleImporter =>
  async () => ({ createRabbitmqTransport: () => wrap(createMemoryTransport({ broker })) });

/** An importer whose "RabbitMQ adapter" cannot connect, as the adapters report a refused connection. */
const unreachable: ModuleImporter = async () => ({
  createRabbitmqTransport: (options: { url: string }) => {
    const error = new TransportError({
      message: `[stream] [rabbitmq] could not connect to ${options.url}: connect ECONNREFUSED; it may succeed after a reconnect; try again`,
      cause: Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:1"), { code: "ECONNREFUSED" }),
      retryable: true,
    });
    return { ...createMemoryTransport(), subscribe: () => Promise.reject(error), publish: () => Promise.reject(error) };
  },
});

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "stream-cli-main-"));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("stream (in-process)", () => {
  it("prints help, and exits 2 with it when no command is given", async () => {
    const help = await run(["--help"]);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain("stream send <file|->");
    expect((await run(["receive", "--help"])).stdout).toContain("--once");
    const none = await run([]);
    expect(none.code).toBe(ExitCode.Usage);
    expect(none.stderr).toContain("Usage:");
  });

  it.each([
    [["launch"], /unknown command "launch"/],
    [["send", "f"], /--broker <url> is required/],
    [["send", "f", "--broker", "amqp://h", "--dest", "bad name!"], /not a valid destination name/],
    [["send", "--broker", "amqp://h", "--dest", "d"], /needs the file to send/],
    [["send", "nope.bin", "--broker", "amqp://h", "--dest", "d"], /no such file: nope\.bin/],
    [["send", "f", "--broker", "amqp://h", "--dest", "d", "--window", "0"], /--window/],
    [["receive", "--broker", "amqp://h", "--dest", "d", "--out", "-", "--json"], /both want standard output/],
    [["demo", "--size", "lots"], /not a size/],
    [["send", "--frobnicate"], /Unknown option '--frobnicate'/],
  ])("treats %j as a usage error (exit 2)", async (argv, message) => {
    const result = await run(argv);
    expect(result.code).toBe(ExitCode.Usage);
    // With --json the error is an event on stdout; otherwise a message and a hint on stderr.
    const text = result.stderr + result.stdout;
    expect(text).toMatch(message);
    expect(text).toMatch(/what to do:|"hint":"\S/);
  });

  it("reports errors as a JSON event with --json", async () => {
    const result = await run(["send", "x", "--dest", "d", "--json"]);
    expect(result.code).toBe(ExitCode.Usage);
    expect(events(result.stdout)).toEqual([expect.objectContaining({ event: "error", code: "USAGE", exitCode: 2 })]);
  });

  it("sends and receives a file, the receiver keeping the name and not overwriting", async () => {
    const broker = new MemoryBroker();
    const bytes = randomBytes(700_000);
    const file = join(dir, "photo.jpg");
    await writeFile(file, bytes);
    const out = join(dir, "out");
    const { mkdir } = await import("node:fs/promises");
    await mkdir(out);
    await writeFile(join(out, "photo.jpg"), "already here");
    const receiving = run(["receive", "--broker", "amqp://h", "--dest", "files", "--out", out, "--once", "--json"], { importer: memoryAdapter(broker) });
    await new Promise((resolve) => setTimeout(resolve, 50));
    const sent = await run(["send", file, "--broker", "amqp://h", "--dest", "files", "--chunk-bytes", "64KiB", "--json"], { importer: memoryAdapter(broker) });
    const received = await receiving;
    expect(sent.code).toBe(0);
    expect(received.code).toBe(0);
    const sha256 = createHash("sha256").update(bytes).digest("hex");
    expect(events(sent.stdout).at(-1)).toMatchObject({ event: "done", sha256, bytes: bytes.byteLength, chunks: 11 });
    expect(events(received.stdout).map((event) => event.event)).toEqual(expect.arrayContaining(["listening", "start", "done"]));
    expect(events(received.stdout).at(-1)).toMatchObject({ event: "done", sha256, path: join(out, "photo (1).jpg") });
    expect(await readFile(join(out, "photo.jpg"), "utf8")).toBe("already here");
    expect(createHash("sha256").update(await readFile(join(out, "photo (1).jpg"))).digest("hex")).toBe(sha256);
  });

  it("--e2e-key: keygen writes a key file; send and receive with it round-trip; a receiver without it refuses and writes nothing", async () => {
    const broker = new MemoryBroker();
    const keyFile = join(dir, "team.key");
    const keygen = await run(["keygen", "--id", "team"]);
    expect(keygen.code).toBe(0);
    expect(keygen.stdout).toMatch(/^team:[A-Za-z0-9+/]{43}=\n$/);
    await writeFile(keyFile, keygen.stdout);
    const bytes = randomBytes(300_000);
    const file = join(dir, "secret-plans.pdf");
    await writeFile(file, bytes);
    const out = join(dir, "out");
    const withKey = run(["receive", "--broker", "amqp://h", "--dest", "files", "--out", out, "--once", "--e2e-key", keyFile, "--json"], { importer: memoryAdapter(broker) });
    await new Promise((resolve) => setTimeout(resolve, 50));
    const sent = await run(["send", file, "--broker", "amqp://h", "--dest", "files", "--e2e-key", keyFile, "--json"], { importer: memoryAdapter(broker) });
    expect(sent.code).toBe(0);
    expect((await withKey).code).toBe(0);
    expect((await readFile(join(out, "secret-plans.pdf"))).equals(bytes)).toBe(true);
    const bare = join(dir, "bare");
    const stop = new AbortController();
    const state = { STREAM_STATE_DIR: join(dir, "state") };
    const without = run(["receive", "--broker", "amqp://h", "--dest", "other", "--out", bare, "--json"], { importer: memoryAdapter(broker), env: state, signal: stop.signal });
    await new Promise((resolve) => setTimeout(resolve, 50));
    const refused = await run(["send", file, "--broker", "amqp://h", "--dest", "other", "--json"], { importer: memoryAdapter(broker), env: { ...state, STREAM_E2E_KEY: keygen.stdout } });
    expect(refused.code).toBe(ExitCode.StreamAborted);
    expect(refused.stdout).toContain("the receiver has no key team for this end-to-end encrypted stream");
    expect(await readdir(bare)).toEqual([]);
    stop.abort();
    expect((await without).stdout).toContain('"code":"STREAM_E2E_KEY","keyId":"team"');
    const bad = await run(["send", file, "--broker", "amqp://h", "--dest", "files", "--e2e-key", file]);
    expect(bad.code).toBe(ExitCode.Usage);
  });

  it("--compress: bare (zstd) before the file, or naming an algorithm, round-trips; an unknown algorithm is a usage error", async () => {
    const broker = new MemoryBroker();
    const bytes = Buffer.from("line of a log that compresses well\n".repeat(20_000));
    const file = join(dir, "app.log");
    await writeFile(file, bytes);
    const sha256 = createHash("sha256").update(bytes).digest("hex");
    for (const [i, compress] of [["--compress"], ["--compress", "brotli"], ["--compress=deflate"]].entries()) {
      const out = join(dir, `out-${i}`);
      const receiving = run(["receive", "--broker", "amqp://h", "--dest", "files", "--out", out, "--once", "--json"], { importer: memoryAdapter(broker) });
      await new Promise((resolve) => setTimeout(resolve, 50));
      const sent = await run(["send", ...compress, file, "--broker", "amqp://h", "--dest", "files", "--json"], { importer: memoryAdapter(broker) });
      expect(sent.code).toBe(0);
      expect(events(sent.stdout).at(-1)).toMatchObject({ event: "done", sha256 });
      expect((await receiving).code).toBe(0);
      expect((await readFile(join(out, "app.log"))).equals(bytes)).toBe(true);
    }
    const bad = await run(["send", file, "--broker", "amqp://h", "--dest", "files", "--compress", "lz4"]);
    expect(bad.code).toBe(ExitCode.Usage);
    expect(bad.stderr).toContain('--compress "lz4" is not an algorithm');
  });

  it("--transactional: the receiver writes the file only once all of it is verified; two sends at once are taken one at a time, the second told it waits", async () => {
    const broker = new MemoryBroker();
    const files = [join(dir, "first.bin"), join(dir, "second.bin")];
    const payloads = [randomBytes(400_000), randomBytes(300_000)];
    await Promise.all(files.map((file, i) => writeFile(file, payloads[i] as Buffer)));
    const out = join(dir, "out");
    const controller = new AbortController();
    const receiving = run(["receive", "--broker", "amqp://h", "--dest", "files", "--out", out, "--json"], { importer: memoryAdapter(broker), signal: controller.signal });
    await new Promise((resolve) => setTimeout(resolve, 50));
    const sending = files.map((file) => run(["send", file, "--broker", "amqp://h", "--dest", "files", "--chunk-bytes", "64KiB", "--transactional", "--json"], { importer: memoryAdapter(broker) }));
    const sent = await Promise.all(sending);
    controller.abort();
    const received = await receiving;
    expect(sent.map((result) => result.code)).toEqual([0, 0]);
    expect(received.code).toBe(0);
    for (const [i, file] of files.entries()) expect((await readFile(join(out, basename(file)))).equals(payloads[i] as Buffer)).toBe(true);
    const receiverEvents = events(received.stdout).map((event) => event.event);
    // One at a time: the second starts only after the first is done.
    expect(receiverEvents.filter((event) => event === "start" || event === "done")).toEqual(["start", "done", "start", "done"]);
  });

  it("receive, on start, removes the partial files dead receivers left long ago and keeps recent ones, saying so", async () => {
    const out = join(dir, "out");
    const { mkdir, utimes } = await import("node:fs/promises");
    await mkdir(out);
    const old = `.big.iso.${"0".repeat(8)}-0000-4000-8000-${"0".repeat(12)}.0a1b2c3d.partial`;
    const recent = `.small.txt.${"1".repeat(8)}-1111-4111-8111-${"1".repeat(12)}.4e5f6a7b.partial`;
    await writeFile(join(out, old), "left by a receiver that died an hour ago");
    await writeFile(join(out, recent), "left a minute ago");
    const hourAgo = new Date(Date.now() - 3_600_000);
    await utimes(join(out, old), hourAgo, hourAgo);
    const controller = new AbortController();
    const receiving = run(["receive", "--broker", "amqp://h", "--dest", "files", "--out", out], { importer: memoryAdapter(new MemoryBroker()), signal: controller.signal });
    await new Promise((resolve) => setTimeout(resolve, 200));
    controller.abort();
    const result = await receiving;
    expect(result.code).toBe(0);
    expect(result.stderr).toContain(`removed 1 partial file(s) left in ${out}`);
    expect(result.stderr).toContain("kept 1 recent partial file(s)");
    expect(await readdir(out)).toEqual([recent]);
  });

  it("a send that failed stays in the journal: `stream ls` lists it, `stream resume <id>` completes it, then it is gone", async () => {
    const broker = new MemoryBroker();
    const env = { STREAM_STATE_DIR: join(dir, "state") };
    const bytes = randomBytes(500_000);
    const file = join(dir, "report.pdf");
    await writeFile(file, bytes);
    // No receiver: withdrawn after 0.3 s.
    const failed = await run(["send", file, "--broker", "amqp://h", "--dest", "files", "--chunk-bytes", "64KiB", "--timeout", "0.3", "--json"], { importer: memoryAdapter(broker), env });
    expect(failed.code).toBe(ExitCode.DestinationMissing);
    const listed = events((await run(["ls", "--json"], { env })).stdout);
    expect(listed).toEqual([expect.objectContaining({ event: "transfer", direction: "send", name: "report.pdf", destination: "files", broker: "amqp://h", sizeBytes: 500_000 })]);
    const id = listed[0]?.id as string;
    expect((await run(["ls"], { env })).stdout).toMatch(new RegExp(`${id}\\s+send\\s+report\\.pdf`));
    const out = join(dir, "out");
    // A receiver that serves: it meets the withdrawn attempt first (discarded), then the resumed one.
    const stop = new AbortController();
    const receiving = run(["receive", "--broker", "amqp://h", "--dest", "files", "--out", out, "--json"], { importer: memoryAdapter(broker), env, signal: stop.signal });
    await new Promise((resolve) => setTimeout(resolve, 50));
    const resumed = await run(["resume", id, "--json"], { importer: memoryAdapter(broker), env });
    expect(resumed.code).toBe(0);
    expect(events(resumed.stdout).at(-1)).toMatchObject({ event: "done", streamId: id, sha256: createHash("sha256").update(bytes).digest("hex") });
    stop.abort();
    expect((await receiving).code).toBe(0);
    expect((await readFile(join(out, "report.pdf"))).equals(bytes)).toBe(true);
    expect((await run(["ls"], { env })).stdout).toContain("no unfinished transfers");
    const unknown = await run(["resume", id], { env });
    expect(unknown.code).toBe(ExitCode.Usage);
  });

  it("`stream resume` of a file changed since its send failed is refused: exit 10, the reason and what to do", async () => {
    const broker = new MemoryBroker();
    const env = { STREAM_STATE_DIR: join(dir, "state") };
    const file = join(dir, "changing.bin");
    await writeFile(file, randomBytes(100_000));
    const failed = await run(["send", file, "--broker", "amqp://h", "--dest", "files", "--timeout", "0.3"], { importer: memoryAdapter(broker), env });
    expect(failed.code).toBe(ExitCode.DestinationMissing);
    const id = events((await run(["ls", "--json"], { env })).stdout)[0]?.id as string;
    await writeFile(file, randomBytes(100_001));
    const refused = await run(["resume", id, "--json"], { importer: memoryAdapter(broker), env });
    expect(refused.code).toBe(ExitCode.SourceChanged);
    expect(events(refused.stdout).at(-1)).toMatchObject({ event: "error", code: "SOURCE_CHANGED", exitCode: 10 });
    expect(String(events(refused.stdout).at(-1)?.message)).toContain(`${file} changed since the send was interrupted (size 100001, was 100000`);
    expect(String(events(refused.stdout).at(-1)?.hint)).toContain(`send ${file} again`);
  });

  it("receive --once started after a withdrawn send discards that stream and takes the next one", async () => {
    const broker = new MemoryBroker();
    const file = join(dir, "late.bin");
    const bytes = randomBytes(300_000);
    await writeFile(file, bytes);
    const withdrawn = await run(["send", file, "--broker", "amqp://h", "--dest", "files", "--chunk-bytes", "64KiB", "--timeout", "0.3"], { importer: memoryAdapter(broker) });
    expect(withdrawn.code).toBe(ExitCode.DestinationMissing);
    const out = join(dir, "out");
    const receiving = run(["receive", "--broker", "amqp://h", "--dest", "files", "--out", out, "--once", "--json"], { importer: memoryAdapter(broker) });
    await new Promise((resolve) => setTimeout(resolve, 200));
    const sent = await run(["send", file, "--broker", "amqp://h", "--dest", "files", "--json"], { importer: memoryAdapter(broker) });
    const received = await receiving;
    expect([sent.code, received.code]).toEqual([0, 0]);
    const outcomes = events(received.stdout).filter((event) => event.event === "withdrawn" || event.event === "done");
    expect(outcomes.map((event) => event.event)).toEqual(["withdrawn", "done"]);
    expect(outcomes[0]?.streamId).not.toBe(outcomes[1]?.streamId);
    expect(await readdir(out)).toEqual(["late.bin"]);
    expect((await readFile(join(out, "late.bin"))).equals(bytes)).toBe(true);
  });

  it("receive says what it rejects: a line per crafted bad frame (a `rejected` event with --json)", async () => {
    const broker = new MemoryBroker();
    const hand = createMemoryTransport({ broker });
    const streamId = "0a0a0a0a-0000-4000-8000-000000000001";
    const manifest = { streamId, name: "x\u001b[31m.bin", contentType: "application/octet-stream", chunkBytes: 1024, metadata: {}, createdAt: new Date().toISOString(), model: "push", replyTo: "", windowChunks: 4, windowBytes: 2 ** 30 };
    const window = encodeFrame({ type: FrameType.Open, streamId, manifest } as Frame);
    const truncated = window.subarray(0, 30);
    for (const json of [false, true]) {
      const stop = new AbortController();
      const out = join(dir, json ? "out-json" : "out");
      const receiving = run(["receive", "--broker", "amqp://h", "--dest", "files", "--out", out, ...(json ? ["--json"] : [])], { importer: memoryAdapter(broker), signal: stop.signal });
      await new Promise((resolve) => setTimeout(resolve, 200));
      for (const bytes of [window, truncated]) await hand.publish("files", bytes, { key: streamId, kind: "stream" });
      await new Promise((resolve) => setTimeout(resolve, 200));
      stop.abort();
      const received = await receiving;
      expect(received.code).toBe(0);
      if (json) {
        expect(events(received.stdout).filter((event) => event.event === "rejected")).toEqual([
          expect.objectContaining({ command: "receive", code: "window-too-large", streamId, name: "x\u001b[31m.bin", reason: expect.stringContaining("maxWindowBytes") }),
          expect.objectContaining({ command: "receive", code: "malformed-frame", streamId, reason: `open frame is 30 bytes; its fields say ${window.byteLength}` }),
        ]);
      } else {
        // The name's control character is shown, not obeyed.
        expect(received.stderr).toContain(`rejected input of stream ${streamId} (x\\u{1b}[31m.bin) [window-too-large]: its window of 1073741824 bytes exceeds this receiver's maxWindowBytes 67108864`);
        expect(received.stderr).toContain(`rejected input of stream ${streamId} [malformed-frame]: open frame is 30 bytes`);
      }
    }
    await hand.close();
  });

  it("send --push names the default; --push with --pull is refused", async () => {
    const broker = new MemoryBroker();
    const bytes = randomBytes(200_000);
    const file = join(dir, "pushed.bin");
    await writeFile(file, bytes);
    const out = join(dir, "out");
    const receiving = run(["receive", "--broker", "amqp://h", "--dest", "files", "--out", out, "--once", "--json"], { importer: memoryAdapter(broker) });
    await new Promise((resolve) => setTimeout(resolve, 100));
    const sent = await run(["send", file, "--broker", "amqp://h", "--dest", "files", "--push", "--json"], { importer: memoryAdapter(broker) });
    expect([sent.code, (await receiving).code]).toEqual([0, 0]);
    expect(events(sent.stdout).at(-1)).toMatchObject({ event: "done", bytes: 200_000, startOffset: 0, bytesPublished: 200_000 });
    expect((await readFile(join(out, "pushed.bin"))).equals(bytes)).toBe(true);
    const both = await run(["send", file, "--broker", "amqp://h", "--dest", "files", "--push", "--pull"], { importer: memoryAdapter(broker) });
    expect(both.code).toBe(ExitCode.Usage);
    expect(both.stderr).toContain("--push and --pull are opposites");
  });
  it("a receive whose process died is listed by `stream ls` (direction receive) and `stream resume <id>` continues its partial file", async () => {
    const broker = new MemoryBroker();
    const env = { STREAM_STATE_DIR: join(dir, "state") };
    const journal = new TransferJournal({ dir: env.STREAM_STATE_DIR });
    const bytes = randomBytes(64 * 65_536 + 999);
    const out = join(dir, "out");
    // A journaled receiver saving slowly (50 ms a chunk), killed (its transport crashed) half way.
    const doomed = createMemoryTransport({ broker });
    const subscribe = doomed.subscribe.bind(doomed);
    doomed.subscribe = (channel, handler, options) =>
      subscribe(channel, async (frame) => {
        if (decodeFrame(frame).type === FrameType.Data) await new Promise((resolve) => setTimeout(resolve, 50));
        return handler(frame);
      }, options);
    const receiving = createStreamClient({ transport: doomed, journal, brokerLabel: "amqp://h" });
    const receiver = receiving.receive("files");
    await receiver.ready;
    receiver.once("stream", (stream) => void stream.saveTo(out).catch(() => {}));
    const sender = createStreamClient({ transport: createMemoryTransport({ broker }) });
    const sent = sender.send(bytes, { destination: "files", name: "movie.bin", chunkBytes: 65_536, windowChunks: 4, takeoverAfterMs: 300 });
    let id = "";
    for (let tries = 0; tries < 400; tries++) {
      const [entry] = await journal.list();
      id = entry?.id ?? "";
      if ((entry?.checkpoints?.length ?? 0) > 0) break;
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
    doomed.crash();
    await new Promise((resolve) => setTimeout(resolve, 300)); // its last writes land
    expect((await run(["ls"], { env })).stdout).toMatch(new RegExp(`${id}\\s+receive\\s+movie\\.bin`));
    const resumed = await run(["resume", id, "--json"], { importer: memoryAdapter(broker), env });
    expect(resumed.code).toBe(0);
    const done = events(resumed.stdout).at(-1);
    expect(done).toMatchObject({ event: "done", command: "resume", streamId: id, sha256: createHash("sha256").update(bytes).digest("hex") });
    expect(done?.startOffset).toBeGreaterThan(0);
    expect((await readFile(join(out, "movie.bin"))).equals(bytes)).toBe(true);
    expect((await sent).sha256).toBe(done?.sha256);
    expect((await run(["ls"], { env })).stdout).toContain("no unfinished transfers");
    await Promise.all([receiving.close(), sender.close()]);
  }, 30_000);

  it("send --pull: the file moves only once a receiver takes it", async () => {
    const broker = new MemoryBroker();
    const bytes = randomBytes(200_000);
    const file = join(dir, "pulled.bin");
    await writeFile(file, bytes);
    const out = join(dir, "out");
    const sending = run(["send", file, "--broker", "amqp://h", "--dest", "files", "--pull", "--json"], { importer: memoryAdapter(broker) });
    await new Promise((resolve) => setTimeout(resolve, 300));
    const received = await run(["receive", "--broker", "amqp://h", "--dest", "files", "--out", out, "--once", "--json"], { importer: memoryAdapter(broker) });
    const sent = await sending;
    expect([sent.code, received.code]).toEqual([0, 0]);
    expect((await readFile(join(out, "pulled.bin"))).equals(bytes)).toBe(true);
  });

  it("refuses --concurrency 0", async () => {
    const result = await run(["receive", "--broker", "amqp://h", "--dest", "files", "--concurrency", "0"], { importer: memoryAdapter(new MemoryBroker()) });
    expect(result.code).toBe(ExitCode.Usage);
    expect(result.stderr).toContain("--concurrency");
  });

  it("exits 5 on both sides when the data is corrupted on the way, keeping nothing", async () => {
    const broker = new MemoryBroker();
    const file = join(dir, "data.bin");
    await writeFile(file, randomBytes(300_000));
    const out = join(dir, "out");
    const receiving = run(["receive", "--broker", "amqp://h", "--dest", "files", "--out", out, "--once"], { importer: memoryAdapter(broker) });
    await new Promise((resolve) => setTimeout(resolve, 50));
    const corrupting = memoryAdapter(broker, (transport) => withFaults(transport, { corrupt: (sequence) => sequence === 1 }));
    const sent = await run(["send", file, "--broker", "amqp://h", "--dest", "files", "--chunk-bytes", "64KiB"], { importer: corrupting });
    const received = await receiving;
    expect(received.code).toBe(ExitCode.IntegrityMismatch);
    expect(received.stderr).toMatch(/integrity check failed: .*CRC-32/);
    expect(sent.code).toBe(ExitCode.IntegrityMismatch);
    expect(await readdir(out)).toEqual([]);
  });

  it("send --expire: a file nobody took by then fails (exit 7) and the broker drops it; a bad duration or a broker without expiry is a usage error", async () => {
    const broker = new MemoryBroker();
    const file = join(dir, "data.bin");
    await writeFile(file, randomBytes(1000));
    const sent = await run(["send", file, "--broker", "amqp://h", "--dest", "later", "--expire", "500ms"], { importer: memoryAdapter(broker) });
    expect(sent.code).toBe(ExitCode.StreamAborted);
    expect(sent.stderr).toContain("the stream expired (--expire) before a receiver had all of it");
    // What it left in the broker is all due: none of it reaches a receiver that starts now.
    const left = broker.channel("later").parked;
    expect(left.length).toBeGreaterThan(0);
    expect(left.every(({ expiresAtMs }) => expiresAtMs !== undefined && expiresAtMs <= Date.now())).toBe(true);
    const bad = await run(["send", file, "--broker", "amqp://h", "--dest", "later", "--expire", "soon"], { importer: memoryAdapter(broker) });
    expect(bad.code).toBe(ExitCode.Usage);
    expect(bad.stderr).toContain('--expire "soon" is not a duration');
    const noExpiry = memoryAdapter(broker, () => createMemoryTransport({ broker, capabilities: { messageExpiry: false } }));
    const refused = await run(["send", file, "--broker", "amqp://h", "--dest", "later", "--expire", "1h"], { importer: noExpiry });
    expect(refused.code).toBe(ExitCode.Usage);
    expect(refused.stderr).toContain("expire needs a broker that drops expired messages");
  });

  it("exits 6 when no receiver takes the stream", async () => {
    const file = join(dir, "data.bin");
    await writeFile(file, randomBytes(1000));
    const result = await run(["send", file, "--broker", "amqp://h", "--dest", "nobody", "--timeout", "0.3"], { importer: memoryAdapter(new MemoryBroker()) });
    expect(result.code).toBe(ExitCode.DestinationMissing);
    expect(result.stderr).toContain('no receiver took the stream on "nobody"; it was withdrawn');
    expect(result.stderr).toContain("stream receive --dest nobody");
  });

  it("never prints the password, from the URL or the environment", async () => {
    const file = join(dir, "data.bin");
    await writeFile(file, "x");
    const failing: ModuleImporter = async () => ({
      createRabbitmqTransport: (options: { url: string }) => {
        const error = new TransportError({ message: `[stream] [rabbitmq] could not connect to ${options.url}: connect ECONNREFUSED`, retryable: true });
        return { ...createMemoryTransport(), subscribe: () => Promise.reject(error), publish: () => Promise.reject(error) };
      },
    });
    for (const [url, env] of [
      ["amqp://alice:correct-horse@h:5672", {}],
      ["amqp://h:5672", { STREAM_BROKER_USER: "alice", STREAM_BROKER_PASSWORD: "correct-horse" }],
    ] as const) {
      for (const json of [false, true]) {
        const result = await run(["send", file, "--broker", url, "--dest", "d", ...(json ? ["--json"] : [])], { importer: failing, env });
        expect(result.code).toBe(ExitCode.BrokerUnreachable);
        expect(result.stdout + result.stderr).toContain("cannot reach the broker");
        expect(result.stdout + result.stderr).not.toContain("correct-horse");
        expect(result.stdout + result.stderr).not.toContain("alice:");
      }
    }
  });

  it("prints every broker URL form as written in the hint for a bad --broker", async () => {
    for (const json of [false, true]) {
      const result = await run(["send", "f", "--broker", "ftp://h", "--dest", "d", ...(json ? ["--json"] : [])]);
      expect(result.code).toBe(ExitCode.Usage);
      const hint = json ? String(events(result.stdout)[0]?.hint) : result.stderr;
      for (const form of BROKER_URL_FORMS) expect(hint).toContain(form);
      expect(hint).not.toContain("***");
    }
  });

  it("creates nothing on disk when the broker cannot be reached", async () => {
    const out = join(dir, "new-folder", "inbox");
    const result = await run(["receive", "--broker", "amqp://h:1", "--dest", "files", "--out", out], { importer: unreachable });
    expect(result.code).toBe(ExitCode.BrokerUnreachable);
    expect(result.stderr).toContain("cannot reach the broker at amqp://h:1");
    expect(result.stderr).toContain("run the command again");
    expect(result.stderr).not.toMatch(/reconnects by itself|retry/);
    expect(await readdir(dir)).toEqual([]);
  });

  it.each([
    ["an --out under a regular file", (file: string) => join(file, "inbox"), /^stream: cannot create --out .*\/a-file\/inbox: .*\/a-file is a file, not a folder \(ENOTDIR\)$/m],
    ["an --out that is an existing file", (file: string) => file, /^stream: --out .*\/a-file is a file, not a folder$/m],
  ])("refuses %s at start-up with exit 2, naming the folder and the reason", async (_what, outOf, message) => {
    const file = join(dir, "a-file");
    await writeFile(file, "not a folder");
    const connect: ModuleImporter = async () => {
      throw new Error("the broker must not be asked before --out is checked");
    };
    const result = await run(["receive", "--broker", "amqp://h", "--dest", "files", "--out", outOf(file)], { importer: connect });
    expect(result.code).toBe(ExitCode.Usage);
    expect(result.stderr).toMatch(message);
    expect(result.stderr).toContain("what to do: give a folder you can write to");
    expect(await readFile(file, "utf8")).toBe("not a folder");
  });

  it("exits 8 naming the package when the adapter is not installed", async () => {
    const missing: ModuleImporter = async () => {
      throw Object.assign(new Error("Cannot find package '@stream/mqtt' imported from x"), { code: "ERR_MODULE_NOT_FOUND" });
    };
    const file = join(dir, "data.bin");
    await writeFile(file, "x");
    const result = await run(["send", file, "--broker", "mqtt://h", "--dest", "d"], { importer: missing });
    expect(result.code).toBe(ExitCode.AdapterMissing);
    expect(result.stderr).toContain("npm install @stream/mqtt mqtt");
  });

  it("stops a serving receiver cleanly on a signal, exit 0", async () => {
    const controller = new AbortController();
    const receiving = run(["receive", "--broker", "amqp://h", "--dest", "files", "--out", join(dir, "out")], {
      importer: memoryAdapter(new MemoryBroker()),
      signal: controller.signal,
    });
    await new Promise((resolve) => setTimeout(resolve, 50));
    // Created once the broker answered.
    expect((await stat(join(dir, "out"))).isDirectory()).toBe(true);
    controller.abort();
    const result = await receiving;
    expect(result.code).toBe(0);
    expect(result.stderr).toContain("stopped");
  });

  it("runs the demo and reports four equal SHA-256 values", async () => {
    const result = await run(["demo", "--size", "2MiB", "--json"]);
    expect(result.code).toBe(0);
    const done = events(result.stdout).find((event) => event.event === "done") as { sha256: Record<string, string>; match: boolean; bytes: number };
    expect(done.match).toBe(true);
    expect(done.bytes).toBe(2 * 1024 * 1024);
    expect(new Set(Object.values(done.sha256)).size).toBe(1);
  });
});
