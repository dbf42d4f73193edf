import { defineStreamConfig } from "@stream/tsup-config";

export default defineStreamConfig({
  entry: { index: "src/index.ts", testing: "src/testing/index.ts", "adapter-kit": "src/adapter-kit/index.ts" },
});
