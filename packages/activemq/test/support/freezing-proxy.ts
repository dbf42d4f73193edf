import { type AddressInfo, connect, createServer, type Socket } from "node:net";

/**
 * A loopback TCP proxy that can go silent without closing anything: a half-open connection, as
 * when a NAT or firewall drops state. `@stream/conformance`'s proxy only cuts connections.
 */
export interface FreezingProxy {
  readonly port: number;
  /** Connections accepted so far. */
  readonly accepted: number;
  /** Stops forwarding on the connections open now; they stay open, silent. New ones flow. */
  freeze(): void;
  close(): Promise<void>;
}

export async function createFreezingProxy(targetPort: number): Promise<FreezingProxy> {
  const pairs: Array<{ client: Socket; upstream: Socket; frozen: boolean }> = [];
  const server = createServer((client) => {
    const pair = { client, upstream: connect(targetPort, "127.0.0.1"), frozen: false };
    pairs.push(pair);
    client.on("data", (data) => void (pair.frozen || pair.upstream.write(data)));
    pair.upstream.on("data", (data) => void (pair.frozen || client.write(data)));
    for (const socket of [client, pair.upstream]) {
      socket.on("error", () => {});
      socket.on("close", () => {
        client.destroy();
        pair.upstream.destroy();
      });
    }
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    port: (server.address() as AddressInfo).port,
    get accepted() {
      return pairs.length;
    },
    freeze() {
      for (const pair of pairs) pair.frozen = true;
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const { client, upstream } of pairs) {
          client.destroy();
          upstream.destroy();
        }
        server.close(() => resolve());
      }),
  };
}
