import { randomBytes, randomUUID } from "node:crypto";
import { mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, test } from "vitest";
import { crc32 } from "./checksum";
import { createStreamClient, type StreamClient } from "./client";
import { ProtocolError } from "./errors/protocol-error";
import type { StreamError } from "./errors/stream-error";
import { StreamRefusedError } from "./errors/stream-refused-error";
import { decodeFrame, encodeFrame } from "./protocol/frame-codec";
import { AbortCode, type Frame, FrameType, type Manifest } from "./protocol/frames";
import type { Rejection } from "./rejections";
import type { ReceiveOptions, StreamReceiver } from "./stream-receiver";
import { withFaults } from "./testing/fault-injecting-transport";
import { createMemoryTransport, MemoryBroker } from "./testing/memory-transport";

const closers: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  await Promise.all(closers.splice(0).map((close) => close()));
});

const settle = (ms = 100) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * A receiver on "files", what it reports (`'rejected'` and `onFrameError`), and a hand-made
 * sender: raw bytes into the destination, and its inbox's replies decoded.
 */
async function rig(options: ReceiveOptions = {}) {
  const broker = new MemoryBroker();
  const client: StreamClient = createStreamClient({ transport: createMemoryTransport({ broker }) });
  const frameErrors: StreamError[] = [];
  const receiver: StreamReceiver = client.receive("files", { ...options, onFrameError: (error) => frameErrors.push(error) });
  const rejections: Rejection[] = [];
  receiver.on("rejected", (rejection) => rejections.push(rejection));
  const hand = createMemoryTransport({ broker });
  const replyTo = `files.inbox.${randomUUID().slice(0, 12).replace("-", "")}`;
  const replies: Frame[] = [];
  await hand.subscribe(replyTo, (bytes) => void replies.push(decodeFrame(bytes)), { kind: "inbox" });
  await receiver.ready;
  closers.push(() => client.close(), () => hand.close());
  const raw = (bytes: Uint8Array, key = "k") => hand.publish("files", bytes, { key, kind: "stream" });
  const publish = (frame: Frame) => raw(encodeFrame(frame), frame.streamId);
  const manifest = (streamId: string, overrides: Partial<Manifest> = {}): Manifest => ({
    streamId,
    name: "report.pdf",
    contentType: "application/octet-stream",
    chunkBytes: 1024,
    metadata: {},
    createdAt: new Date().toISOString(),
    model: "push",
    replyTo,
    windowChunks: 4,
    windowBytes: 4096,
    ...overrides,
  });
  const data = (streamId: string, sequence = 0, payload: Uint8Array = randomBytes(1024)): Frame => ({
    type: FrameType.Data,
    streamId,
    sequence,
    offset: sequence * 1024,
    crc32: crc32(payload),
    payload,
  });
  const aborts = () => replies.filter((frame) => frame.type === FrameType.Abort);
  return { broker, client, receiver, rejections, frameErrors, raw, publish, manifest, data, replies, aborts, replyTo };
}

/** One rejection came, and `onFrameError` was given the very same error. */
function onlyRejection(r: { rejections: Rejection[]; frameErrors: StreamError[] }): Rejection {
  expect(r.rejections).toHaveLength(1);
  const [rejection] = r.rejections as [Rejection];
  expect(r.frameErrors).toEqual([rejection.error]);
  return rejection;
}

describe("'rejected': the nine hostile inputs once dropped in silence are each reported", () => {
  test("an Open with a 10,000-character name: malformed, reported with its stream id and cut name, its sender told", async () => {
    const r = await rig();
    const streamId = randomUUID();
    await r.publish({ type: FrameType.Open, streamId, manifest: r.manifest(streamId, { name: "n".repeat(10_000) }) });
    await settle();
    const rejection = onlyRejection(r);
    expect(rejection).toMatchObject({ code: "malformed-frame", streamId, name: `${"n".repeat(256)}…` });
    expect(rejection.reason).toContain("manifest.name must be a string of at most 1024 characters");
    expect(ProtocolError.isInstance(rejection.error)).toBe(true);
    expect(r.aborts()).toEqual([expect.objectContaining({ streamId, code: AbortCode.Rejected, reason: expect.stringContaining("at most 1024 characters") })]);
  });

  test("a data frame whose length field disagrees with its payload", async () => {
    const r = await rig();
    const streamId = randomUUID();
    const bytes = encodeFrame(r.data(streamId));
    new DataView(bytes.buffer).setUint32(36, 5000); // the payload is 1024 bytes
    await r.raw(bytes);
    await settle();
    const rejection = onlyRejection(r);
    expect(rejection).toMatchObject({ code: "malformed-frame", streamId });
    expect(rejection.reason).toContain("data frame is 1064 bytes; its fields say 5040");
  });

  test("a truncated frame", async () => {
    const r = await rig();
    const streamId = randomUUID();
    await r.raw(encodeFrame(r.data(streamId)).subarray(0, 30));
    await r.raw(randomBytes(7)); // shorter than a header: not even a frame
    await settle();
    expect(r.rejections.map(({ code, streamId: id }) => [code, id])).toEqual([
      ["malformed-frame", streamId],
      ["not-a-frame", undefined],
    ]);
    expect(r.rejections[0]?.reason).toContain("data frame too short");
  });

  test("frames of no known stream: 'orphaned' and 'rejected' once the orphan timeout passes", async () => {
    const r = await rig({ orphanTimeoutMs: 300 });
    const streamId = randomUUID();
    for (let sequence = 0; sequence < 3; sequence++) await r.publish(r.data(streamId, sequence));
    await settle(50);
    expect(r.rejections).toEqual([]); // held: the Open may be late
    await settle(600);
    const rejection = onlyRejection(r);
    expect(rejection).toMatchObject({ code: "orphaned", streamId });
    expect(rejection.reason).toMatch(/^3 frame\(s\) \(3072 payload bytes\) of stream .* came without its Open/);
  });

  test("a frame of another protocol version", async () => {
    const r = await rig();
    const bytes = encodeFrame(r.data(randomUUID()));
    bytes[2] = 9;
    await r.raw(bytes);
    await settle();
    const rejection = onlyRejection(r);
    expect(rejection.code).toBe("unsupported-version");
    expect(rejection.streamId).toBeUndefined(); // another version's layout is not known
    expect(rejection.reason).toContain("protocol version 9");
  });

  test("a frame of an unknown type", async () => {
    const r = await rig();
    const streamId = randomUUID();
    const bytes = encodeFrame(r.data(streamId));
    bytes[3] = 99;
    await r.raw(bytes);
    await settle();
    expect(onlyRejection(r)).toMatchObject({ code: "malformed-frame", streamId, reason: "unknown frame type 99" });
  });

  test("an Open whose manifest's stream id differs from the header's; its sender told", async () => {
    const r = await rig();
    const header = randomUUID();
    await r.publish({ type: FrameType.Open, streamId: header, manifest: r.manifest(randomUUID()) });
    await settle();
    expect(onlyRejection(r)).toMatchObject({ code: "malformed-frame", streamId: header, name: "report.pdf", reason: "manifest stream id differs from the frame's" });
    expect(r.aborts()).toEqual([expect.objectContaining({ streamId: header, code: AbortCode.Rejected })]);
  });

  test("a 1 GiB window request: refused, reported, its sender told why", async () => {
    const r = await rig();
    const streamId = randomUUID();
    await r.publish({ type: FrameType.Open, streamId, manifest: r.manifest(streamId, { windowBytes: 2 ** 30, windowChunks: 1024 }) });
    await settle();
    const rejection = onlyRejection(r);
    expect(rejection).toMatchObject({ code: "window-too-large", streamId, name: "report.pdf" });
    expect(StreamRefusedError.isInstance(rejection.error)).toBe(true);
    expect(r.aborts()).toEqual([expect.objectContaining({ streamId, code: AbortCode.Rejected, reason: expect.stringContaining("maxWindowBytes 67108864") })]);
    expect(r.receiver.activeStreams).toBe(0);
  });
});

describe("limits: each refusal reported and its sender told", () => {
  const cases: Array<[string, ReceiveOptions, Partial<Manifest>, string]> = [
    ["maxNameChars", { maxNameChars: 10 }, { name: "a-long-name.pdf" }, "name-too-long"],
    ["maxMetadataEntries", { maxMetadataEntries: 2 }, { metadata: { a: "1", b: "2", c: "3" } }, "too-many-metadata"],
    ["maxManifestBytes", { maxManifestBytes: 1024 }, { metadata: { note: "x".repeat(2000) } }, "manifest-too-large"],
  ];
  for (const [option, options, overrides, code] of cases) {
    test(`${option}`, async () => {
      const r = await rig(options);
      const streamId = randomUUID();
      await r.publish({ type: FrameType.Open, streamId, manifest: r.manifest(streamId, overrides) });
      await settle();
      const rejection = onlyRejection(r);
      expect(rejection).toMatchObject({ code, streamId });
      expect(rejection.reason).toContain(option);
      expect(r.aborts()).toEqual([expect.objectContaining({ streamId, code: AbortCode.Rejected, reason: rejection.reason })]);
    });
  }

  test("maxOpenStreams: past it an Open is refused, below it queued", async () => {
    const r = await rig({ maxOpenStreams: 2 });
    const ids = [randomUUID(), randomUUID(), randomUUID()];
    for (const id of ids) await r.publish({ type: FrameType.Open, streamId: id, manifest: r.manifest(id) });
    await settle();
    expect(r.receiver.activeStreams + r.receiver.queuedStreams).toBe(2);
    expect(onlyRejection(r)).toMatchObject({ code: "too-many-streams", streamId: ids[2] });
    expect(r.aborts()).toEqual([expect.objectContaining({ streamId: ids[2], code: AbortCode.Rejected })]);
  });

  test("a limit that is not a whole number in range is a RangeError", async () => {
    const client = createStreamClient({ transport: createMemoryTransport() });
    closers.push(() => client.close());
    expect(() => client.receive("files", { maxNameChars: 2000 })).toThrow(/maxNameChars must be a whole number, from 1 to 1024/);
    expect(() => client.receive("files", { maxManifestBytes: 0 })).toThrow(RangeError);
    expect(() => client.receive("files", { maxReportsPerSecond: 1.5 })).toThrow(RangeError);
  });
});

describe("streams refused for what they carry", () => {
  test("a chunk that fails its CRC: the stream fails with 'integrity', reported once", async () => {
    const r = await rig();
    r.receiver.on("stream", (stream) => stream.on("error", () => {}));
    const streamId = randomUUID();
    await r.publish({ type: FrameType.Open, streamId, manifest: r.manifest(streamId) });
    await r.publish({ ...(r.data(streamId) as Extract<Frame, { type: 2 }>), crc32: 1 });
    await settle();
    expect(onlyRejection(r)).toMatchObject({ code: "integrity", streamId, name: "report.pdf" });
    expect(r.aborts()).toEqual([expect.objectContaining({ streamId, code: AbortCode.IntegrityFailed })]);
  });

  test("a name saveTo will not write: 'unsafe-name', nothing written", async () => {
    const r = await rig();
    const dir = await mkdtemp(join(tmpdir(), "stream-rejected-"));
    closers.push(() => rm(dir, { recursive: true, force: true }));
    const saved: Array<Promise<unknown>> = [];
    r.receiver.on("stream", (stream) => void saved.push(stream.saveTo(dir).catch((error: unknown) => error)));
    const streamId = randomUUID();
    await r.publish({ type: FrameType.Open, streamId, manifest: r.manifest(streamId, { name: "../../etc/passwd" }) });
    await settle();
    await Promise.all(saved);
    expect(onlyRejection(r)).toMatchObject({ code: "unsafe-name", streamId, name: "../../etc/passwd" });
    expect(r.aborts()).toEqual([expect.objectContaining({ streamId, code: AbortCode.Rejected })]);
    expect(await readdir(dir)).toEqual([]);
  });
});

describe("what is not a rejection, and floods", () => {
  test("duplicates, reordering and late copies of a completed stream are normal traffic: nothing reported", async () => {
    const broker = new MemoryBroker();
    const sent: Uint8Array[] = [];
    const transport = createMemoryTransport({ broker });
    const publish = transport.publish.bind(transport);
    transport.publish = (channel, frame, options) => {
      if (channel === "files") sent.push(new Uint8Array(frame));
      return publish(channel, frame, options);
    };
    const sender = createStreamClient({ transport: withFaults(transport, { seed: 7, duplicateRate: 0.3, reorderRate: 0.3 }) });
    const receiver = createStreamClient({ transport: createMemoryTransport({ broker }) });
    closers.push(() => sender.close(), () => receiver.close());
    const streams = receiver.receive("files");
    const reports: unknown[] = [];
    streams.on("rejected", (rejection) => reports.push(rejection));
    streams.on("stream", (stream) => stream.resume());
    await streams.ready;
    await sender.send(randomBytes(50_000), { destination: "files", chunkBytes: 1024 });
    for (const frame of sent) await publish("files", frame, { key: "late", kind: "stream" }); // every frame again, late
    await settle(300);
    expect(sent.length).toBeGreaterThan(50);
    expect(reports).toEqual([]);
  });

  test("a flood of 2,000 garbage frames: 10 reports, then one summary of the rest", async () => {
    const r = await rig({ maxReportsPerSecond: 10 });
    const started = process.cpuUsage();
    const floodStart = Date.now();
    for (let i = 0; i < 2000; i++) await r.raw(randomBytes(64));
    const floodMs = Date.now() - floodStart;
    await settle(1400);
    const cpu = process.cpuUsage(started);
    const reported = r.rejections.filter((rejection) => rejection.suppressed === undefined);
    const summaries = r.rejections.filter((rejection) => rejection.suppressed !== undefined);
    // 10 a second (the flood takes well under one here), every one also given to onFrameError.
    expect(reported.length).toBeLessThanOrEqual(10 * (Math.floor(floodMs / 1000) + 1));
    expect(r.frameErrors).toEqual(reported.map((rejection) => rejection.error));
    expect(reported.every((rejection) => rejection.code === "not-a-frame")).toBe(true);
    expect(reported.length + summaries.reduce((sum, summary) => sum + (summary.suppressed ?? 0), 0)).toBe(2000);
    expect(summaries.length).toBeLessThanOrEqual(Math.floor(floodMs / 1000) + 1);
    expect(summaries[0]?.reason).toMatch(/^\d+ more like this suppressed in the last second \(not a stream frame/);
    expect((cpu.user + cpu.system) / 1000).toBeLessThan(1500);
  });

  test("what is held back when the receiver closes is still summed up", async () => {
    const r = await rig({ maxReportsPerSecond: 2 });
    for (let i = 0; i < 5; i++) await r.raw(randomBytes(8));
    await settle(50);
    expect(r.rejections).toHaveLength(2);
    await r.receiver.close();
    expect(r.rejections.map((rejection) => rejection.suppressed)).toEqual([undefined, undefined, 3]);
  });
});
