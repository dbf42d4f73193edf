import { randomBytes } from "node:crypto";
import { afterEach, describe, expect, test } from "vitest";
import { createStreamClient, type StreamClient } from "./client";
import { StreamAbortedError } from "./errors/stream-aborted-error";
import { StreamTimeoutError } from "./errors/stream-timeout-error";
import type { IncomingStream, ReceivePhase } from "./incoming-stream";
import type { OutgoingStream, SendPhase } from "./outgoing-stream";
import type { StreamReceiver } from "./stream-receiver";
import { createMemoryTransport, MemoryBroker } from "./testing/memory-transport";

const CHUNK = 16 * 1024;
/** Eight chunks through a window of four: the sender must wait for the receiver's acks. */
const FLOW = { chunkBytes: CHUNK, windowChunks: 4 } as const;

let clients: StreamClient[] = [];
afterEach(async () => {
  await Promise.all(clients.map((client) => client.close()));
  clients = [];
});

function client(broker: MemoryBroker): StreamClient {
  const made = createStreamClient({ transport: createMemoryTransport({ broker }), retry: false });
  clients.push(made);
  return made;
}

/** The phases `stream` goes through: where it is now, then each `'phase'` event. */
function phasesOf<P extends string>(stream: { readonly phase: P; on(event: "phase", listener: (phase: P) => void): unknown }): P[] {
  const seen = [stream.phase];
  stream.on("phase", (phase) => seen.push(phase));
  return seen;
}

/** Records the phases of each stream `receiver` hands over, in order; `read` decides what the application does with it. */
function receiving(receiver: StreamReceiver, read: (stream: IncomingStream) => Promise<void>) {
  const phases: ReceivePhase[][] = [];
  const done: Array<Promise<void>> = [];
  receiver.on("stream", (stream: IncomingStream) => {
    phases.push(phasesOf<ReceivePhase>(stream));
    done.push(read(stream));
  });
  return { phases, settled: () => Promise.allSettled(done) };
}

async function readToEnd(stream: IncomingStream): Promise<void> {
  for await (const chunk of stream) void chunk;
}

async function setUp(options: { concurrency?: number } = {}) {
  const broker = new MemoryBroker();
  const receiver = client(broker).receive("phases", options);
  await receiver.ready;
  return { broker, receiver };
}

describe("OutgoingStream and IncomingStream phases", () => {
  test("a push: opening, waiting, sending, finishing, completed; receiving, verifying, verified, completed", async () => {
    const { broker, receiver } = await setUp();
    const received = receiving(receiver, readToEnd);
    const data = randomBytes(8 * CHUNK);
    const outgoing = client(broker).startSend(data, { destination: "phases", ...FLOW });
    expect(outgoing.manifest).toBeUndefined();
    const sent = phasesOf<SendPhase>(outgoing);
    const result = await outgoing.result;
    await received.settled();
    expect(sent).toEqual(["opening", "waiting", "sending", "finishing", "completed"]);
    expect(received.phases).toEqual([["receiving", "verifying", "verified", "completed"]]);
    expect(outgoing.manifest?.streamId).toBe(outgoing.streamId);
    expect(result.byteCount).toBe(data.byteLength);
    expect([outgoing.bytesSent, outgoing.bytesAcknowledged]).toEqual([data.byteLength, data.byteLength]);
  });

  test("a pull: the sender waits until the receiver reads; the stream waits until it is read", async () => {
    const { broker, receiver } = await setUp();
    const received = receiving(receiver, async (stream) => {
      await new Promise((resolve) => setTimeout(resolve, 50)); // the application takes its time
      await readToEnd(stream);
    });
    const outgoing = client(broker).startSend(randomBytes(8 * CHUNK), { destination: "phases", model: "pull", ...FLOW });
    const sent = phasesOf<SendPhase>(outgoing);
    await outgoing.result;
    await received.settled();
    expect(sent).toEqual(["opening", "waiting", "sending", "finishing", "completed"]);
    expect(received.phases).toEqual([["waiting", "receiving", "verifying", "verified", "completed"]]);
  });

  test("a pull read later than producerTimeoutMs: a waiting stream's sender, which only heartbeats, is not taken for dead", async () => {
    const broker = new MemoryBroker();
    const receiver = client(broker).receive("phases", { producerTimeoutMs: 300 });
    await receiver.ready;
    const received = receiving(receiver, async (stream) => {
      await new Promise((resolve) => setTimeout(resolve, 1500)); // five producer timeouts, no frame meanwhile
      await readToEnd(stream);
    });
    const data = randomBytes(8 * CHUNK);
    const result = await client(broker).send(data, { destination: "phases", model: "pull", ...FLOW });
    expect(result.byteCount).toBe(data.byteLength);
    expect((await received.settled()).map((outcome) => outcome.status)).toEqual(["fulfilled"]);
    expect(received.phases).toEqual([["waiting", "receiving", "verifying", "verified", "completed"]]);
  });

  test("pause() holds a send (phase \"paused\", nothing new published, the receiver waits without giving up); resume() finishes it", async () => {
    const broker = new MemoryBroker();
    const receiver = client(broker).receive("phases", { producerTimeoutMs: 400 });
    await receiver.ready;
    const received = receiving(receiver, readToEnd);
    const data = randomBytes(64 * CHUNK);
    const outgoing = client(broker).startSend(data, { destination: "phases", ...FLOW, heartbeatMs: 100 });
    const sent = phasesOf<SendPhase>(outgoing);
    await new Promise<void>((resolve) => {
      const onProgress = () => {
        if (outgoing.bytesAcknowledged < 8 * CHUNK) return;
        outgoing.off("progress", onProgress);
        outgoing.pause();
        resolve();
      };
      outgoing.on("progress", onProgress);
    });
    expect(outgoing.phase).toBe("paused");
    await new Promise((resolve) => setTimeout(resolve, 100)); // what was in flight lands
    const held = outgoing.bytesSent;
    await new Promise((resolve) => setTimeout(resolve, 1000)); // longer than the receiver's producerTimeoutMs
    expect(outgoing.bytesSent).toBe(held);
    expect(held).toBeLessThan(data.byteLength);
    outgoing.resume();
    const result = await outgoing.result;
    expect(result.byteCount).toBe(data.byteLength);
    expect((await received.settled()).map((outcome) => outcome.status)).toEqual(["fulfilled"]);
    expect(sent).toEqual(["opening", "waiting", "sending", "paused", "sending", "finishing", "completed"]);
  });

  test("two sends into one receiver (concurrency 1): the second is queued until the first is read", async () => {
    const { broker, receiver } = await setUp();
    let secondQueued!: () => void;
    const queued = new Promise<void>((resolve) => (secondQueued = resolve));
    const received = receiving(receiver, async (stream) => {
      if (stream.manifest.name === "first") await queued; // hold the first until the second is queued
      await readToEnd(stream);
    });
    const first = client(broker).startSend(randomBytes(8 * CHUNK), { destination: "phases", name: "first", ...FLOW });
    const firstPhases = phasesOf<SendPhase>(first);
    await new Promise<void>((resolve) => receiver.once("stream", () => resolve()));
    const second = client(broker).startSend(randomBytes(8 * CHUNK), { destination: "phases", name: "second", ...FLOW });
    const secondPhases = phasesOf<SendPhase>(second);
    second.on("phase", (phase) => phase === "queued" && secondQueued());
    await Promise.all([first.result, second.result]);
    await received.settled();
    expect(firstPhases).toEqual(["opening", "waiting", "sending", "finishing", "completed"]);
    expect(secondPhases).toEqual(["opening", "waiting", "queued", "sending", "finishing", "completed"]);
    expect(received.phases).toEqual([
      ["receiving", "verifying", "verified", "completed"],
      ["receiving", "verifying", "verified", "completed"],
    ]);
  });

  test("a cancelled send: cancelled on the sender, failed on the receiver", async () => {
    const { broker, receiver } = await setUp();
    let outgoing!: OutgoingStream;
    const received = receiving(receiver, async (stream) => {
      for await (const chunk of stream) {
        void chunk;
        outgoing.cancel("enough"); // after the first chunk
      }
    });
    outgoing = client(broker).startSend(randomBytes(8 * CHUNK), { destination: "phases", ...FLOW });
    const sent = phasesOf<SendPhase>(outgoing);
    const error = await outgoing.result.catch((caught: unknown) => caught);
    const [reading] = await received.settled();
    expect(StreamAbortedError.isInstance(error) && error.cause).toBe("enough");
    expect(reading?.status).toBe("rejected");
    expect(sent).toEqual(["opening", "waiting", "sending", "cancelled"]);
    expect(received.phases).toEqual([["receiving", "failed"]]);
  });

  test("a failed send: the receiving application stops reading", async () => {
    const { broker, receiver } = await setUp();
    const received = receiving(receiver, async (stream) => {
      for await (const chunk of stream) {
        void chunk;
        stream.destroy(); // after the first chunk
      }
    });
    const outgoing = client(broker).startSend(randomBytes(8 * CHUNK), { destination: "phases", ...FLOW });
    const sent = phasesOf<SendPhase>(outgoing);
    await expect(outgoing.result).rejects.toSatisfy(StreamAbortedError.isInstance);
    await received.settled();
    expect(sent).toEqual(["opening", "waiting", "sending", "failed"]);
    expect(received.phases).toEqual([["receiving", "failed"]]);
  });

  test("a failed send: no receiver within idleTimeoutMs", async () => {
    const outgoing = client(new MemoryBroker()).startSend(randomBytes(8 * CHUNK), { destination: "phases", idleTimeoutMs: 200, ...FLOW });
    const sent = phasesOf<SendPhase>(outgoing);
    await expect(outgoing.result).rejects.toSatisfy(StreamTimeoutError.isInstance);
    expect(sent).toEqual(["opening", "waiting", "failed"]);
  });

  test("broker flow control: no receiver to wait for", async () => {
    const outgoing = client(new MemoryBroker()).startSend(randomBytes(8 * CHUNK), { destination: "phases", flowControl: "broker", ...FLOW });
    const sent = phasesOf<SendPhase>(outgoing);
    await outgoing.result;
    expect(sent).toEqual(["opening", "sending", "finishing", "completed"]);
  });

  test("startSend throws for options that cannot work, where send rejects", async () => {
    const sender = client(new MemoryBroker());
    expect(() => sender.startSend(new Uint8Array(1), { destination: "no/slash" })).toThrow(TypeError);
    await expect(sender.send(new Uint8Array(1), { destination: "no/slash" })).rejects.toThrow(TypeError);
  });
});
