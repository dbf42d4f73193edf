import { defineStreamConfig } from "@stream/tsup-config";

// An app, not a library: one ESM entry with its shebang, no declarations. The adapters stay
// external (they are dependencies), so `import("@stream/kafka")` loads only when it is used.
export default defineStreamConfig({
  entry: { cli: "src/cli.ts" },
  format: ["esm"],
  dts: false,
});
