import { ExitCode, type ExitCodeValue } from "./exit-codes";

/**
 * An error the CLI raises itself, already knowing its exit code and what the user should do.
 * Errors from core and the adapters are classified by `describeFailure` instead.
 */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode: ExitCodeValue,
    /** What to do about it, one sentence. */
    readonly hint?: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = "CliError";
  }
}

/** Bad arguments: exit 2, with a pointer to `--help`. */
export class UsageError extends CliError {
  constructor(message: string, hint = "run `stream --help` for the commands and options") {
    super(message, ExitCode.Usage, hint);
    this.name = "UsageError";
  }
}
