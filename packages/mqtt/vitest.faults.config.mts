import { defineFaultTestConfig } from "@stream/vitest-config";

export default defineFaultTestConfig();
