import { execFile } from "node:child_process";
import { access, constants, mkdir, mkdtemp, readdir, readFile, rm, symlink } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const run = promisify(execFile);
const APP = fileURLToPath(new URL("..", import.meta.url));
const PATH = `${dirname(process.execPath)}:${process.env.PATH ?? ""}`;

let dir: string;
let packed: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "stream-cli-pack-"));
  await run("pnpm", ["pack", "--pack-destination", dir], { cwd: APP, env: { ...process.env, PATH } });
  const [tarball] = (await readdir(dir)).filter((name) => name.endsWith(".tgz"));
  // Laid out as an install: node_modules/@stream/cli from the tarball, its dependencies beside it
  // (linked to the workspace's, as the registry's are not published from here), and the bin link.
  packed = join(dir, "node_modules", "@stream", "cli");
  await mkdir(packed, { recursive: true });
  await run("tar", ["xzf", join(dir, tarball as string), "-C", packed, "--strip-components=1"]);
  const deps = Object.keys((JSON.parse(await readFile(join(packed, "package.json"), "utf8")) as { dependencies: Record<string, string> }).dependencies);
  for (const name of deps) {
    await mkdir(dirname(join(dir, "node_modules", name)), { recursive: true });
    await symlink(join(APP, "node_modules", name), join(dir, "node_modules", name));
  }
  await mkdir(join(dir, "node_modules", ".bin"));
  await symlink("../@stream/cli/dist/cli.mjs", join(dir, "node_modules", ".bin", "stream"));
}, 60_000);
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("@stream/cli's tarball (pnpm pack)", () => {
  it("is publishable: public, dist only, no workspace: ranges, Node >=22.22", async () => {
    const text = await readFile(join(packed, "package.json"), "utf8");
    expect(text).not.toContain("workspace:");
    const pkg = JSON.parse(text) as Record<string, unknown>;
    expect(pkg).toMatchObject({ name: "@stream/cli", bin: { stream: "dist/cli.mjs" }, files: ["dist"], publishConfig: { access: "public" }, engines: { node: ">=22.22" } });
    expect(pkg.private).toBeUndefined();
    expect((await readdir(packed)).sort()).toEqual(["README.md", "dist", "package.json"]);
  });

  it("installs a `stream` bin that runs", async () => {
    const bin = join(dir, "node_modules", ".bin", "stream");
    expect((await readFile(bin, "utf8")).startsWith("#!/usr/bin/env node\n")).toBe(true);
    await access(bin, constants.X_OK);
    const version = await run(bin, ["--version"], { env: { ...process.env, PATH } });
    expect(version.stdout.trim()).toMatch(/^\d+\.\d+\.\d+/);
    const help = await run(bin, ["--help"], { env: { ...process.env, PATH } });
    expect(help.stdout).toContain("stream send <file|->");
    const demo = await run(bin, ["demo", "--size", "1MiB", "--json"], { env: { ...process.env, PATH } });
    expect(demo.stdout).toContain('"match":true');
  });
});
