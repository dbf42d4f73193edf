import { defineBrokerTestConfig } from "@stream/vitest-config";

// A README is a script run once, top to bottom: a retry would run half of it twice.
export default defineBrokerTestConfig({ retry: 0, testTimeout: 600_000, hookTimeout: 600_000 });
