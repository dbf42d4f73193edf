/**
 * `pnpm --filter @stream/bench run profile-summary <file.cpuprofile> [top]`: where a worker's time
 * went, from a `node --cpu-prof` profile (`pnpm bench --profile`). Self time by function and by
 * package, so "is it the broker client, core's hashing, or the kernel?" has a number.
 */
import { readFile } from "node:fs/promises";

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

/** The package (or runtime part) a script URL belongs to. */
export function packageOf(url: string): string {
  if (url === "") return "(native / GC / idle)";
  if (url.startsWith("node:")) return `node:${url.slice(5).split("/")[0]}`;
  const store = /node_modules\/\.pnpm\/[^/]+\/node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (store?.[1]) return store[1];
  const modules = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (modules?.[1]) return modules[1];
  const workspace = /\/(packages|apps)\/([^/]+)\//.exec(url);
  if (workspace?.[2]) return `@stream/${workspace[2]}`;
  return url;
}

/** Self time per function and per package, in milliseconds, largest first. */
export function summariseProfile(profile: Profile): { totalMs: number; byPackage: Array<[string, number]>; byFunction: Array<[string, number]> } {
  const nodes = new Map(profile.nodes.map((node) => [node.id, node]));
  const selfMs = new Map<number, number>();
  profile.samples.forEach((id, index) => selfMs.set(id, (selfMs.get(id) ?? 0) + (profile.timeDeltas[index] ?? 0) / 1000));
  const byPackage = new Map<string, number>();
  const byFunction = new Map<string, number>();
  for (const [id, ms] of selfMs) {
    const frame = nodes.get(id)?.callFrame;
    if (!frame) continue;
    const pkg = packageOf(frame.url);
    const name = `${frame.functionName || "(anonymous)"}  ${pkg === frame.url ? frame.url : pkg}${frame.url ? `:${frame.lineNumber + 1}` : ""}`;
    byPackage.set(pkg, (byPackage.get(pkg) ?? 0) + ms);
    byFunction.set(name, (byFunction.get(name) ?? 0) + ms);
  }
  const sorted = (map: Map<string, number>) => [...map].sort((a, b) => b[1] - a[1]);
  return { totalMs: (profile.endTime - profile.startTime) / 1000, byPackage: sorted(byPackage), byFunction: sorted(byFunction) };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const [file, topText] = process.argv.slice(2);
  if (!file) {
    console.error("usage: profile-summary <file.cpuprofile> [top]");
    process.exit(2);
  }
  const top = Number(topText ?? 20);
  const { totalMs, byPackage, byFunction } = summariseProfile(JSON.parse(await readFile(file, "utf8")) as Profile);
  const pct = (ms: number) => `${((100 * ms) / totalMs).toFixed(1).padStart(5)} %`;
  console.log(`${file}: ${(totalMs / 1000).toFixed(1)} s profiled\n\nby package (self time):`);
  for (const [name, ms] of byPackage.slice(0, top)) console.log(`  ${pct(ms)}  ${(ms / 1000).toFixed(2).padStart(7)} s  ${name}`);
  console.log("\nby function (self time):");
  for (const [name, ms] of byFunction.slice(0, top)) console.log(`  ${pct(ms)}  ${(ms / 1000).toFixed(2).padStart(7)} s  ${name}`);
}
