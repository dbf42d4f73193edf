import { existsSync, readdirSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

/** The repository's root folder. */
export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../../..");

/** Every README the tests run, repo-relative: the root's, then each package's and app's. */
export function findReadmes(): string[] {
  const readmes = ["README.md"];
  for (const group of ["packages", "apps"]) {
    for (const name of readdirSync(join(REPO_ROOT, group)).sort()) {
      const readme = join(group, name, "README.md");
      if (existsSync(join(REPO_ROOT, readme))) readmes.push(readme);
    }
  }
  return readmes;
}
