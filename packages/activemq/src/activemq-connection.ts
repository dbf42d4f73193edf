import type { ConnectionOptions } from "node:tls";
import { type ConnectionSupervisorOptions, nodeTlsOptions, PendingCall } from "@stream/core/adapter-kit";
import { TransportError } from "@stream/core";
import stompit from "stompit";
import { activemqErrors, toTransportError } from "./activemq-errors";
import type { ActivemqStompClient, ActivemqTransportOptions } from "./activemq-transport-options";

const DEFAULT_URL = "stomp://127.0.0.1:61613";
/** How long `close()` waits for the broker's DISCONNECT receipt before cutting the socket. */
const DISCONNECT_TIMEOUT_MS = 5_000;

/** One STOMP connection and the publishes waiting for its receipts. */
export class Connection {
  alive = true;
  /** Rejecters of everything waiting on a receipt from this connection. */
  readonly waiting = new Set<(error: TransportError) => void>();
  #lost: (error: Error) => void = ignore;
  private readonly onError = (error?: Error): void => this.#lost(error ?? new Error("the STOMP client failed"));
  private readonly onEnd = (): void => this.#lost(new Error("the broker closed the connection"));

  constructor(
    readonly client: ActivemqStompClient,
    /** Whether the transport created this client and so disconnects it. */
    readonly owned: boolean,
  ) {}

  /** Calls `lost` when the client fails or the broker ends the connection; returns a function that stops it. */
  watch(lost: (error: Error) => void): () => void {
    this.#lost = lost;
    this.client.on("error", this.onError);
    this.client.on("end", this.onEnd);
    return () => this.unwatch();
  }

  private unwatch(): void {
    this.client.removeListener("error", this.onError);
    this.client.removeListener("end", this.onEnd);
  }

  /** Stops listening to the client; what still waits on it fails with `error`. */
  retire(error: TransportError): void {
    if (!this.alive) return;
    this.alive = false;
    this.unwatch();
    // An owned client may still emit a late error (a write after the socket died); without a
    // listener Node would throw it.
    if (this.owned) this.client.on("error", ignore);
    for (const reject of this.waiting) reject(error);
    this.waiting.clear();
  }

  /** Sends a frame and resolves on the broker's RECEIPT for it. */
  sendWithReceipt(
    command: "SEND" | "SUBSCRIBE",
    headers: Record<string, string | number>,
    body: Buffer | undefined,
    signal?: AbortSignal,
  ): Promise<void> {
    if (signal?.aborted) return Promise.reject(signal.reason);
    let flushed = false;
    // Once publish settles core may reuse the frame's buffer, so an abort waits until the body
    // has been handed to the socket (a dead connection discards what it had not sent).
    const call = new PendingCall(signal, (reason) => flushed && call.reject(reason));
    const fail = (error: TransportError): void => call.reject(error);
    this.waiting.add(fail);
    call.onSettled(() => this.waiting.delete(fail));
    const options = { onReceipt: () => call.resolve() };
    const out = command === "SEND" ? this.client.send(headers, options) : this.client.sendFrame(command, headers, options);
    // A write error also destroys the client, which retires this connection.
    out.on("error", (error: Error) => call.reject(toTransportError(`writing a ${command} frame failed`, error)));
    out.end(body, () => {
      flushed = true;
      if (signal?.aborted) call.reject(signal.reason);
    });
    return call.promise;
  }
}

/** What opening a connection needs, read from the options once. */
export interface ConnectionSettings {
  readonly reconnect: boolean;
  readonly reconnectInitialDelayMs: number;
  readonly reconnectMaxDelayMs: number;
  readonly connectTimeoutMs: number;
  readonly heartbeatMs: number;
}

/**
 * How `@stream/core`'s `ConnectionSupervisor` opens, watches and closes a STOMP connection:
 * stompit from `url`, a client factory (reconnectable), or a ready client (never reopened).
 * `onLost` hears each drop first, to detach what used the connection.
 */
export function activemqConnectionOptions(
  options: ActivemqTransportOptions,
  settings: ConnectionSettings,
  onLost: (connection: Connection, error: TransportError) => void,
  onFailed: (error: TransportError) => void,
): ConnectionSupervisorOptions<Connection> {
  const endpoint = parseEndpoint(options);
  const injected = options.client !== undefined && typeof options.client !== "function";
  return {
    name: "activemq",
    async open() {
      const given = options.client;
      if (typeof given === "function") return new Connection(await given(), true);
      if (given !== undefined) return new Connection(given, false);
      return new Connection(await connectStompit(options, endpoint, settings), true);
    },
    onLost: (connection, lost) => connection.watch(lost),
    onDisconnect(connection, cause) {
      const error = toTransportError("the connection to the broker was lost", cause);
      connection.retire(error);
      if (connection.owned) connection.client.destroy();
      onLost(connection, error);
    },
    close: release,
    reconnect: settings.reconnect
      ? { initialDelayMs: settings.reconnectInitialDelayMs, maxDelayMs: settings.reconnectMaxDelayMs }
      : (cause) => {
          const failure = toTransportError(
            "the connection to the broker was lost",
            cause,
            false,
            injected
              ? "an injected client cannot be reconnected; pass a function returning a client instead, or create a new transport"
              : "reconnect is off; create a new transport",
          );
          onFailed(failure);
          return failure;
        },
    toError: toTransportError,
  };
}

/** Lets go of a connection: disconnects it when the transport owns it. */
async function release(connection: Connection): Promise<void> {
  if (!connection.alive) return;
  const closed = activemqErrors.error("the transport was closed before the broker's receipt", false);
  if (!connection.owned) {
    connection.retire(closed);
    return;
  }
  const { client } = connection;
  // DISCONNECT's receipt comes after every earlier frame's, so publishes in flight settle first.
  await new Promise<void>((resolve) => {
    const done = (): void => {
      clearTimeout(timer);
      connection.retire(closed);
      resolve();
    };
    const timer = setTimeout(() => {
      client.destroy();
      done();
    }, DISCONNECT_TIMEOUT_MS);
    client.disconnect(done);
  });
}

function connectStompit(options: ActivemqTransportOptions, endpoint: Endpoint, settings: ConnectionSettings): Promise<ActivemqStompClient> {
  const { host, port, tls, login, passcode } = endpoint;
  const heartbeat = `${settings.heartbeatMs},${settings.heartbeatMs}`;
  const connectHeaders: Record<string, string> = { host: options.virtualHost ?? host, "heart-beat": heartbeat };
  if (login !== undefined) connectHeaders.login = login;
  if (passcode !== undefined) connectHeaders.passcode = passcode;
  return new Promise<ActivemqStompClient>((resolve, reject) => {
    const client = stompit.connect({
      host,
      port,
      ...(tls ? { ssl: true as const, ...tls } : {}),
      timeout: settings.connectTimeoutMs,
      connectHeaders,
    } as stompit.connect.ConnectOptions);
    const timer = setTimeout(() => {
      client.destroy(client.createTransportError(`no CONNECTED frame within ${settings.connectTimeoutMs} ms`));
    }, settings.connectTimeoutMs);
    const onError = (error: Error): void => {
      clearTimeout(timer);
      client.removeListener("connect", onConnect);
      client.on("error", ignore);
      reject(error);
    };
    const onConnect = (): void => {
      clearTimeout(timer);
      // Listeners are swapped in one tick: an 'error' with no listener would throw.
      client.on("error", ignore);
      client.removeListener("error", onError);
      resolve(client as unknown as ActivemqStompClient);
    };
    client.on("error", onError);
    client.once("connect", onConnect);
  });
}

interface Endpoint {
  readonly host: string;
  readonly port: number;
  /** Node's TLS options, for a `stomp+ssl://` URL. */
  readonly tls: ConnectionOptions | undefined;
  readonly login: string | undefined;
  readonly passcode: string | undefined;
}

/** Reads `url` (and `login`/`passcode`) once, so a malformed URL fails at creation, not per connect. */
export function parseEndpoint(options: ActivemqTransportOptions): Endpoint {
  let url: URL;
  try {
    url = new URL(options.url ?? DEFAULT_URL);
  } catch (cause) {
    throw new TypeError(`[stream] [activemq] url ${JSON.stringify(options.url)} is not a URL; use stomp://host:61613.`, { cause });
  }
  const ssl = url.protocol === "stomp+ssl:" || url.protocol === "stomp+tls:" || url.protocol === "ssl:";
  if (!ssl && url.protocol !== "stomp:" && url.protocol !== "tcp:") {
    throw new TypeError(`[stream] [activemq] unsupported URL scheme ${url.protocol} in ${url.href}; use stomp:// or stomp+ssl://.`);
  }
  if (options.tls && !ssl) throw new TypeError(`[stream] [activemq] tls is given but ${url.protocol}// is not TLS; use stomp+ssl://.`);
  const host = url.hostname.replace(/^\[|\]$/g, "") || "127.0.0.1";
  return {
    host,
    port: url.port === "" ? 61613 : Number(url.port),
    tls: ssl ? nodeTlsOptions("activemq", options.tls ?? {}, host) : undefined,
    login: options.login ?? (url.username === "" ? undefined : decodeURIComponent(url.username)),
    passcode: options.passcode ?? (url.password === "" ? undefined : decodeURIComponent(url.password)),
  };
}


function ignore(): void {}
