import { defineStreamConfig } from "@stream/tsup-config";

export default [
  defineStreamConfig({ shims: true }),
  // The workers run as scripts of their own: ESM only, no types.
  defineStreamConfig({
    entry: { "e2e-worker": "src/e2e-worker.ts", "takeover-worker": "src/takeover-worker.ts", "fault-worker": "src/fault-worker.ts", "fan-in-worker": "src/fan-in-worker.ts" },
    format: ["esm"],
    dts: false,
    clean: false,
  }),
];
