import { defineUnitTestConfig } from "@stream/vitest-config";

export default defineUnitTestConfig();
