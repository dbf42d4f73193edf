#!/usr/bin/env node
// tsup's declaration worker cannot receive the preset's `outExtension` (functions are not
// cloned into workers), so CommonJS declarations come out as `.d.ts`. This renames them to
// `.d.cts`, pointing their relative imports at `.cjs`, so each format has its own types.
import { readdir, readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";

const dist = join(process.cwd(), process.argv[2] ?? "dist");
for (const file of await readdir(dist)) {
  if (!file.endsWith(".d.ts")) continue;
  const text = await readFile(join(dist, file), "utf8");
  // Both `... from "./x.js"` and the bare `import "./x.js"` a shared chunk can get.
  const fixed = text.replace(/((?:from|import)\s+['"]\.\/[^'"]+)\.js(['"])/g, "$1.cjs$2");
  await writeFile(join(dist, file.replace(/\.d\.ts$/, ".d.cts")), fixed);
  await rm(join(dist, file));
}
