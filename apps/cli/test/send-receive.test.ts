import { createHash } from "node:crypto";
import { mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { selectedBrokers } from "./brokers";
import { closedPort, freshDestination, parseEvents, randomFile, run, sha256File, start } from "./cli-process";

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "stream-cli-e2e-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe.each(selectedBrokers())("stream send / receive through $name", (broker) => {
  it("delivers a file whose SHA-256 equals the sent one, under the sender's name", async () => {
    const destination = freshDestination(broker.key);
    const out = await mkdtemp(join(dir, `${broker.key}-out-`));
    const file = join(dir, `${broker.key}-payload.bin`);
    const sentSha256 = await randomFile(file, 5 * 1024 * 1024 + 123);
    const receiver = start(["receive", "--broker", broker.url, "--dest", destination, "--out", out, "--once", "--json"]);
    try {
      await receiver.waitForEvent("listening");
      const sent = await run(["send", file, "--broker", broker.url, "--dest", destination, "--chunk-bytes", "256KiB", "--json"]);
      expect(sent.stderr).toBe("");
      expect(sent.code).toBe(0);
      const received = await receiver.finished;
      expect(received.code).toBe(0);

      const sentDone = parseEvents(sent.stdout).find((event) => event.event === "done");
      const receivedDone = parseEvents(received.stdout).find((event) => event.event === "done");
      expect(sentDone).toMatchObject({ sha256: sentSha256, bytes: 5 * 1024 * 1024 + 123, chunks: 21 });
      expect(receivedDone).toMatchObject({ sha256: sentSha256, path: join(out, `${broker.key}-payload.bin`) });
      expect(await sha256File(join(out, `${broker.key}-payload.bin`))).toBe(sentSha256);
      expect(await readdir(out)).toEqual([`${broker.key}-payload.bin`]);
    } finally {
      receiver.child.kill("SIGKILL");
      await broker.cleanUp(destination).catch(() => {});
    }
  });

  it("writes one stream to standard output with --out -, and its sender hears the final ack before the receiver exits", async () => {
    const destination = freshDestination(`${broker.key}-stdout`);
    const file = join(dir, `${broker.key}-piped.bin`);
    const sentSha256 = await randomFile(file, 1024 * 1024 + 7);
    const receiver = start(["receive", "--broker", broker.url, "--dest", destination, "--out", "-"]);
    try {
      // No --json here (stdout carries the data): wait for the human "waiting" line instead.
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error("receiver never said it was waiting")), 60_000);
        receiver.child.stderr?.on("data", (text: Buffer) => {
          if (text.toString().includes("waiting for a stream")) {
            clearTimeout(timer);
            resolve();
          }
        });
      });
      const startedAt = Date.now();
      // A short --timeout: a final ack lost as the receiver exits would leave the sender waiting.
      const sent = await run(["send", file, "--broker", broker.url, "--dest", destination, "--chunk-bytes", "128KiB", "--timeout", "20"]);
      const sendSeconds = (Date.now() - startedAt) / 1000;
      expect(sent.stderr).not.toContain("stream:");
      expect(sent.code).toBe(0);
      expect(sendSeconds).toBeLessThan(15);
      const received = await receiver.finished;
      expect(received.code).toBe(0);
      expect(createHash("sha256").update(received.stdoutBytes).digest("hex")).toBe(sentSha256);
    } finally {
      receiver.child.kill("SIGKILL");
      await broker.cleanUp(destination).catch(() => {});
    }
  });

  it("exits 3 with a message saying the broker cannot be reached, credentials masked", async () => {
    const file = join(dir, "small.bin");
    await writeFile(file, "hello");
    const url = broker.unreachableUrl(await closedPort());
    const result = await run(["send", file, "--broker", url, "--dest", "nowhere"]);
    expect(result.code).toBe(3);
    expect(result.stderr).toMatch(/cannot reach the broker at \S+:\d+/);
    expect(result.stderr).toContain("what to do: check that the broker is running");
    expect(result.stderr).not.toMatch(/secret/);
  });
});
