import { defineStreamConfig } from "@stream/tsup-config";

// An app, not a library: ESM entries, no declarations. The orchestrator forks the worker entries
// (sender, receiver; fan-in and failover) as processes of their own; adapters and broker clients stay external.
export default defineStreamConfig({
  entry: {
    bench: "src/bench.ts",
    "bench-worker": "src/bench-worker.ts",
    "scenario-worker": "src/scenario-worker.ts",
    "profile-summary": "src/profile-summary.ts",
  },
  format: ["esm"],
  dts: false,
});
