import { defineBrokerTestConfig } from "@stream/vitest-config";

export default defineBrokerTestConfig();
