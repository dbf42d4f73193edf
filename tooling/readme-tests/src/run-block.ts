import { spawn } from "node:child_process";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { blockAction, type ReadmeBlock } from "./readme-blocks";
import { REPO_ROOT } from "./readmes";

/** What running a block gave: its exit code (null when killed) and its output, both streams. */
export interface BlockRun {
  code: number | null;
  output: string;
}

/**
 * Does with `block` what its info string asks, in `folder` (the user's project) or in the repo
 * (`repo`): writes it to its file, or runs it as a user would: `bash -euo pipefail` for shell, `node`
 * for JavaScript and TypeScript (Node 24 strips types). `STREAM_REPO` is the repository's root, as
 * the README's install step tells a user to set it. A block that runs longer than `timeoutMs` is
 * killed with everything it started.
 */
export async function runBlock(block: ReadmeBlock, folder: string, timeoutMs = 300_000): Promise<BlockRun> {
  const cwd = block.repo ? REPO_ROOT : folder;
  const action = blockAction(block);
  if (action === "write") {
    await writeFile(join(cwd, block.file!), block.code);
    return { code: 0, output: "" };
  }
  if (action !== "run-sh" && action !== "run-js" && action !== "run-ts") return { code: 0, output: "" };
  let command: string[];
  if (action === "run-sh") {
    command = ["bash", "-euo", "pipefail", "-c", block.code];
  } else {
    const file = join(cwd, `readme-block-${block.line}.${action === "run-ts" ? "mts" : "mjs"}`);
    await writeFile(file, block.code);
    command = [process.execPath, file];
  }
  return run(command, cwd, timeoutMs);
}

function run([cmd, ...args]: string[], cwd: string, timeoutMs: number): Promise<BlockRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd!, args, {
      cwd,
      detached: true, // its own process group: a timeout kills what the block started in the background too
      env: { ...process.env, STREAM_REPO: REPO_ROOT, NO_COLOR: "1" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let output = "";
    child.stdout.on("data", (d: Buffer) => (output += d.toString()));
    child.stderr.on("data", (d: Buffer) => (output += d.toString()));
    const timer = setTimeout(() => {
      output += `\n[readme-tests] killed after ${timeoutMs} ms`;
      process.kill(-child.pid!, "SIGKILL");
    }, timeoutMs);
    child.on("error", reject);
    child.on("close", (code) => {
      clearTimeout(timer);
      try {
        process.kill(-child.pid!, "SIGKILL"); // what the block left running in the background
      } catch {
        // the group is gone already
      }
      resolve({ code, output });
    });
  });
}
