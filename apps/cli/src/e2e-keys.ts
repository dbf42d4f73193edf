import { E2eKeyError, E2eKeyring } from "@stream/core";
import { UsageError } from "./cli-errors";

/** The environment variable that holds end-to-end keys when `--e2e-key` is not given. */
export const E2E_KEY_ENV = "STREAM_E2E_KEY";

/**
 * The keys of `--e2e-key FILE`, else of `$STREAM_E2E_KEY`, else none (the stream goes
 * unencrypted). Both hold the key text `stream keygen` writes (`keyId:base64`, one a line). A file
 * or variable that holds no key is a usage error (exit 2), its content never printed.
 */
export function e2eKeys(file: string | undefined, env: NodeJS.ProcessEnv): E2eKeyring | undefined {
  try {
    return file === undefined ? E2eKeyring.fromEnv(E2E_KEY_ENV, env) : E2eKeyring.fromFile(file);
  } catch (error) {
    if (!E2eKeyError.isInstance(error)) throw error;
    throw new UsageError(error.message.replace(/^\[stream\] \[e2e\] /, ""), "create a key file with `stream keygen > team.key` and give both sides the same one");
  }
}
