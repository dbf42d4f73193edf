import { defineStreamConfig } from "@stream/tsup-config";

export default [
  defineStreamConfig({ shims: true }),
  // The end-to-end worker runs as a script of its own: ESM only, no types.
  defineStreamConfig({ entry: { "e2e-worker": "src/e2e-worker.ts", "fault-worker": "src/fault-worker.ts" }, format: ["esm"], dts: false, clean: false }),
];
