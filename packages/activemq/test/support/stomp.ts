import stompit from "stompit";

/** The plain STOMP client, connected straight to the broker: the second door tests read through. */
export function connectStomp(port = Number(process.env.STREAM_ACTIVEMQ_STOMP_PORT ?? 61613)): Promise<stompit.Client> {
  return new Promise((resolve, reject) => {
    stompit.connect({ host: "127.0.0.1", port, connectHeaders: { host: "localhost", "heart-beat": "0,0" } }, (error, client) => {
      if (error) reject(error);
      else resolve(client);
    });
  });
}

/** A MESSAGE as the plain client received it. */
export interface PlainMessage {
  readonly headers: Record<string, string | number | undefined>;
  readonly body: Buffer;
}

/** Takes `count` messages from `destination` with the plain client, acknowledging each. */
export function takeMessages(client: stompit.Client, destination: string, count: number, timeoutMs = 10_000): Promise<PlainMessage[]> {
  return new Promise((resolve, reject) => {
    const messages: PlainMessage[] = [];
    const timer = setTimeout(() => {
      subscription.unsubscribe();
      reject(new Error(`only ${messages.length} of ${count} messages arrived on ${destination}`));
    }, timeoutMs);
    const subscription = client.subscribe({ destination, ack: "client-individual" }, (error, message) => {
      if (error) return reject(error);
      const chunks: Buffer[] = [];
      message.on("data", (chunk: Buffer) => chunks.push(chunk));
      message.on("end", () => {
        client.ack(message);
        messages.push({ headers: (message as unknown as PlainMessage).headers, body: Buffer.concat(chunks) });
        if (messages.length === count) {
          clearTimeout(timer);
          subscription.unsubscribe();
          resolve(messages);
        }
      });
    });
  });
}

/** Sends one binary message with the plain client and waits for the broker's receipt. */
export function sendPlain(client: stompit.Client, headers: Record<string, string | number>, body: Buffer): Promise<void> {
  return new Promise((resolve, reject) => {
    const frame = client.send({ ...headers, "content-length": body.byteLength }, { onReceipt: () => resolve(), onError: reject });
    frame.end(body);
  });
}

/** Takes and acknowledges whatever `destination` holds, until it has been quiet for `quietMs`: tests leave no frames behind. */
export async function drainQueue(destination: string, quietMs = 300): Promise<number> {
  const client = await connectStomp();
  let count = 0;
  let last = Date.now();
  client.subscribe({ destination, ack: "client-individual" }, (error, message) => {
    if (error) return;
    message.on("data", () => {});
    message.on("end", () => {
      client.ack(message);
      count += 1;
      last = Date.now();
    });
  });
  while (Date.now() - last < quietMs) await new Promise((resolve) => setTimeout(resolve, 50));
  await new Promise<void>((resolve) => client.disconnect(() => resolve()));
  return count;
}
