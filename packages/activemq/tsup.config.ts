import { defineStreamConfig } from "@stream/tsup-config";

export default defineStreamConfig();
