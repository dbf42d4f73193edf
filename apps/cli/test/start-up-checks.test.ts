import { mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { closedPort, parseEvents, run } from "./cli-process";

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "stream-cli-start-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

// The built binary, its exit codes and what it leaves on disk; no broker needed.
describe("stream receive: start-up checks (built binary)", () => {
  it.each(["amqp", "mqtt", "stomp", "kafka"])("exits 3 for a dead %s:// broker and creates no --out folder", async (scheme) => {
    const out = join(dir, `new-folder-${scheme}`);
    const result = await run(["receive", "--broker", `${scheme}://127.0.0.1:${await closedPort()}`, "--dest", "files", "--out", out, "--json"]);
    expect(result.code).toBe(3);
    expect(parseEvents(result.stdout).at(-1)).toMatchObject({ event: "error", code: "BROKER_UNREACHABLE", hint: expect.stringContaining("run the command again") });
    expect(result.stdout).not.toMatch(/reconnects by itself|retry/);
    expect(await readdir(dir)).not.toContain(`new-folder-${scheme}`);
  });

  it("exits 2 for an --out under a regular file (ENOTDIR), naming it", async () => {
    const file = join(dir, "plain-file");
    await writeFile(file, "x");
    const result = await run(["receive", "--broker", "amqp://127.0.0.1:1", "--dest", "files", "--out", join(file, "inbox")]);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain(`stream: cannot create --out ${join(file, "inbox")}: ${file} is a file, not a folder (ENOTDIR)`);
  });

  it("exits 2 for an --out that is an existing file, naming it", async () => {
    const file = join(dir, "another-file");
    await writeFile(file, "x");
    const result = await run(["receive", "--broker", "amqp://127.0.0.1:1", "--dest", "files", "--out", file]);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain(`stream: --out ${file} is a file, not a folder`);
  });

  it("prints the broker URL forms as written when --broker is wrong (exit 2)", async () => {
    const result = await run(["receive", "--broker", "ftp://h", "--dest", "files"]);
    expect(result.code).toBe(2);
    for (const form of ["amqp://[user:pass@]host[:5672][/vhost]", "stomp://[user:pass@]host[:61613]", "mqtt://[user:pass@]host[:1883]", "kafka://[user:pass@]host[:9092]"]) {
      expect(result.stderr).toContain(form);
    }
  });
});
