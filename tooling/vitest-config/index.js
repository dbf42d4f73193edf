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
      fileParallelism: false,
      testTimeout: 120_000,
      hookTimeout: 120_000,
      retry: 1,
      ...overrides,
    },
  });
}
