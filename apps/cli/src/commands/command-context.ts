import { readFileSync } from "node:fs";
import type { Readable } from "node:stream";
import type { TlsOptions } from "@stream/core";
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

/** The options of every command that connects to a broker: `--broker` and its TLS files. */
export const BROKER_OPTIONS = {
  broker: { type: "string" },
  ca: { type: "string" },
  cert: { type: "string" },
  "cert-key": { type: "string" },
  "insecure-skip-verify": { type: "boolean" },
} as const;

/** The values of {@link BROKER_OPTIONS} as `parseArgs` gives them. */
export interface BrokerOptionValues {
  readonly broker?: string | undefined;
  readonly ca?: string | undefined;
  readonly cert?: string | undefined;
  readonly "cert-key"?: string | undefined;
  readonly "insecure-skip-verify"?: boolean | undefined;
}

function readPem(file: string, option: string): string {
  try {
    return readFileSync(file, "utf8");
  } catch (error) {
    throw new UsageError(`${option} ${file} cannot be read (${(error as NodeJS.ErrnoException).code ?? String(error)})`, `give a PEM file, e.g. ${option} ./ca.pem`);
  }
}

/** The TLS settings of `values`, files read; undefined when none is given. Usage errors for a plain scheme or a certificate without its key. */
function tlsOption(values: BrokerOptionValues, broker: BrokerTarget, context: CommandContext): TlsOptions | undefined {
  const given = (["ca", "cert", "cert-key", "insecure-skip-verify"] as const).filter((name) => values[name] !== undefined && values[name] !== false);
  if (given.length === 0) return undefined;
  if (!broker.tls) {
    throw new UsageError(
      `--${given[0]} is for a TLS connection, but ${broker.scheme}:// is not one`,
      "use the scheme's TLS form (amqps://, stomp+ssl://, mqtts://, kafka+ssl://) and the broker's TLS port",
    );
  }
  if ((values.cert === undefined) !== (values["cert-key"] === undefined)) {
    throw new UsageError("--cert and --cert-key go together", "give the client certificate and its private key, both PEM (mutual TLS)");
  }
  const verify = values["insecure-skip-verify"] !== true;
  if (!verify) {
    context.output.note(
      `WARNING: --insecure-skip-verify: the broker's certificate is NOT checked; anyone between here and ${broker.display} can read and change the file and the password. Use it with a test broker only; pass --ca <file> instead.`,
    );
  }
  return {
    ...(values.ca === undefined ? {} : { ca: readPem(values.ca, "--ca") }),
    ...(values.cert === undefined ? {} : { cert: readPem(values.cert, "--cert") }),
    ...(values["cert-key"] === undefined ? {} : { key: readPem(values["cert-key"], "--cert-key") }),
    verify,
  };
}

/**
 * The `--broker` URL of a command, parsed (with the TLS files of `values`): its secrets are
 * redacted from everything printed from now on, and a failure message will name the broker
 * (without them).
 *
 * @param url `--broker`, or the broker a journal recorded.
 */
export function brokerOption(url: string | undefined, context: CommandContext, values: BrokerOptionValues = {}): BrokerTarget {
  if (url === undefined) throw new UsageError("--broker <url> is required", "e.g. --broker amqp://127.0.0.1:5672; see `stream --help`");
  const broker = parseBrokerUrl(url, context.env);
  context.redactor.add(broker.secrets);
  context.failure.broker = broker.display;
  const tls = tlsOption(values, broker, context);
  return tls === undefined ? broker : { ...broker, tlsOptions: tls };
}
