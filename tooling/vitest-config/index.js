import { defineConfig } from "vitest/config";

/**
 * Unit tests: `src/**\/*.test.ts`, in parallel, no broker.
 *
 * @param {import("vitest/config").UserConfig["test"]} [overrides]
 */
export function defineUnitTestConfig(overrides = {}) {
  return defineConfig({
    test: {
      include: ["src/**/*.test.ts"],
      testTimeout: 30_000,
      ...overrides,
    },
  });
}

/**
 * Broker tests: `test/**\/*.test.ts` against real brokers started by `pnpm brokers:up`. They run
 * one file at a time (the brokers are shared) and may retry once for a timing race, never more.
 *
 * @param {import("vitest/config").UserConfig["test"]} [overrides]
 */
export function defineBrokerTestConfig(overrides = {}) {
  return defineConfig({
    test: {
      include: ["test/**/*.test.ts"],
      // The fault-injection suite is long: its own task, `test:faults`.
      exclude: ["test/faults*.test.ts", "**/node_modules/**"],
      fileParallelism: false,
      testTimeout: 120_000,
      hookTimeout: 120_000,
      retry: 1,
      ...overrides,
    },
  });
}

/**
 * Fault-injection tests: `test/faults*.test.ts` against real brokers (`pnpm test:faults`). Long
 * (outages of 3 and 30 s), so a task of their own; serial, and never retried: a retry would
 * double a long run and could hide a reconnect that works only sometimes.
 *
 * @param {import("vitest/config").UserConfig["test"]} [overrides]
 */
export function defineFaultTestConfig(overrides = {}) {
  return defineConfig({
    test: {
      include: ["test/faults*.test.ts"],
      fileParallelism: false,
      testTimeout: 180_000,
      hookTimeout: 60_000,
      retry: 0,
      ...overrides,
    },
  });
}
