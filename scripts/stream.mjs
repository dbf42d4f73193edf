// `pnpm stream <command> ...` from the repository: runs the built CLI (apps/cli/dist) with the
// arguments as given. pnpm runs root scripts in the root; INIT_CWD is the folder the user typed
// the command in, so relative paths (`send ./f`, `--out ./inbox`) mean what the user meant.
import { existsSync } from "node:fs";

const cli = new URL("../apps/cli/dist/cli.mjs", import.meta.url);
if (!existsSync(cli)) {
  process.stderr.write("stream: the CLI is not built yet (apps/cli/dist/cli.mjs is missing)\n  what to do: run `pnpm build` in the repository first\n");
  process.exit(1);
}
if (process.env.INIT_CWD) process.chdir(process.env.INIT_CWD);
await import(cli.href);
