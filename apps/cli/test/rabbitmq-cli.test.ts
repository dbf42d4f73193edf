import { mkdtemp, readdir, readFile, rm, utimes, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { createTcpProxy } from "@stream/conformance";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BROKERS, selectedBrokers } from "./brokers";
import { freshDestination, parseEvents, randomFile, run, sha256File, start } from "./cli-process";

const rabbitmq = BROKERS.find((broker) => broker.key === "rabbitmq");
const enabled = selectedBrokers().some((broker) => broker.key === "rabbitmq");

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "stream-cli-rabbitmq-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe.runIf(enabled && rabbitmq)("stream through RabbitMQ: errors, names and serving", () => {
  const url = rabbitmq?.url ?? "";
  const withPassword = (password: string) => url.replace(/^amqp:\/\/([^@/]*@)?/, `amqp://guest:${password}@`);

  it("exits 4 when the broker refuses the credentials, never printing the password", async () => {
    const file = join(dir, "small.bin");
    await writeFile(file, "hello");
    const result = await run(["send", file, "--broker", withPassword("wrong-pa55word"), "--dest", freshDestination("auth")]);
    expect(result.code).toBe(4);
    expect(result.stderr).toContain("refused the credentials");
    expect(result.stderr).not.toContain("wrong-pa55word");

    const fromEnv = await run(["send", file, "--broker", url.replace(/^amqp:\/\/[^@/]*@/, "amqp://"), "--dest", "d", "--json"], {
      STREAM_BROKER_USER: "guest",
      STREAM_BROKER_PASSWORD: "env-pa55word",
    });
    expect(fromEnv.code).toBe(4);
    expect(parseEvents(fromEnv.stdout).at(-1)).toMatchObject({ event: "error", code: "AUTHENTICATION_FAILED", exitCode: 4 });
    expect(fromEnv.stdout + fromEnv.stderr).not.toContain("env-pa55word");
  });

  it("exits 6 when no receiver takes the stream", async () => {
    const destination = freshDestination("nobody");
    const file = join(dir, "small.bin");
    await writeFile(file, "hello");
    try {
      const result = await run(["send", file, "--broker", url, "--dest", destination, "--timeout", "2"]);
      expect(result.code).toBe(6);
      expect(result.stderr).toContain(`no receiver took the stream on "${destination}"; it was withdrawn`);
      expect(result.stderr).toContain(`stream receive --dest ${destination}`);
      // Sending again, as the message says, with a receiver now: one file, not two.
      const out = await mkdtemp(join(dir, "withdrawn-"));
      const receiver = start(["receive", "--broker", url, "--dest", destination, "--out", out, "--json"]);
      try {
        await receiver.waitForEvent("listening");
        expect((await run(["send", file, "--broker", url, "--dest", destination])).code).toBe(0);
        await new Promise((resolve) => setTimeout(resolve, 1500)); // a late copy of the first would land now
        receiver.child.kill("SIGTERM");
        expect((await receiver.finished).code).toBe(0);
        expect(await readdir(out)).toEqual(["small.bin"]);
        expect(await readFile(join(out, "small.bin"), "utf8")).toBe("hello");
      } finally {
        receiver.child.kill("SIGKILL");
      }
    } finally {
      await rabbitmq?.cleanUp(destination);
    }
  });

  it("a send whose connection is cut for 6 s mid-transfer completes byte-exact, its --json progress saying the connection state", async () => {
    const destination = freshDestination("cut");
    const out = await mkdtemp(join(dir, "cut-"));
    const file = join(dir, "cut.bin");
    const sizeBytes = 32 * 1024 * 1024;
    const sha256 = await randomFile(file, sizeBytes);
    const broker = new URL(url);
    const proxy = await createTcpProxy({ targetPort: Number(broker.port || 5672), targetHost: broker.hostname });
    const through = new URL(url);
    through.port = String(proxy.port);
    const receiver = start(["receive", "--broker", url, "--dest", destination, "--out", out, "--once", "--json"]);
    try {
      await receiver.waitForEvent("listening");
      const sender = start(["send", file, "--broker", through.toString(), "--dest", destination, "--chunk-bytes", "256KiB", "--window", "16", "--json"]);
      let cut: Promise<void> | undefined;
      let stdout = "";
      sender.child.stdout?.on("data", (chunk: Buffer) => {
        stdout += chunk.toString("utf8");
        const half = parseEvents(stdout).some((event) => event.event === "progress" && Number(event.bytes) >= sizeBytes / 2);
        // Core sees an outage only when a publish fails; RabbitMQ's adapter often holds publishes
        // while it reconnects, so "reconnecting" shows in some runs only (issue 9 leaves this to a
        // connection state the adapters report themselves).
        if (half) cut ??= proxy.cutFor(6000);
      });
      const sent = await sender.finished;
      expect(cut).toBeDefined();
      await cut;
      expect(sent.code, sent.stderr).toBe(0);
      const progress = parseEvents(sent.stdout).filter((event) => event.event === "progress");
      for (const event of progress) expect(["connected", "reconnecting"]).toContain(event.connection);
      expect(progress.at(-1)).toMatchObject({ connection: "connected" });
      expect(parseEvents(sent.stdout).at(-1)).toMatchObject({ event: "done", sha256 });
      expect((await receiver.finished).code).toBe(0);
      expect(await sha256File(join(out, "cut.bin"))).toBe(sha256);
    } finally {
      receiver.child.kill("SIGKILL");
      await proxy.close();
      await rabbitmq?.cleanUp(destination);
    }
  });

  it("serves stream after stream, never overwrites, and stops cleanly on SIGTERM", async () => {
    const destination = freshDestination("serve");
    const out = await mkdtemp(join(dir, "served-"));
    await writeFile(join(out, "report.pdf"), "already here");
    const file = join(dir, "report.pdf");
    const sha256 = await randomFile(file, 300_000);
    const receiver = start(["receive", "--broker", url, "--dest", destination, "--out", out, "--json"]);
    try {
      await receiver.waitForEvent("listening");
      for (let i = 0; i < 2; i++) expect((await run(["send", file, "--broker", url, "--dest", destination])).code).toBe(0);
      // Standard input, under a name that tries to leave the folder: refused, its sender told.
      const escaping = await start(["send", "-", "--broker", url, "--dest", destination, "--name", "../../escape.txt"], {}, "from stdin").finished;
      expect(escaping.code).toBe(7);
      expect(escaping.stderr).toContain("refused");
      // A plain directory prefix is only dropped.
      const piped = start(["send", "-", "--broker", url, "--dest", destination, "--name", "incoming/escape.txt"], {}, "from stdin");
      expect((await piped.finished).code).toBe(0);
      receiver.child.kill("SIGTERM");
      const stopped = await receiver.finished;
      expect(stopped.code).toBe(0);
      const events = parseEvents(stopped.stdout);
      expect(events.filter((event) => event.event === "done")).toHaveLength(3);
      expect(events.filter((event) => event.event === "error")).toEqual([expect.objectContaining({ code: "UNSAFE_NAME", exitCode: 9, name: "../../escape.txt" })]);
      expect((await readdir(out)).sort()).toEqual(["escape.txt", "report (1).pdf", "report (2).pdf", "report.pdf"]);
      expect(await readFile(join(out, "report.pdf"), "utf8")).toBe("already here");
      expect(await sha256File(join(out, "report (2).pdf"))).toBe(sha256);
      expect(await readFile(join(out, "escape.txt"), "utf8")).toBe("from stdin");
    } finally {
      receiver.child.kill("SIGKILL");
      await rabbitmq?.cleanUp(destination);
    }
  });

  it("receive --once exits 9 for a name that would leave the folder, writing nothing", async () => {
    const destination = freshDestination("unsafe");
    const out = await mkdtemp(join(dir, "unsafe-"));
    const receiver = start(["receive", "--broker", url, "--dest", destination, "--out", out, "--once", "--json"]);
    try {
      await receiver.waitForEvent("listening");
      const sent = await start(["send", "-", "--broker", url, "--dest", destination, "--name", "/etc/cron.d/job"], {}, "payload").finished;
      expect(sent.code).toBe(7);
      const received = await receiver.finished;
      expect(received.code).toBe(9);
      expect(parseEvents(received.stdout).at(-1)).toMatchObject({ event: "error", code: "UNSAFE_NAME", exitCode: 9 });
      expect(await readdir(out)).toEqual([]);
    } finally {
      receiver.child.kill("SIGKILL");
      await rabbitmq?.cleanUp(destination);
    }
  });

  it("a receiver whose --out became a file refuses the stream to the sender with the reason within seconds (send 7, receive 2)", async () => {
    const destination = freshDestination("refuse");
    const out = join(await mkdtemp(join(dir, "refuse-")), "inbox");
    const file = join(dir, "refused.bin");
    await randomFile(file, 2_000_000);
    const receiver = start(["receive", "--broker", url, "--dest", destination, "--out", out, "--once", "--json"]);
    try {
      await receiver.waitForEvent("listening");
      await rm(out, { recursive: true });
      await writeFile(out, "a file where the folder was");
      const startedAt = Date.now();
      const sent = await run(["send", file, "--broker", url, "--dest", destination]);
      expect(Date.now() - startedAt).toBeLessThan(15_000);
      expect(sent.code).toBe(7);
      expect(sent.stderr).toContain(`the receiver refused the stream: the receiver cannot write to its folder ${out}: EEXIST`);
      const received = await receiver.finished;
      expect(received.code).toBe(2);
      expect(parseEvents(received.stdout).at(-1)).toMatchObject({ event: "error", code: "USAGE", exitCode: 2 });
      expect(await readFile(out, "utf8")).toBe("a file where the folder was");
    } finally {
      receiver.child.kill("SIGKILL");
      await rabbitmq?.cleanUp(destination);
    }
  });

  it.each([
    [[], false],
    [["--keep-partial"], true],
  ])("a dead receiver's old temporary file in --out is removed once a stream is saved (%j keeps it: %s)", async (flags, kept) => {
    const destination = freshDestination("partial");
    const out = await mkdtemp(join(dir, "partial-"));
    const left = join(out, ".video.mp4.1b4e28ba-2fa1-41d2-883f-0016d3cca427.0badf00d.partial");
    await writeFile(left, "what a receiver killed an hour ago had written");
    const anHourAgo = new Date(Date.now() - 3_600_000);
    await utimes(left, anHourAgo, anHourAgo);
    const file = join(dir, "fresh.bin");
    const sha256 = await randomFile(file, 100_000);
    const receiver = start(["receive", "--broker", url, "--dest", destination, "--out", out, "--once", "--json", ...flags]);
    try {
      await receiver.waitForEvent("listening");
      expect((await run(["send", file, "--broker", url, "--dest", destination])).code).toBe(0);
      expect((await receiver.finished).code).toBe(0);
      expect(await sha256File(join(out, "fresh.bin"))).toBe(sha256);
      expect((await readdir(out)).includes(basename(left))).toBe(kept);
    } finally {
      receiver.child.kill("SIGKILL");
      await rabbitmq?.cleanUp(destination);
    }
  });
});
