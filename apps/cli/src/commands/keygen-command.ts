import { E2eKeyring } from "@stream/core";
import { parseCommandArgs } from "../args";
import { ExitCode, type ExitCodeValue } from "../exit-codes";
import { KEYGEN_HELP } from "../help";
import type { CommandContext } from "./command-context";

/** `stream keygen [--id <keyId>]`: a new random key for `--e2e-key`, as a line of the key file. */
export async function keygenCommand(args: string[], context: CommandContext): Promise<ExitCodeValue> {
  const { values } = parseCommandArgs("keygen", args, { id: { type: "string" }, help: { type: "boolean", short: "h" } }, false);
  context.stdout.write(values.help ? KEYGEN_HELP : `${E2eKeyring.generate(values.id)}\n`);
  return ExitCode.Ok;
}
