import type { UserConfig } from "vitest/config";

/** Unit tests: `src/**\/*.test.ts`, in parallel, no broker. */
export declare function defineUnitTestConfig(overrides?: UserConfig["test"]): UserConfig;
/** Broker tests: `test/**\/*.test.ts`, one file at a time, one retry for timing races. */
export declare function defineBrokerTestConfig(overrides?: UserConfig["test"]): UserConfig;
/** Fault-injection tests: `test/faults*.test.ts`, serial, never retried; `pnpm test:faults`. */
export declare function defineFaultTestConfig(overrides?: UserConfig["test"]): UserConfig;
