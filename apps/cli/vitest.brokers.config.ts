import { tmpdir } from "node:os";
import { join } from "node:path";
import { defineBrokerTestConfig } from "@stream/vitest-config";

// The CLI processes these tests start journal failed sends in a folder of the tests', not the user's.
export default defineBrokerTestConfig({ env: { STREAM_STATE_DIR: join(tmpdir(), "stream-cli-tests-state") } });
