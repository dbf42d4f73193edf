import type { Options } from "tsup";

/** The shared build preset: dual ESM + CJS, `.d.mts` / `.d.cts`, sourcemaps, Node 22. */
export declare function defineStreamConfig(overrides?: Options): Options | Options[];
