import type { Readable } from "node:stream";
import { Redactor, PASSWORD_ENV } from "./broker-url";
import type { ModuleImporter } from "./broker-transport";
import { UsageError } from "./cli-errors";
import type { CommandContext } from "./commands/command-context";
import { demoCommand } from "./commands/demo-command";
import { lsCommand, resumeCommand } from "./commands/journal-commands";
import { keygenCommand } from "./commands/keygen-command";
import { receiveCommand } from "./commands/receive-command";
import { sendCommand } from "./commands/send-command";
import { describeFailure } from "./describe-failure";
import { ExitCode, type ExitCodeValue } from "./exit-codes";
import { MAIN_HELP } from "./help";
import { createOutput } from "./output";
import packageJson from "../package.json" with { type: "json" };

/** What `main` runs against; the defaults are the process's own. */
export interface MainOptions {
  readonly env?: NodeJS.ProcessEnv;
  readonly stdin?: Readable;
  readonly stdout?: NodeJS.WriteStream;
  readonly stderr?: NodeJS.WriteStream;
  /** Aborts the running command, as SIGINT / SIGTERM do. */
  readonly signal?: AbortSignal;
  readonly importer?: ModuleImporter;
}

const COMMANDS = {
  send: sendCommand,
  receive: receiveCommand,
  demo: demoCommand,
  ls: lsCommand,
  resume: resumeCommand,
  keygen: keygenCommand,
} as const;

/** Runs `stream <argv...>` and resolves with the exit code. Never rejects. */
export async function main(argv: string[], options: MainOptions = {}): Promise<ExitCodeValue> {
  const env = options.env ?? process.env;
  const stdout = options.stdout ?? process.stdout;
  const stderr = options.stderr ?? process.stderr;
  const redactor = new Redactor();
  redactor.add([env[PASSWORD_ENV] ?? ""]);
  const [command, ...args] = argv;
  const json = args.includes("--json");
  const output = createOutput({ json, redactor, stdout, stderr });
  const failure: CommandContext["failure"] = {};
  try {
    if (command === undefined || command === "--help" || command === "-h" || command === "help") {
      (command === undefined ? stderr : stdout).write(MAIN_HELP);
      return command === undefined ? ExitCode.Usage : ExitCode.Ok;
    }
    if (command === "--version" || command === "-v") {
      stdout.write(`${packageJson.version}\n`);
      return ExitCode.Ok;
    }
    const run = COMMANDS[command as keyof typeof COMMANDS];
    if (!Object.hasOwn(COMMANDS, command) || run === undefined) {
      throw new UsageError(`unknown command "${command}"`, "the commands are demo, send, receive, ls, resume and keygen; run `stream --help`");
    }
    return await run(args, {
      output,
      redactor,
      env,
      stdin: options.stdin ?? process.stdin,
      stdout,
      signal: options.signal ?? new AbortController().signal,
      failure,
      ...(options.importer ? { importer: options.importer } : {}),
    });
  } catch (error) {
    const described = describeFailure(error, failure);
    output.failure(described);
    return described.exitCode;
  } finally {
    output.close();
  }
}
