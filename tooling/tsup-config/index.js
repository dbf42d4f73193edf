import { defineConfig } from "tsup";

/**
 * The shared build preset: dual ESM (`.mjs` + `.d.mts`) and CommonJS (`.cjs` + `.d.cts`) with
 * sourcemaps, targeting Node 22 (the oldest supported). A package passes its entry points and any overrides.
 *
 * @param {import("tsup").Options} [overrides]
 */
export function defineStreamConfig(overrides = {}) {
  return defineConfig({
    entry: ["src/index.ts"],
    format: ["esm", "cjs"],
    dts: true,
    sourcemap: true,
    clean: true,
    target: "node22",
    platform: "node",
    splitting: false,
    treeshake: true,
    outExtension({ format }) {
      return format === "cjs" ? { js: ".cjs", dts: ".d.cts" } : { js: ".mjs", dts: ".d.mts" };
    },
    ...overrides,
  });
}
