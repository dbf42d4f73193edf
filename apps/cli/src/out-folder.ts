import { constants } from "node:fs";
import { access, mkdir, stat } from "node:fs/promises";
import { dirname } from "node:path";
import { UsageError } from "./cli-errors";

const HINT = "give a folder you can write to (it is created if missing), or --out - for standard output";

function codeOf(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === "string" ? code : undefined;
}

/** The nearest existing folder (or file) at or above `path`, and what it is. */
async function nearestExisting(path: string): Promise<{ path: string; isDirectory: boolean }> {
  for (let at = path; ; at = dirname(at)) {
    try {
      return { path: at, isDirectory: (await stat(at)).isDirectory() };
    } catch (error) {
      const code = codeOf(error);
      if ((code !== "ENOENT" && code !== "ENOTDIR") || dirname(at) === at) throw error;
    }
  }
}

async function writable(path: string): Promise<string | undefined> {
  try {
    await access(path, constants.W_OK | constants.X_OK);
    return undefined;
  } catch (error) {
    return codeOf(error) ?? String(error);
  }
}

/**
 * Checks at start-up, creating nothing, that `dir` (absolute) is a folder this process can write
 * into, or can be created as one. Throws a {@link UsageError} (exit 2) naming the folder and the
 * reason, so a receiver never waits for streams it could not keep.
 */
export async function checkOutFolder(dir: string): Promise<void> {
  let found: { path: string; isDirectory: boolean };
  try {
    found = await nearestExisting(dir);
  } catch (error) {
    throw new UsageError(`cannot use --out ${dir}: ${(error as Error).message}`, HINT);
  }
  if (found.path === dir) {
    if (!found.isDirectory) throw new UsageError(`--out ${dir} is a file, not a folder`, HINT);
    const problem = await writable(dir);
    if (problem) throw new UsageError(`cannot write into --out ${dir}: no permission (${problem})`, HINT);
    return;
  }
  if (!found.isDirectory) {
    throw new UsageError(`cannot create --out ${dir}: ${found.path} is a file, not a folder (ENOTDIR)`, HINT);
  }
  const problem = await writable(found.path);
  if (problem) throw new UsageError(`cannot create --out ${dir}: no permission to write in ${found.path} (${problem})`, HINT);
}

/** Creates `dir` (and its parents); called once the broker has answered, so a dead broker leaves nothing on disk. */
export async function createOutFolder(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true }).catch((error: unknown) => {
    throw new UsageError(`cannot create --out ${dir}: ${(error as Error).message}`, HINT);
  });
}
