import type { Readable } from "node:stream";
import { type BrokerTarget, parseBrokerUrl, type Redactor } from "../broker-url";
import { UsageError } from "../cli-errors";
import type { ModuleImporter } from "../broker-transport";
import type { FailureContext } from "../describe-failure";
import type { Output } from "../output";

/** What a command gets from `main`: its output, the process's streams and the stop signal. */
export interface CommandContext {
  readonly output: Output;
  readonly redactor: Redactor;
  readonly env: NodeJS.ProcessEnv;
  readonly stdin: Readable;
  readonly stdout: NodeJS.WriteStream;
  /** Aborted on the first SIGINT / SIGTERM. */
  readonly signal: AbortSignal;
  /** Filled in as the command learns it, so a failure message can name the broker and destination. */
  readonly failure: { -readonly [K in keyof FailureContext]: FailureContext[K] };
  /** Loads adapter packages; tests replace it. */
  readonly importer?: ModuleImporter;
}

/** Closes a client, but gives up after `ms`: a CLI must not hang on exit because a broker does. */
export async function closeWithin(close: () => Promise<void>, ms = 5000): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([
    close().catch(() => {}),
    new Promise<void>((resolve) => {
      timer = setTimeout(resolve, ms);
    }),
  ]);
  clearTimeout(timer);
}

/**
 * The `--broker` URL of a command, parsed: its secrets are redacted from everything printed from
 * now on, and a failure message will name the broker (without them).
 */
export function brokerOption(url: string | undefined, context: CommandContext): BrokerTarget {
  if (url === undefined) throw new UsageError("--broker <url> is required", "e.g. --broker amqp://127.0.0.1:5672; see `stream --help`");
  const broker = parseBrokerUrl(url, context.env);
  context.redactor.add(broker.secrets);
  context.failure.broker = broker.display;
  return broker;
}
