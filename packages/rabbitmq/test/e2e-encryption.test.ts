import { createHash, randomBytes } from "node:crypto";
import { createStreamClient, type E2eKey, e2eKey, type IncomingStream, type StreamClient } from "@stream/core";
import { afterEach, describe, expect, test } from "vitest";
import { createRabbitmqTransport } from "../src/index";
import { RABBITMQ_URL, deleteQueues, freshName, plainConnection } from "./helpers";

// End-to-end encryption checked through a second door: what RabbitMQ stores of an encrypted
// stream, read with plain amqplib, holds neither the content nor the file name.

const clients: StreamClient[] = [];
const queues: string[] = [];
const sha256 = (bytes: Uint8Array) => createHash("sha256").update(bytes).digest("hex");

function client(): StreamClient {
  const created = createStreamClient({ transport: createRabbitmqTransport({ url: RABBITMQ_URL }) });
  clients.push(created);
  return created;
}

afterEach(async () => {
  await Promise.allSettled(clients.splice(0).map((c) => c.close()));
  await deleteQueues(...queues.splice(0));
});

describe("end-to-end encryption on RabbitMQ", () => {
  test("the stored frames of an encrypted stream in a queue nobody consumes hold neither the plaintext nor the file name; the receiver with the key saves it whole", async () => {
    const queue = freshName("e2e");
    queues.push(queue);
    const key: E2eKey = e2eKey(randomBytes(32), "rabbit-test");
    const name = "merger-plans-2027.xlsx";
    // Text-like content, so that a plaintext leak would show as runs of it.
    const data = Buffer.from("CONFIDENTIAL merger terms, do not forward. ".repeat(3000));
    const sent = await client().send(data, { destination: queue, name, metadata: { deal: "orion" }, chunkBytes: 16 * 1024, flowControl: "broker", encryption: key });
    expect(sent.chunkCount).toBe(Math.ceil(data.byteLength / (16 * 1024)));

    const connection = await plainConnection();
    const stored: Buffer[] = [];
    try {
      const amqp = await connection.createChannel();
      for (;;) {
        const message = await amqp.get(queue, { noAck: false }); // left unacknowledged: back in the queue on close
        if (message === false) break;
        stored.push(message.content);
      }
      await amqp.close();
    } finally {
      await connection.close();
    }
    expect(stored.length).toBe(sent.chunkCount + 2); // Open, the chunks, End
    const wire = Buffer.concat(stored);
    expect(wire.includes(name)).toBe(false);
    expect(wire.includes("merger")).toBe(false);
    expect(wire.includes("orion")).toBe(false);
    expect(wire.includes("CONFIDENTIAL")).toBe(false);
    expect(wire.includes(String(data.byteLength))).toBe(false);
    expect(wire.includes(Buffer.from(sent.sha256, "hex"))).toBe(false);
    expect(wire.includes("rabbit-test")).toBe(true); // the key id is in the clear, by design

    const receiver = client().receive(queue, { keys: [key] });
    const stream = await new Promise<IncomingStream>((resolve) => receiver.once("stream", resolve));
    expect(stream.manifest.name).toBe(name);
    const parts: Buffer[] = [];
    for await (const part of stream) parts.push(part as Buffer);
    expect(sha256(Buffer.concat(parts))).toBe(sha256(data));
  }, 60_000);
});
