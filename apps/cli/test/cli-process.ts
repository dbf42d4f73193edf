import { type ChildProcess, spawn } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { createReadStream } from "node:fs";
import { writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import { fileURLToPath } from "node:url";

/** The built binary: these tests run what users run, so `pnpm build` comes first (turbo does it). */
export const CLI = fileURLToPath(new URL("../dist/cli.mjs", import.meta.url));

/** What a finished `stream` process left. */
export interface Finished {
  readonly code: number | null;
  readonly stdout: string;
  /** Standard output as bytes, for `--out -`. */
  readonly stdoutBytes: Buffer;
  readonly stderr: string;
}

/** A `stream` process still running. */
export interface Running {
  readonly child: ChildProcess;
  /** Resolves when it exits. */
  readonly finished: Promise<Finished>;
  /** Resolves with the first `--json` event of this kind on stdout. */
  waitForEvent(event: string, timeoutMs?: number): Promise<Record<string, unknown>>;
  /** Resolves with the first `--json` event on stdout that `matches` (`what` names it in the timeout's message). */
  waitFor(what: string, matches: (event: Record<string, unknown>) => boolean, timeoutMs?: number): Promise<Record<string, unknown>>;
}

/** Starts `node dist/cli.mjs ...args`, with `stdin` as its standard input (none by default). */
export function start(args: string[], env: NodeJS.ProcessEnv = {}, stdin?: string | Buffer): Running {
  const child = spawn(process.execPath, [CLI, ...args], { env: { ...process.env, ...env }, stdio: [stdin === undefined ? "ignore" : "pipe", "pipe", "pipe"] });
  if (stdin !== undefined) child.stdin?.end(stdin);
  const chunks: Buffer[] = [];
  let stdout = "";
  let stderr = "";
  const watchers: Array<() => void> = [];
  child.stdout?.on("data", (chunk: Buffer) => {
    chunks.push(chunk);
    if (stdout.length < 1_000_000) stdout += chunk.toString("utf8");
    for (const watcher of watchers) watcher();
  });
  child.stderr?.setEncoding("utf8").on("data", (text: string) => {
    stderr += text;
  });
  const finished = new Promise<Finished>((resolve) => {
    child.on("close", (code) => resolve({ code, stdout, stdoutBytes: Buffer.concat(chunks), stderr }));
  });
  const waitFor: Running["waitFor"] = (what, matches, timeoutMs = 60_000) =>
    new Promise((resolve, reject) => {
      const check = (): boolean => {
        const found = parseEvents(stdout).find(matches);
        if (found) resolve(found);
        return found !== undefined;
      };
      if (check()) return;
      const timer = setTimeout(() => reject(new Error(`no ${what} within ${timeoutMs} ms; stdout:\n${stdout}\nstderr:\n${stderr}`)), timeoutMs);
      watchers.push(() => {
        if (check()) clearTimeout(timer);
      });
      void finished.then(() => {
        if (!check()) {
          clearTimeout(timer);
          reject(new Error(`exited before ${what}; stdout:\n${stdout}\nstderr:\n${stderr}`));
        }
      });
    });
  return {
    child,
    finished,
    waitFor,
    waitForEvent: (event, timeoutMs) => waitFor(`a "${event}" event`, (item) => item.event === event, timeoutMs),
  };
}

/** Runs `stream ...args` to completion. */
export function run(args: string[], env: NodeJS.ProcessEnv = {}): Promise<Finished> {
  return start(args, env).finished;
}

/** The `--json` events in some stdout. */
export function parseEvents(stdout: string): Array<Record<string, unknown>> {
  return stdout
    .split("\n")
    .filter((line) => line.startsWith("{"))
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}

/** SHA-256 of a file, read afresh. */
export async function sha256File(path: string): Promise<string> {
  const hash = createHash("sha256");
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest("hex");
}

/** Writes `bytes` random bytes to `path`; resolves with their SHA-256. */
export async function randomFile(path: string, bytes: number): Promise<string> {
  const data = randomBytes(bytes);
  await writeFile(path, data);
  return createHash("sha256").update(data).digest("hex");
}

/** A destination name no earlier run has used. */
export function freshDestination(prefix: string): string {
  return `cli-test-${prefix}-${randomBytes(5).toString("hex")}`;
}

/** A local TCP port nothing listens on (bound, then released). */
export async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}
