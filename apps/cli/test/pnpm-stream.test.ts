import { spawn } from "node:child_process";
import { dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { closedPort } from "./cli-process";

const ROOT = fileURLToPath(new URL("../../..", import.meta.url));
const APP = fileURLToPath(new URL("..", import.meta.url));

/** Runs `pnpm ...args` in `cwd` with the Node running the tests first on PATH (the shebangs' `node`). */
function pnpm(args: string[], cwd: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn("pnpm", args, { cwd, env: { ...process.env, PATH: `${dirname(process.execPath)}:${process.env.PATH ?? ""}` } });
  let stdout = "";
  let stderr = "";
  child.stdout.setEncoding("utf8").on("data", (text: string) => (stdout += text));
  child.stderr.setEncoding("utf8").on("data", (text: string) => (stderr += text));
  return new Promise((resolve) => child.on("close", (code) => resolve({ code, stdout, stderr })));
}

describe("pnpm stream (the root script running the built CLI)", () => {
  it("prints the CLI's help from the repository root", async () => {
    const result = await pnpm(["stream", "--help"], ROOT);
    expect(result.code).toBe(0);
    expect(result.stdout).toContain("Usage:");
    expect(result.stdout).toContain("stream send <file|-> --broker <url> --dest <name>");
    expect(result.stdout).toContain("amqp://[user:pass@]host[:5672][/vhost]");
  });

  it("passes arguments through and reads paths from the folder it was typed in", async () => {
    // tsup.config.ts exists in apps/cli only: getting past the file check to the (closed) broker
    // shows the path was read from the caller's folder, not the root pnpm runs scripts in.
    const port = await closedPort();
    const result = await pnpm(["-w", "-s", "stream", "send", "tsup.config.ts", "--broker", `amqp://127.0.0.1:${port}`, "--dest", "d", "--json"], APP);
    expect(result.stderr).not.toContain("no such file");
    expect(JSON.parse(result.stdout.trim().split("\n").at(-1) ?? "{}")).toMatchObject({ event: "error", code: "BROKER_UNREACHABLE" });
    expect(result.code).toBe(3);
  });
});
