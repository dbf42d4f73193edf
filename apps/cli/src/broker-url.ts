import type { TlsOptions } from "@stream/core";
import { UsageError } from "./cli-errors";

/** The brokers the CLI speaks to, named like their adapter packages. */
export type BrokerKind = "activemq" | "rabbitmq" | "mqtt" | "kafka";

/** One `host:port` of a broker URL; `host` is bare (no IPv6 brackets). */
export interface BrokerHost {
  readonly host: string;
  readonly port: number;
}

/** A parsed `--broker` URL, credentials resolved, ready to become a transport. */
export interface BrokerTarget {
  readonly kind: BrokerKind;
  /** The scheme as given, lower-case: `amqp`, `amqps`, `stomp`, `stomp+ssl`, `mqtt`, `mqtts`, `kafka`, `kafka+ssl`. */
  readonly scheme: string;
  /** Whether the scheme asks for TLS. */
  readonly tls: boolean;
  /** One host, or several for Kafka's bootstrap list. */
  readonly hosts: readonly BrokerHost[];
  readonly username?: string;
  readonly password?: string;
  /** AMQP: the URL's path, still percent-encoded (`/` or `/%2F` is the default vhost). */
  readonly path: string;
  /** The query parameters as given. */
  readonly params: URLSearchParams;
  /** The URL with credentials replaced by `***`: the only form of it the CLI ever prints. */
  readonly display: string;
  /** Strings never to print (the password in its given and decoded forms). */
  readonly secrets: readonly string[];
  /** `--ca`, `--cert`, `--cert-key`, `--insecure-skip-verify`, files read (TLS schemes only). */
  readonly tlsOptions?: TlsOptions;
}

/** Environment variables that supply credentials the URL leaves out. */
export const USER_ENV = "STREAM_BROKER_USER";
export const PASSWORD_ENV = "STREAM_BROKER_PASSWORD";

interface SchemeInfo {
  readonly kind: BrokerKind;
  readonly tls: boolean;
  readonly defaultPort: number;
  /** Query parameters the scheme accepts; anything else is a usage error rather than ignored. */
  readonly params: "any" | readonly string[];
}

const SCHEMES: Readonly<Record<string, SchemeInfo>> = {
  amqp: { kind: "rabbitmq", tls: false, defaultPort: 5672, params: "any" },
  amqps: { kind: "rabbitmq", tls: true, defaultPort: 5671, params: "any" },
  stomp: { kind: "activemq", tls: false, defaultPort: 61613, params: [] },
  "stomp+ssl": { kind: "activemq", tls: true, defaultPort: 61614, params: [] },
  stomps: { kind: "activemq", tls: true, defaultPort: 61614, params: [] },
  mqtt: { kind: "mqtt", tls: false, defaultPort: 1883, params: [] },
  mqtts: { kind: "mqtt", tls: true, defaultPort: 8883, params: [] },
  kafka: { kind: "kafka", tls: false, defaultPort: 9092, params: ["mechanism"] },
  "kafka+ssl": { kind: "kafka", tls: true, defaultPort: 9093, params: ["mechanism"] },
  kafkas: { kind: "kafka", tls: true, defaultPort: 9093, params: ["mechanism"] },
};

/** The URL forms `--help` and errors show. */
export const BROKER_URL_FORMS = [
  "amqp://[user:pass@]host[:5672][/vhost]   (amqps:// for TLS)      RabbitMQ",
  "stomp://[user:pass@]host[:61613]        (stomp+ssl:// for TLS)  ActiveMQ",
  "mqtt://[user:pass@]host[:1883]          (mqtts:// for TLS)      MQTT (Mosquitto, ...)",
  "kafka://[user:pass@]host[:9092][,host2:9092][?mechanism=plain|scram-sha-256|scram-sha-512]  (kafka+ssl://)  Kafka",
] as const;

const URL_SHAPE = /^([A-Za-z][A-Za-z0-9+.-]*):\/\/(?:([^@/?#]*)@)?([^/?#]*)([^?#]*)(?:\?([^#]*))?(?:#.*)?$/;

function decode(part: string, what: string): string {
  try {
    return decodeURIComponent(part);
  } catch {
    throw new UsageError(`the broker URL's ${what} is not valid percent-encoding`, "encode special characters, e.g. @ as %40, or use STREAM_BROKER_USER / STREAM_BROKER_PASSWORD");
  }
}

function parseHost(text: string, defaultPort: number, display: string): BrokerHost {
  const match = /^(?:\[([0-9A-Fa-f:.]+)\]|([^:[\]]+))(?::(\d{1,5}))?$/.exec(text);
  if (!match) throw new UsageError(`the broker URL ${display} has no valid host:port ("${text}")`, brokerHint());
  const host = (match[1] ?? match[2]) as string;
  const port = match[3] === undefined ? defaultPort : Number(match[3]);
  if (port < 1 || port > 65535) throw new UsageError(`the broker URL ${display} has port ${port}, outside 1-65535`, brokerHint());
  return { host, port };
}

function brokerHint(): string {
  return `write it as one of:\n  ${BROKER_URL_FORMS.join("\n  ")}`;
}

/**
 * Parses a `--broker` URL per its broker's convention and resolves the credentials: the URL's
 * user and password, else {@link USER_ENV} / {@link PASSWORD_ENV}. Throws a `UsageError` (exit 2)
 * that never quotes the credentials.
 */
export function parseBrokerUrl(input: string, env: NodeJS.ProcessEnv = process.env): BrokerTarget {
  const match = URL_SHAPE.exec(input.trim());
  // Nothing of the input is echoed until its user-info is masked.
  if (!match) {
    throw new UsageError(`the broker URL ${redactUrls(input)} is not a URL of the form scheme://host:port`, brokerHint());
  }
  const [, rawScheme = "", userInfo, hostPart = "", path = "", query = ""] = match;
  const scheme = rawScheme.toLowerCase();
  const display = `${scheme}://${userInfo === undefined ? "" : "***@"}${hostPart}${path}${query ? `?${query}` : ""}`;
  const info = SCHEMES[scheme];
  if (!info) {
    throw new UsageError(`the broker URL ${display} has the scheme "${scheme}", which no adapter speaks`, brokerHint());
  }
  const hostTexts = hostPart.split(",");
  if (hostTexts.length > 1 && info.kind !== "kafka") {
    throw new UsageError(`the broker URL ${display} lists several hosts; only kafka:// takes a list`, brokerHint());
  }
  const hosts = hostTexts.map((text) => parseHost(text, info.defaultPort, display));
  if (info.kind !== "rabbitmq" && path !== "" && path !== "/") {
    throw new UsageError(`the broker URL ${display} has a path (${path}); only amqp:// URLs take one (the vhost)`, brokerHint());
  }
  const params = new URLSearchParams(query);
  if (info.params !== "any") {
    for (const key of params.keys()) {
      if (!info.params.includes(key)) {
        throw new UsageError(
          `the broker URL ${display} has the option "${key}", which ${scheme}:// does not take`,
          info.params.length ? `${scheme}:// takes: ${info.params.join(", ")}` : `remove the ?${key}= part`,
        );
      }
    }
  }
  let username: string | undefined;
  let password: string | undefined;
  if (userInfo !== undefined) {
    const colon = userInfo.indexOf(":");
    username = decode(colon < 0 ? userInfo : userInfo.slice(0, colon), "user name");
    if (colon >= 0) password = decode(userInfo.slice(colon + 1), "password");
  }
  if (!username) username = env[USER_ENV] || undefined;
  if (password === undefined || password === "") password = env[PASSWORD_ENV] || undefined;
  const mechanism = params.get("mechanism")?.toLowerCase();
  if (mechanism !== undefined && !["plain", "scram-sha-256", "scram-sha-512"].includes(mechanism)) {
    throw new UsageError(`the broker URL ${display} asks for SASL mechanism "${mechanism}"`, "use mechanism=plain, scram-sha-256 or scram-sha-512");
  }
  const secrets = new Set<string>();
  if (password) {
    secrets.add(password);
    secrets.add(encodeURIComponent(password));
  }
  if (userInfo?.includes(":")) secrets.add(userInfo);
  return {
    kind: info.kind,
    scheme,
    tls: info.tls,
    hosts,
    ...(username === undefined ? {} : { username }),
    ...(password === undefined ? {} : { password }),
    path,
    params,
    display,
    secrets: [...secrets],
  };
}

/** `host:port`, with brackets for IPv6. */
export function formatHost({ host, port }: BrokerHost): string {
  return `${host.includes(":") ? `[${host}]` : host}:${port}`;
}

/**
 * Masks the user-info of every `scheme://user:pass@` in `text`. A safety net under
 * {@link Redactor}: a broker client may quote a URL the CLI never saw in that form. The
 * placeholder of {@link BROKER_URL_FORMS}, `scheme://[user:pass@]host`, is left as written
 * (brackets are not allowed in a URL's user-info, so no real credentials look like it).
 */
export function redactUrls(text: string): string {
  return text.replace(/\b([A-Za-z][A-Za-z0-9+.-]*:\/\/)(?!\[[^\]\s@]*@\])[^@\s/?#"'<>]*@/g, "$1***@");
}

/**
 * Removes credentials from everything the CLI prints: the broker's password in any form it was
 * given, and the user-info of any URL. Every line to stdout or stderr goes through one.
 */
export class Redactor {
  private readonly secrets: string[] = [];

  /** Adds strings never to print. Strings under 3 characters are left (masking them would garble every message). */
  add(secrets: Iterable<string>): void {
    for (const secret of secrets) {
      if (secret.length >= 3 && !this.secrets.includes(secret)) this.secrets.push(secret);
    }
    // Longest first, so a secret that contains another is masked whole.
    this.secrets.sort((a, b) => b.length - a.length);
  }

  /** `text` with every secret replaced by `***`. */
  redact(text: string): string {
    let out = redactUrls(text);
    for (const secret of this.secrets) out = out.split(secret).join("***");
    return out;
  }
}
