import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, test } from "vitest";
import { createStreamClient, type StreamClient } from "./client";
import type { IncomingStream, ReceivePhase } from "./incoming-stream";
import type { SendPhase } from "./outgoing-stream";
import type { StreamReceiver } from "./stream-receiver";
import { createMemoryTransport, MemoryBroker } from "./testing/memory-transport";
import { EventQueue, MAX_BUFFERED_EVENTS, type TransferEvent, type TransferStatus } from "./transfer-status";

const CHUNK = 64 * 1024;
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

async function receiverOn(broker: MemoryBroker, options: { statusIntervalMs?: number } = {}): Promise<StreamReceiver> {
  const receiver = client(broker).receive("status", options);
  await receiver.ready;
  return receiver;
}

function nextStream(receiver: StreamReceiver): Promise<IncomingStream> {
  return new Promise((resolve) => receiver.once("stream", resolve));
}

async function readToEnd(stream: IncomingStream): Promise<void> {
  for await (const chunk of stream) void chunk;
}

async function collect<P extends string>(events: AsyncIterable<TransferEvent<P>>): Promise<Array<TransferEvent<P>>> {
  const seen: Array<TransferEvent<P>> = [];
  for await (const event of events) seen.push(event);
  return seen;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * A source that yields `burstBytes` at once, then `CHUNK` every `everyMs` (paced against the
 * clock, so a late timer catches up) up to `totalBytes`; `throttledSince` says when the pacing began.
 */
function throttledSource(burstBytes: number, totalBytes: number, everyMs: number) {
  const state = { throttledSince: 0, done: false };
  async function* chunks() {
    let sent = 0;
    while (sent < burstBytes) {
      yield randomBytes(CHUNK);
      sent += CHUNK;
    }
    state.throttledSince = Date.now();
    for (let n = 1; sent < totalBytes; n += 1) {
      const wait = state.throttledSince + n * everyMs - Date.now();
      if (wait > 0) await sleep(wait);
      yield randomBytes(CHUNK);
      sent += CHUNK;
    }
    state.done = true;
  }
  return { source: chunks(), state };
}

describe("transfer status", () => {
  test("'status' comes every statusIntervalMs while the send goes on, and at once on each phase change", async () => {
    const broker = new MemoryBroker();
    const receiver = await receiverOn(broker);
    receiver.on("stream", (stream: IncomingStream) => void readToEnd(stream));
    const { source } = throttledSource(0, 30 * CHUNK, 50); // 1.5 s
    const outgoing = client(broker).startSend(source, { destination: "status", sizeBytes: 30 * CHUNK, statusIntervalMs: 100, ...FLOW });
    const statuses: Array<TransferStatus<SendPhase>> = [];
    outgoing.on("status", (status) => statuses.push(status));
    const startedAt = Date.now();
    const events = await collect(outgoing.events());
    const elapsedMs = Date.now() - startedAt;
    const periodic = events.filter((event) => event.type === "status").length;
    const phases = events.filter((event) => event.type === "phase").map((event) => event.phase);
    expect(phases).toEqual(["waiting", "sending", "finishing", "completed"]);
    // One per 100 ms: never more (a late timer only makes fewer), at least half on a loaded machine.
    expect(periodic).toBeLessThanOrEqual(Math.ceil(elapsedMs / 100) + 1);
    expect(periodic).toBeGreaterThanOrEqual(Math.floor(elapsedMs / 100 / 2));
    // 'status' carries the same: each periodic status and each phase change.
    expect(statuses).toHaveLength(periodic + phases.length);
    expect(statuses.at(-1)).toMatchObject({ phase: "completed", bytesTransferred: 30 * CHUNK, chunksTransferred: 30, chunkCount: 30, etaSeconds: 0 });
    // Stopped once the send has ended.
    const after = statuses.length;
    await sleep(300);
    expect(statuses).toHaveLength(after);
  }, 30_000);

  test("the rate is measured over the last seconds: after a burst, a throttled source shows the throttle; the ETA falls", async () => {
    const broker = new MemoryBroker();
    const receiver = await receiverOn(broker, { statusIntervalMs: 250 });
    const received: Array<TransferStatus<ReceivePhase>> = [];
    receiver.on("stream", (stream: IncomingStream) => {
      stream.on("status", (status: TransferStatus<ReceivePhase>) => received.push(status));
      void readToEnd(stream);
    });
    const everyMs = 50;
    const throttleBytesPerSecond = (CHUNK * 1000) / everyMs; // 1.31 MB/s
    const burstBytes = 128 * CHUNK; // 8 MiB at once
    const totalBytes = burstBytes + 90 * CHUNK; // then 4.5 s throttled
    const { source, state } = throttledSource(burstBytes, totalBytes, everyMs);
    const startedAt = Date.now();
    const late: Array<{ status: TransferStatus<SendPhase>; averageBytesPerSecond: number; lastSecondsBytesPerSecond: number }> = [];
    const seen: Array<{ atMs: number; bytes: number }> = [];
    const outgoing = client(broker).startSend(source, {
      destination: "status",
      sizeBytes: totalBytes,
      statusIntervalMs: 250,
      onStatus: (status) => {
        const atMs = Date.now();
        seen.push({ atMs, bytes: status.bytesTransferred });
        // Once throttled for longer than the 3 s window, and still going.
        if (state.throttledSince > 0 && atMs - state.throttledSince > 3300 && !state.done && status.phase === "sending") {
          // What really went in the last 3 s, as this test saw it (a loaded machine may not keep the throttle).
          const before = seen.find((sample) => sample.atMs >= atMs - 3000) as { atMs: number; bytes: number };
          const lastSecondsBytesPerSecond = ((status.bytesTransferred - before.bytes) * 1000) / Math.max(1, atMs - before.atMs);
          late.push({ status, averageBytesPerSecond: (status.bytesTransferred * 1000) / (atMs - startedAt), lastSecondsBytesPerSecond });
        }
      },
      ...FLOW,
    });
    await outgoing.result;
    expect(late.length).toBeGreaterThanOrEqual(2);
    for (const { status, averageBytesPerSecond, lastSecondsBytesPerSecond } of late) {
      // The rate of the last seconds (acks come a quarter window at a time: within 40 %) ...
      expect(status.bytesPerSecond).toBeGreaterThan(lastSecondsBytesPerSecond * 0.6);
      expect(status.bytesPerSecond).toBeLessThan(lastSecondsBytesPerSecond * 1.4);
      // ... not since the start, which would be well above: the burst is still in it.
      expect(status.bytesPerSecond).toBeLessThan(averageBytesPerSecond * 0.75);
    }
    const etas = late.map(({ status }) => status.etaSeconds as number);
    expect(etas.every((eta) => typeof eta === "number" && eta >= 0)).toBe(true);
    expect(etas.at(-1)).toBeLessThan(etas[0] as number);
    // The ETA says roughly what was left: what the source had still to give at the throttle.
    const { status } = late[0] as { status: TransferStatus<SendPhase> };
    expect(status.etaSeconds).toBeCloseTo((totalBytes - status.bytesTransferred) / status.bytesPerSecond, 0);
    // The receiving side measures the same way (the same module): near the throttle at its end too.
    const receivedLate = received.filter((s) => s.phase === "receiving" && s.bytesTransferred > burstBytes + 60 * CHUNK);
    expect(receivedLate.length).toBeGreaterThanOrEqual(1);
    for (const s of receivedLate) {
      // Near the throttle, or what a loaded machine made of it: well under the burst, and moving.
      expect(s.bytesPerSecond).toBeGreaterThan(throttleBytesPerSecond * 0.3);
      expect(s.bytesPerSecond).toBeLessThan(throttleBytesPerSecond * 2);
      expect(s.direction).toBe("receive");
    }
    expect(received.at(-1)).toMatchObject({ phase: "completed", bytesTransferred: totalBytes, sizeBytes: totalBytes, etaSeconds: 0 });
  }, 30_000);

  test("events() yields each side's phases in order with their status, and ends after the final one", async () => {
    const broker = new MemoryBroker();
    const receiver = await receiverOn(broker);
    const folder = await mkdtemp(join(tmpdir(), "status-"));
    const receiving = nextStream(receiver).then(async (stream) => {
      const events = collect(stream.events());
      await stream.saveTo(folder, { statusIntervalMs: 20 });
      return events;
    });
    const data = randomBytes(16 * CHUNK);
    const outgoing = client(broker).startSend(data, { destination: "status", name: "in-order.bin", ...FLOW });
    const sent = await collect(outgoing.events());
    const receivedEvents = await receiving;
    expect(sent.filter((event) => event.type === "phase").map((event) => event.phase)).toEqual(["waiting", "sending", "finishing", "completed"]);
    expect(receivedEvents.filter((event) => event.type === "phase").map((event) => event.phase)).toEqual(["verifying", "verified", "completed"]);
    for (const event of sent) if (event.type === "phase") expect(event.status.phase).toBe(event.phase);
    expect(sent.at(-1)?.status).toMatchObject({ direction: "send", name: "in-order.bin", bytesTransferred: data.byteLength, sizeBytes: data.byteLength, chunkCount: 16 });
    // Asked for after the end: the final event, then done.
    expect(await collect(outgoing.events())).toEqual([sent.at(-1)]);
    expect(outgoing.status.phase).toBe("completed");
    await rm(folder, { recursive: true, force: true });
  });

  test("a failed transfer's final event carries the error's type and whether retrying can help, on both sides", async () => {
    const broker = new MemoryBroker();
    const receiver = await receiverOn(broker);
    const receiving = nextStream(receiver).then(async (stream) => {
      const events = collect(stream.events());
      await readToEnd(stream).catch(() => {});
      return events;
    });
    async function* failing() {
      yield randomBytes(CHUNK);
      yield randomBytes(CHUNK);
      throw new Error("disk gone");
    }
    const outgoing = client(broker).startSend(failing(), { destination: "status", ...FLOW });
    const finals: Array<TransferStatus<SendPhase>> = [];
    outgoing.on("status", (status) => finals.push(status));
    const sent = await collect(outgoing.events());
    await expect(outgoing.result).rejects.toThrow(/disk gone/);
    expect(sent.at(-1)).toMatchObject({ type: "phase", phase: "failed" });
    expect(sent.at(-1)?.status.failure).toMatchObject({ type: "StreamAbortedError", retryable: false, message: expect.stringMatching(/disk gone/) });
    expect(sent.at(-1)?.status.etaSeconds).toBeUndefined();
    expect(finals.at(-1)?.failure?.type).toBe("StreamAbortedError");
    expect(outgoing.status.failure?.type).toBe("StreamAbortedError");
    // The receiver hears a source failure: worth sending again.
    const received = await receiving;
    expect(received.at(-1)).toMatchObject({ type: "phase", phase: "failed" });
    expect(received.at(-1)?.status.failure).toMatchObject({ type: "StreamAbortedError", code: "STREAM_ABORTED", retryable: true });
  });

  test("no receiver in time: the final event says StreamTimeoutError, retryable", async () => {
    const outgoing = client(new MemoryBroker()).startSend(randomBytes(4 * CHUNK), { destination: "status", idleTimeoutMs: 200, ...FLOW });
    const events = await collect(outgoing.events());
    expect(events.filter((event) => event.type === "phase").map((event) => event.phase)).toEqual(["waiting", "failed"]);
    expect(events.at(-1)?.status.failure).toMatchObject({ type: "StreamTimeoutError", code: "STREAM_TIMEOUT", retryable: true });
  });

  test("a consumer that never reads holds a bounded number of events: periodic statuses coalesce, phases stay", async () => {
    const broker = new MemoryBroker();
    const receiver = await receiverOn(broker);
    receiver.on("stream", (stream: IncomingStream) => void readToEnd(stream));
    const { source } = throttledSource(0, 20 * CHUNK, 50); // 1 s
    const outgoing = client(broker).startSend(source, { destination: "status", sizeBytes: 20 * CHUNK, statusIntervalMs: 5, ...FLOW });
    const unread = outgoing.events();
    let emitted = 0;
    outgoing.on("status", () => (emitted += 1));
    await outgoing.result;
    await sleep(10);
    const held = await collect(unread);
    expect(emitted).toBeGreaterThan(50); // a hundred or so statuses went by
    // At most one status waits before each phase change and after the last: 2 × 4 + 1.
    expect(held.length).toBeLessThanOrEqual(9);
    expect(held.filter((event) => event.type === "phase").map((event) => event.phase)).toEqual(["waiting", "sending", "finishing", "completed"]);
  });

  test("the buffer keeps the newest events, at most MAX_BUFFERED_EVENTS, and the final one always", async () => {
    const queue = new EventQueue<string>(() => {});
    const status = (phase: string) => ({ phase }) as TransferStatus;
    for (let n = 0; n < 100; n += 1) queue.push({ type: "phase", phase: `p${n}`, status: status(`p${n}`) });
    expect(queue.size).toBe(MAX_BUFFERED_EVENTS);
    queue.end({ type: "phase", phase: "completed", status: status("completed") });
    const held = await collect(queue);
    expect(held).toHaveLength(MAX_BUFFERED_EVENTS);
    expect(held.at(-2)).toMatchObject({ phase: "p99" });
    expect(held.at(-1)).toMatchObject({ phase: "completed" });
  });

  test("statusIntervalMs must be above 0", async () => {
    const sender = client(new MemoryBroker());
    expect(() => sender.startSend(new Uint8Array(1), { destination: "status", statusIntervalMs: 0 })).toThrow(RangeError);
    expect(() => sender.receive("status", { statusIntervalMs: Number.NaN })).toThrow(RangeError);
  });
});
