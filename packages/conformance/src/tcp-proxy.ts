import { createServer, connect, type Socket } from "node:net";

/** A loopback TCP proxy in front of a broker, to drop connections for real in tests. */
export interface TcpProxy {
  /** The port clients connect to instead of the broker's. */
  readonly port: number;
  /** Connections currently open through the proxy. */
  readonly connectionCount: number;
  /** Destroys every open connection on both sides, as a network failure would. New ones are accepted. */
  dropConnections(): void;
  /**
   * An outage of `durationMs`: drops every open connection, then for that long closes each new
   * one as soon as it arrives (the client's reconnects fail), then accepts again. Resolves when
   * the outage is over.
   */
  cutFor(durationMs: number): Promise<void>;
  /** Whether the proxy is in an outage (see {@link TcpProxy.cutFor}). */
  readonly refusing: boolean;
  /** Stops accepting and drops what is open. */
  close(): Promise<void>;
}

/** Options of {@link createTcpProxy}. */
export interface TcpProxyOptions {
  readonly targetPort: number;
  /** @default "127.0.0.1" */
  readonly targetHost?: string;
  /** @default 0, any free port */
  readonly listenPort?: number;
}

/** Starts a TCP proxy on 127.0.0.1 that forwards to the broker. */
export async function createTcpProxy(options: TcpProxyOptions): Promise<TcpProxy> {
  const sockets = new Set<Socket>();
  let refusing = false;
  const server = createServer((client) => {
    if (refusing) {
      client.destroy();
      return;
    }
    const upstream = connect(options.targetPort, options.targetHost ?? "127.0.0.1");
    for (const socket of [client, upstream]) {
      sockets.add(socket);
      socket.on("close", () => sockets.delete(socket));
      socket.on("error", () => {
        client.destroy();
        upstream.destroy();
      });
    }
    client.pipe(upstream);
    upstream.pipe(client);
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.listenPort ?? 0, "127.0.0.1", () => resolve());
  });
  const address = server.address();
  if (address === null || typeof address === "string") throw new Error("[stream] [tcp-proxy] could not listen");
  const dropConnections = (): void => {
    for (const socket of sockets) socket.destroy();
    sockets.clear();
  };
  return {
    port: address.port,
    get connectionCount() {
      return sockets.size / 2;
    },
    dropConnections,
    get refusing() {
      return refusing;
    },
    async cutFor(durationMs) {
      refusing = true;
      dropConnections();
      await new Promise((resolve) => setTimeout(resolve, durationMs));
      refusing = false;
    },
    close: () =>
      new Promise<void>((resolve) => {
        dropConnections();
        server.close(() => resolve());
      }),
  };
}
