import { execFileSync, spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import amqp from "amqplib";
import { beforeAll, describe, expect, test } from "vitest";
import { readReadmeBlocks } from "../src/readme-blocks";
import { REPO_ROOT, findReadmes } from "../src/readmes";
import { runBlock } from "../src/run-block";

// A user's project: a folder outside the workspace (no workspace links above it), where the packed
// packages are installed with plain npm, as the README's install step says.
const project = mkdtempSync(join(tmpdir(), "stream-readme-"));
const packs = join(REPO_ROOT, ".packs");
writeFileSync(join(project, "package.json"), JSON.stringify({ name: "my-app", version: "1.0.0", private: true }, null, 2));

function npm(args: string[], cwd = project): string {
  return execFileSync("npm", ["--no-fund", "--no-audit", "--loglevel=error", ...args], { cwd, encoding: "utf8", stdio: "pipe" });
}

/** Runs every block of one README in order, in `folder`; the first that fails fails the test. */
async function runReadme(readme: string, folder: string): Promise<void> {
  mkdirSync(folder, { recursive: true });
  for (const block of readReadmeBlocks(join(REPO_ROOT, readme), readme)) {
    const { code, output } = await runBlock(block, folder);
    expect(code, `${readme}:${block.line} (${block.lang}) exited ${code}:\n${block.code}\n--- output ---\n${output}`).toBe(0);
  }
}

beforeAll(async () => {
  // Fresh tarballs of this tree, whichever test runs first (README.md packs them again, as written).
  execFileSync("bash", ["scripts/pack.sh"], { cwd: REPO_ROOT, stdio: "pipe" });
  // The root README's Quick start uses the destination "files" on RabbitMQ: start from an empty
  // queue, so a stream left by an earlier, failed run is not the one the receiver takes.
  const connection = await amqp.connect("amqp://guest:guest@127.0.0.1:5672");
  const channel = await connection.createChannel();
  await channel.deleteQueue("files");
  await connection.close();
});

describe("READMEs, run as written", () => {
  test("README.md's two set-up commands: demo.sh streams a file end to end; test.sh is what CI runs", () => {
    // The set-up block is marked skip=ci because test.sh is the command running this very test.
    const demo = spawnSync("bash", ["scripts/demo.sh"], { cwd: REPO_ROOT, encoding: "utf8" });
    expect(demo.status, demo.stderr).toBe(0);
    const hashes = [...demo.stderr.matchAll(/\b[0-9a-f]{64}\b/g)].map((m) => m[0]);
    expect(hashes.length).toBeGreaterThanOrEqual(2);
    expect(new Set(hashes).size).toBe(1);
    expect(readFileSync(join(REPO_ROOT, ".ci/run"), "utf8")).toMatch(/^exec bash scripts\/test\.sh$/m);
  });

  test("README.md: install from the packed tarballs, the Quick start (two processes), the CLI", async () => {
    await runReadme("README.md", project);
  });

  test("every packed package: no workspace: ranges left, and npm publish --dry-run passes", () => {
    const tarballs = readdirSync(packs).filter((f) => f.endsWith(".tgz"));
    expect(tarballs).toEqual(expect.arrayContaining(["stream-core.tgz", "stream-rabbitmq.tgz", "stream-cli.tgz"]));
    for (const tarball of tarballs) {
      const manifest = execFileSync("tar", ["-xzOf", join(packs, tarball), "package/package.json"], { encoding: "utf8" });
      expect(manifest, tarball).not.toContain("workspace:");
      npm(["publish", "--dry-run", join(packs, tarball)]);
    }
  });

  describe("each package's and app's README, in a folder of the project with every package installed", () => {
    beforeAll(() => {
      const tarballs = readdirSync(packs).filter((f) => f.endsWith(".tgz")).map((f) => join(packs, f));
      const peers = new Set<string>();
      for (const tarball of tarballs) {
        const manifest = JSON.parse(execFileSync("tar", ["-xzOf", tarball, "package/package.json"], { encoding: "utf8" }));
        for (const [name, range] of Object.entries(manifest.peerDependencies ?? {})) peers.add(`${name}@${range}`);
      }
      npm(["install", ...tarballs, ...peers]);
    }, 300_000);

    test("npx stream --help, from the installed @stream/cli", () => {
      const help = execFileSync("npx", ["--no-install", "stream", "--help"], { cwd: project, encoding: "utf8" });
      expect(help).toMatch(/stream send/);
      expect(help).toMatch(/stream receive/);
    });

    test.each(findReadmes().filter((r) => r !== "README.md"))("%s", async (readme) => {
      await runReadme(readme, join(project, readme.replaceAll("/", "-").replace(/\.md$/, "")));
    });
  });
});
