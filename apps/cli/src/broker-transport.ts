import type { Transport } from "@stream/core";
import { type BrokerKind, type BrokerTarget, formatHost } from "./broker-url";
import { CliError } from "./cli-errors";
import { ExitCode } from "./exit-codes";

/** The adapter package of each broker and the client library it needs beside it. */
export const ADAPTERS: Readonly<Record<BrokerKind, { readonly packageName: string; readonly clientPackage: string }>> = {
  rabbitmq: { packageName: "@stream/rabbitmq", clientPackage: "amqplib" },
  activemq: { packageName: "@stream/activemq", clientPackage: "stompit" },
  mqtt: { packageName: "@stream/mqtt", clientPackage: "mqtt" },
  kafka: { packageName: "@stream/kafka", clientPackage: "@platformatic/kafka" },
};

/** How long a first connection may take before the CLI calls the broker unreachable. */
export const CONNECT_TIMEOUT_MS = 10_000;

/** Imports a module by name; replaced in tests to play a missing package. */
export type ModuleImporter = (specifier: string) => Promise<Record<string, unknown>>;

// Each adapter is imported by name only when its scheme is used, so a user installs just the
// adapter (and broker client) they need. The literal specifiers keep bundlers and tsup honest.
const defaultImporter: ModuleImporter = (specifier) => {
  switch (specifier) {
    case "@stream/rabbitmq":
      return import("@stream/rabbitmq") as Promise<Record<string, unknown>>;
    case "@stream/activemq":
      return import("@stream/activemq") as Promise<Record<string, unknown>>;
    case "@stream/mqtt":
      return import("@stream/mqtt") as Promise<Record<string, unknown>>;
    case "@stream/kafka":
      return import("@stream/kafka") as Promise<Record<string, unknown>>;
    default:
      return import(specifier) as Promise<Record<string, unknown>>;
  }
};

/** Adapter options, per broker, built from a parsed URL. Plain objects: the adapters' own types stay theirs. */
export function adapterOptions(target: BrokerTarget): Record<string, unknown> {
  const [first] = target.hosts;
  const hostPort = first ? formatHost(first) : "";
  // Every adapter takes core's TlsOptions as `tls` (a TLS scheme without --ca: Node's trusted CAs).
  const tls = target.tls ? { tls: target.tlsOptions ?? {} } : {};
  switch (target.kind) {
    case "rabbitmq": {
      const auth =
        target.username === undefined && target.password === undefined
          ? ""
          : `${encodeURIComponent(target.username ?? "guest")}:${encodeURIComponent(target.password ?? "")}@`;
      const query = target.params.toString();
      return {
        url: `${target.scheme}://${auth}${hostPort}${target.path}${query ? `?${query}` : ""}`,
        socketOptions: { timeout: CONNECT_TIMEOUT_MS },
        ...tls,
      };
    }
    case "activemq":
      return {
        url: `${target.tls ? "stomp+ssl" : "stomp"}://${hostPort}`,
        ...(target.username === undefined ? {} : { login: target.username }),
        ...(target.password === undefined ? {} : { passcode: target.password }),
        connectTimeoutMs: CONNECT_TIMEOUT_MS,
        ...tls,
      };
    case "mqtt":
      return {
        url: `${target.scheme}://${hostPort}`,
        clientOptions: {
          ...(target.username === undefined ? {} : { username: target.username }),
          ...(target.password === undefined ? {} : { password: target.password }),
        },
        connectTimeoutMs: CONNECT_TIMEOUT_MS,
        ...tls,
      };
    case "kafka": {
      const mechanism = target.params.get("mechanism")?.toUpperCase() ?? "PLAIN";
      return {
        brokers: target.hosts.map(formatHost),
        ...tls,
        platformatic: {
          clientId: "stream-cli",
          connectTimeout: CONNECT_TIMEOUT_MS,
          // A CLI says a broker is unreachable after a few seconds, not after a long retry.
          retries: 2,
          retryDelay: 200,
          ...(target.username !== undefined || target.password !== undefined
            ? { sasl: { mechanism, username: target.username ?? "", password: target.password ?? "" } }
            : {}),
        },
      };
    }
  }
}

function isModuleNotFound(error: unknown): error is Error & { code: string } {
  const code = (error as { code?: unknown } | null)?.code;
  return code === "ERR_MODULE_NOT_FOUND" || code === "MODULE_NOT_FOUND";
}

/**
 * Creates the transport for a broker URL: imports the scheme's adapter package and calls its
 * `createXTransport`. A missing adapter or broker client is a {@link CliError} (exit 8) naming
 * what to install.
 */
export async function createBrokerTransport(target: BrokerTarget, importer: ModuleImporter = defaultImporter): Promise<Transport> {
  const { packageName, clientPackage } = ADAPTERS[target.kind];
  let adapter: Record<string, unknown>;
  try {
    adapter = await importer(packageName);
  } catch (error) {
    if (!isModuleNotFound(error)) throw error;
    const missing = error.message.includes(`'${clientPackage}'`) || error.message.includes(`"${clientPackage}"`) ? clientPackage : packageName;
    throw new CliError(
      `${target.scheme}:// needs the ${missing} package, which is not installed`,
      ExitCode.AdapterMissing,
      `install the adapter and its broker client: npm install ${packageName} ${clientPackage}`,
      { cause: error },
    );
  }
  // Looked up without regard to case: the adapters spell their brokers their own way
  // (createRabbitmqTransport, createActivemqTransport).
  const wanted = `create${target.kind}transport`;
  const factoryName = Object.keys(adapter).find((name) => name.toLowerCase() === wanted);
  const factory = factoryName === undefined ? undefined : adapter[factoryName];
  if (typeof factory !== "function") {
    throw new CliError(
      `${packageName} exports no create...Transport function for ${target.kind}; this CLI and the adapter do not match`,
      ExitCode.AdapterMissing,
      `install matching versions of @stream/cli and ${packageName}`,
    );
  }
  return (factory as (options: Record<string, unknown>) => Transport)(adapterOptions(target));
}
