import { connect } from "amqplib";
import { type ConnectionSupervisorOptions, nodeTlsOptions, withTimeout } from "@stream/core/adapter-kit";
import type { RabbitmqConnection } from "./rabbitmq-client";
import { toTransportError, transportError } from "./rabbitmq-errors";
import type { Publisher } from "./rabbitmq-publisher";
import type { RabbitmqTransportOptions } from "./rabbitmq-transport-options";

const DEFAULT_URL = "amqp://127.0.0.1:5672";
/** How long `close()` waits for frames the broker has not confirmed yet. */
const CLOSE_CONFIRM_WAIT_MS = 5_000;

/**
 * One connection's worth of state. A reconnect makes a new session; nothing of an old one
 * (channels, declarations, pending confirms) is reused.
 */
export class Session {
  alive = true;
  /** The error the connection reported before it closed. */
  cause: unknown;
  /** Destination queues declared on this connection, and the inbox exchange under `""`. */
  readonly declared = new Map<string, Promise<void>>();
  publisher: Publisher | undefined;
  publisherOpening: Promise<Publisher> | undefined;

  constructor(
    readonly connection: RabbitmqConnection,
    /** Whether the transport created this connection and so closes it. */
    readonly owned: boolean,
  ) {}

  /** Marks the session dead and fails the frames still waiting for a confirm on it. */
  lost(cause: unknown): void {
    this.alive = false;
    this.cause = cause;
    const error = toTransportError("the connection to RabbitMQ dropped before the broker confirmed the frame", cause ?? "connection closed", true);
    for (const job of this.publisher?.pending ?? []) job.reject(error);
    this.publisher?.pending.clear();
  }
}

/** The host of an AMQP URL or connect options, for the TLS server name. */
function urlHost(url: NonNullable<RabbitmqTransportOptions["url"]>): string {
  if (typeof url !== "string") return url.hostname ?? "localhost";
  return URL.canParse(url) ? new URL(url).hostname.replace(/^\[|\]$/g, "") : "localhost";
}

/**
 * How `@stream/core`'s `ConnectionSupervisor` opens, watches and closes a RabbitMQ connection:
 * from `url`, from a factory (reconnectable), or a ready connection (used once, never reopened).
 */
export function rabbitmqConnectionOptions(
  options: RabbitmqTransportOptions,
  report: (error: Error) => void,
): ConnectionSupervisorOptions<Session> {
  const source = options.connection;
  const ready = source !== undefined && typeof source !== "function";
  const url = options.url ?? DEFAULT_URL;
  // Made once (its warning, when checks are off, too), for every reconnect.
  const tls = options.tls === undefined || source !== undefined ? {} : nodeTlsOptions("rabbitmq", options.tls, urlHost(url));
  let readyUsed = false;
  const readyLost = (cause: unknown): Error =>
    transportError(
      "the connection passed as `connection` has closed, and the transport cannot re-open a connection it was given; pass a factory (`connection: () => amqplib.connect(url)`) or `url` to let it reconnect",
      false,
      cause,
    );
  return {
    name: "rabbitmq",
    async open() {
      if (ready) {
        if (readyUsed) throw readyLost(undefined);
        readyUsed = true;
        return new Session(source, false);
      }
      if (typeof source === "function") return new Session(await source(), true);
      const socketOptions = {
        ...tls,
        ...options.socketOptions,
        clientProperties: { connection_name: "@stream/rabbitmq", ...(options.socketOptions?.clientProperties as object) },
      };
      return new Session((await connect(url, socketOptions)) as unknown as RabbitmqConnection, true);
    },
    onLost(session, lost) {
      const onError = (error: unknown) => {
        session.cause = error;
      };
      const onClose = (error?: unknown) => lost(error ?? session.cause);
      session.connection.on("error", onError);
      session.connection.on("close", onClose);
      return () => {
        session.connection.removeListener("error", onError);
        session.connection.removeListener("close", onClose);
      };
    },
    onDisconnect: (session, cause) => session.lost(cause),
    close: releaseSession,
    reconnect: ready
      ? readyLost
      : {
          initialDelayMs: options.reconnectInitialDelayMs ?? 100,
          maxDelayMs: options.reconnectMaxDelayMs ?? 5_000,
          maxAttempts: options.reconnectMaxAttempts ?? Number.POSITIVE_INFINITY,
        },
    toError: toTransportError,
    report,
  };
}

/** Lets frames already on the wire be confirmed (up to 5 s), then closes the connection if it is ours. */
async function releaseSession(session: Session): Promise<void> {
  const pending = [...(session.publisher?.pending ?? [])].map((job) => job.promise);
  if (pending.length > 0) await withTimeout(Promise.allSettled(pending), CLOSE_CONFIRM_WAIT_MS).catch(() => {});
  session.alive = false;
  if (session.owned) await session.connection.close().catch(() => {});
  else await session.publisher?.channel.close().catch(() => {});
}
