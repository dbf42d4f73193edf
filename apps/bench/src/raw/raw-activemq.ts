import stompit from "stompit";
import type { RawClient } from "./raw-client";

function connect(): Promise<stompit.Client> {
  return new Promise((resolve, reject) => {
    stompit.connect({ host: "127.0.0.1", port: 61613, connectHeaders: { host: "/", "heart-beat": "0,0" } }, (error, client) =>
      error ? reject(error) : resolve(client),
    );
  });
}

/**
 * stompit by hand: persistent SENDs to a queue, each resolved by the broker's RECEIPT; a
 * `client-individual` subscription with a prefetch of 16 that acknowledges each message once
 * it is written.
 */
export const rawActivemq: RawClient = {
  async openPublisher(destination) {
    const client = await connect();
    const pending = new Set<(error: Error) => void>();
    client.on("error", (error: Error) => {
      for (const reject of pending) reject(error);
    });
    return {
      publish: (body) =>
        new Promise<void>((resolve, reject) => {
          pending.add(reject);
          const frame = client.send(
            { destination: `/queue/${destination}`, "content-length": body.byteLength, persistent: "true" },
            // A connection error rejects every pending publish (above); no per-send error listener.
            {
              onReceipt: () => {
                pending.delete(reject);
                resolve();
              },
            } as stompit.Client.SendOptions,
          );
          frame.end(body);
        }),
      close: () => new Promise<void>((resolve) => client.disconnect(() => resolve())),
    };
  },
  async openConsumer(destination, _chunkBytes, onMessage, onError) {
    const client = await connect();
    client.on("error", onError);
    // A queue keeps what is sent before the subscription is live, so no receipt is awaited.
    client.subscribe({ destination: `/queue/${destination}`, ack: "client-individual", "activemq.prefetchSize": "16" }, (error, message) => {
      if (error) return onError(error);
      const parts: Buffer[] = [];
      message.on("data", (part: Buffer) => parts.push(part));
      message.on("end", () => void onMessage(Buffer.concat(parts), () => client.ack(message)));
    });
    return { close: () => new Promise<void>((resolve) => client.disconnect(() => resolve())) };
  },
};
