import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { crc32 } from "./checksum";
import { createStreamClient, type StreamClient } from "./client";
import { StreamError } from "./errors/stream-error";
import { DATA_HEADER_BYTES, decodeFrame, encodeFrame } from "./protocol/frame-codec";
import { AbortCode, type Frame, FrameType, type Manifest } from "./protocol/frames";
import type { StreamReceiver } from "./stream-receiver";
import { createMemoryTransport } from "./testing/memory-transport";
import type { FrameHandler } from "./transport";

/**
 * Fuzzing the decoder and the receiver's frame handling with arbitrary bytes, bytes that start
 * like a frame, and valid frames mutated. `FUZZ_RUNS` cases per property: a short budget in every
 * `test` run, a million with `pnpm --filter @stream/core fuzz`.
 */
const RUNS = Number(process.env.FUZZ_RUNS ?? 20_000);
/** The longest one synchronous call of the receiver's frame handler may take (a hang is far past it). */
const MAX_CALL_MS = 1000;
/** Cases fed to one receiver before it is closed and its promises checked; a new one takes over. */
const CASES_PER_RECEIVER = 2000;
/** A property this long gets this much time: the long run needs minutes. */
const timeoutMs = Math.max(60_000, RUNS * 2);

/** The heap in use after a full garbage collection (exposed here for the measure only). */
function retainedHeap(): number {
  setFlagsFromString("--expose-gc");
  (runInNewContext("gc") as () => void)();
  return process.memoryUsage().heapUsed;
}

const STREAM_IDS = Array.from({ length: 128 }, (_, i) => `000000${i.toString(16).padStart(2, "0")}-0000-4000-8000-000000000000`);
const streamIdArb = fc.constantFrom(...STREAM_IDS);
/** Channel names: some valid, some not (a replyTo the receiver must refuse to trust). */
const replyToArb = fc.oneof({ weight: 2, arbitrary: fc.constant("") }, { weight: 6, arbitrary: fc.constant("files.inbox.0a1b2c3d4e5f") }, { weight: 1, arbitrary: fc.string({ maxLength: 12 }) });
/** Mostly values a stream of these frames can live with, so the fuzz gets past the Open into the data path. */
const weighted = <T>(usual: fc.Arbitrary<T>, rare: fc.Arbitrary<T>) => fc.oneof({ weight: 8, arbitrary: usual }, { weight: 1, arbitrary: rare });

const manifestArb = (streamId: string): fc.Arbitrary<Manifest> =>
  fc.record(
    {
      streamId: fc.oneof({ weight: 9, arbitrary: fc.constant(streamId) }, { weight: 1, arbitrary: streamIdArb }),
      name: fc.oneof(fc.constantFrom("report.pdf", "../../etc/passwd", "a\u0000b", "CON", ""), fc.string({ maxLength: 40 })),
      sizeBytes: fc.nat({ max: 1 << 20 }),
      contentType: fc.constant("application/octet-stream"),
      chunkBytes: weighted(fc.constantFrom(64, 1024), fc.integer({ min: 1, max: 4096 })),
      metadata: fc.dictionary(fc.string({ maxLength: 8 }), fc.string({ maxLength: 16 }), { maxKeys: 4 }),
      // A new createdAt is a new attempt (an aborted one's Open is remembered and dropped).
      createdAt: fc.integer({ min: 0, max: 1e9 }).map((ms) => new Date(Date.UTC(2026, 11, 1) + ms).toISOString()),
      model: fc.constantFrom("push" as const, "pull" as const),
      replyTo: replyToArb,
      windowChunks: fc.integer({ min: 1, max: 64 }),
      windowBytes: weighted(fc.integer({ min: 1, max: 1 << 20 }), fc.constant(2 ** 30)),
      delivery: fc.constantFrom("streaming" as const, "transactional" as const),
      takeover: fc.record({ acknowledgedBytes: fc.nat({ max: 1 << 16 }) }),
      expiresAt: weighted(fc.constant("2999-01-01T00:00:00.000Z"), fc.constant("2000-01-01T00:00:00.000Z")),
    },
    { requiredKeys: ["streamId", "name", "contentType", "chunkBytes", "metadata", "createdAt", "model", "replyTo", "windowChunks", "windowBytes"] },
  );

/** Valid frames of the protocol, of a few stream ids so that they meet in the receiver. */
const frameArb: fc.Arbitrary<Frame> = streamIdArb.chain((streamId) =>
  fc.oneof(
    manifestArb(streamId).map((manifest): Frame => ({ type: FrameType.Open, streamId, manifest })),
    fc
      .record({ sequence: fc.nat({ max: 16 }), payload: fc.uint8Array({ minLength: 1, maxLength: 1024 }), crc: weighted(fc.constant(true), fc.constant(false)), chunk: fc.constantFrom(64, 1024) })
      .map(({ sequence, payload, crc, chunk }): Frame => ({ type: FrameType.Data, streamId, sequence, offset: sequence * chunk, crc32: crc ? crc32(payload) : 7, payload })),
    fc
      .record({ chunkCount: fc.nat({ max: 64 }), byteCount: fc.nat({ max: 1 << 16 }), sha256: fc.uint8Array({ minLength: 32, maxLength: 32 }) })
      .map((end): Frame => ({ type: FrameType.End, streamId, ...end })),
    fc
      .record({ code: fc.constantFrom(...Object.values(AbortCode)), reason: fc.string({ maxLength: 40 }) })
      .map((abort): Frame => ({ type: FrameType.Abort, streamId, ...abort })),
    fc
      .record({ nextSequence: fc.nat({ max: 64 }), offset: fc.nat({ max: 1 << 16 }), windowChunks: fc.nat({ max: 64 }), complete: fc.boolean() })
      .map((ack): Frame => ({ type: FrameType.Ack, streamId, ...ack })),
    fc.record({ sequence: fc.nat({ max: 16 }), offset: fc.nat({ max: 1 << 16 }) }).map((request): Frame => ({ type: FrameType.Request, streamId, ...request })),
    fc.nat().map((timestampMs): Frame => ({ type: FrameType.Heartbeat, streamId, timestampMs })),
  ),
);

/** One change to a valid frame's bytes. */
const mutationArb = fc.oneof(
  fc.record({ kind: fc.constant("byte" as const), at: fc.nat(), value: fc.nat({ max: 255 }) }),
  fc.record({ kind: fc.constant("u32" as const), at: fc.nat(), value: fc.oneof(fc.nat({ max: 64 }), fc.constant(0xffff_ffff), fc.nat()) }),
  fc.record({ kind: fc.constant("truncate" as const), at: fc.nat() }),
  fc.record({ kind: fc.constant("append" as const), bytes: fc.uint8Array({ minLength: 1, maxLength: 16 }) }),
);

type Mutation = typeof mutationArb extends fc.Arbitrary<infer T> ? T : never;

function mutate(bytes: Uint8Array, mutations: readonly Mutation[]): Uint8Array {
  let out = new Uint8Array(bytes);
  for (const mutation of mutations) {
    if (out.byteLength === 0) break;
    switch (mutation.kind) {
      case "byte":
        out[mutation.at % out.byteLength] = mutation.value;
        break;
      case "u32": {
        const at = mutation.at % out.byteLength;
        if (at + 4 <= out.byteLength) new DataView(out.buffer, out.byteOffset, out.byteLength).setUint32(at, mutation.value >>> 0);
        break;
      }
      case "truncate":
        out = out.subarray(0, mutation.at % out.byteLength);
        break;
      case "append": {
        const longer = new Uint8Array(out.byteLength + mutation.bytes.byteLength);
        longer.set(out);
        longer.set(mutation.bytes, out.byteLength);
        out = longer;
        break;
      }
    }
  }
  return out;
}

/** Bytes that start like a frame of this protocol (magic, version, a type byte), then anything. */
const headedBytesArb = fc
  .record({ type: fc.nat({ max: 9 }), id: fc.uint8Array({ minLength: 16, maxLength: 16 }), body: fc.uint8Array({ maxLength: 96 }) })
  .map(({ type, id, body }) => Uint8Array.from([0x53, 0x46, 1, type, ...id, ...body]));

/** What the fuzz feeds: arbitrary bytes, bytes headed like a frame, valid frames, valid frames mutated. */
const inputArb: fc.Arbitrary<Uint8Array> = fc.oneof(
  fc.uint8Array({ maxLength: 128 }),
  headedBytesArb,
  frameArb.map(encodeFrame),
  fc.tuple(frameArb, fc.array(mutationArb, { minLength: 1, maxLength: 3 })).map(([frame, mutations]) => mutate(encodeFrame(frame), mutations)),
);

describe(`fuzz (${RUNS} cases per property; FUZZ_RUNS sets it)`, () => {
  test(
    "decodeFrame: a frame or a typed StreamError, never anything else; what decodes re-encodes to the same bytes",
    () => {
      fc.assert(
        fc.property(inputArb, (bytes) => {
          let frame: Frame;
          try {
            frame = decodeFrame(bytes);
          } catch (error) {
            if (!StreamError.isInstance(error)) throw new Error(`decodeFrame threw an untyped error: ${String(error)}`, { cause: error });
            return;
          }
          // An Open's JSON may be spelled another way; every other frame has one encoding.
          if (frame.type !== FrameType.Open) expect(Buffer.from(encodeFrame(frame)).equals(Buffer.from(bytes))).toBe(true);
          if (frame.type === FrameType.Data) expect(bytes.byteLength - DATA_HEADER_BYTES).toBe(frame.payload.byteLength);
        }),
        { numRuns: RUNS },
      );
    },
    timeoutMs,
  );

  describe("the receiver's frame handler", () => {
    let spoolDir: string;
    beforeAll(async () => {
      spoolDir = await mkdtemp(join(tmpdir(), "stream-fuzz-"));
    });
    afterAll(async () => {
      await rm(spoolDir, { recursive: true, force: true });
    }, 120_000);

    test(
      "fed sequences of arbitrary and mutated frames: never throws, every promise it returns settles, no unhandled error, memory bounded",
      async () => {
        // The handler as an adapter calls it, captured from the transport; replies go nowhere.
        let handler: FrameHandler | undefined;
        let client: StreamClient | undefined;
        let receiver: StreamReceiver | undefined;
        let returned: Array<Promise<void>> = [];
        let cases = 0;
        let slowestMs = 0;
        let rejections = 0;
        const byCode = new Map<string, number>();
        let streams = 0;
        const open = async (): Promise<void> => {
          const transport = createMemoryTransport();
          const subscribe = transport.subscribe.bind(transport);
          transport.subscribe = (channel, frameHandler, options) => {
            if (options.kind === "stream") handler = frameHandler;
            return subscribe(channel, frameHandler, options);
          };
          transport.publish = async () => {};
          // A client for each receiver: a client keeps the receivers it made until it closes.
          client = createStreamClient({ transport });
          receiver = client.receive("files", { keepPartial: true, spoolDir, concurrency: 1024, producerTimeoutMs: 500, orphanTimeoutMs: 500, maxReportsPerSecond: 1e9, onFrameError: () => {} });
          receiver.on("rejected", ({ code }) => {
            rejections += 1;
            byCode.set(code, (byCode.get(code) ?? 0) + 1);
          });
          receiver.on("stream", (stream) => {
            streams += 1;
            stream.on("error", () => {});
            // Most streams are read; some the application drops at once (a cancel the sender is told of).
            if (streams % 5 === 0) stream.destroy();
            else stream.resume();
          });
          await receiver.ready;
        };
        /** Closes the receiver: every promise its handler returned must settle by then. */
        const recycle = async (): Promise<void> => {
          await receiver?.close({ flushTimeoutMs: 0 });
          await client?.close();
          const pending = returned;
          returned = [];
          const outcome = await Promise.race([
            Promise.allSettled(pending).then((all) => all.filter((one) => one.status === "rejected").length),
            new Promise<string>((resolve) => setTimeout(() => resolve("hung"), 5000).unref()),
          ]);
          expect(outcome).toBe(0); // none rejected (onFrame never rejects), none hung
          // Spool files of the closed receiver's streams are still being closed and removed: let
          // that file system work finish, or it piles up across receivers faster than a disk does it.
          const fsWork = () => process.getActiveResourcesInfo().filter((resource) => resource.startsWith("FSReq")).length;
          for (let waited = 0; fsWork() > 0 && waited < 10_000; waited += 10) await new Promise((resolve) => setTimeout(resolve, 10));
        };
        await open();
        const heapBefore = retainedHeap();
        await fc.assert(
          fc.asyncProperty(fc.array(inputArb, { minLength: 1, maxLength: 6 }), async (inputs) => {
            cases += 1;
            if (cases % CASES_PER_RECEIVER === 0) {
              await recycle();
              await open();
            }
            for (const bytes of inputs) {
              const started = performance.now();
              const result = (handler as FrameHandler)(bytes); // a throw fails the property
              slowestMs = Math.max(slowestMs, performance.now() - started);
              if (result) returned.push(result);
            }
          }),
          { numRuns: RUNS },
        );
        await recycle();
        // What a million cases leave behind once their receivers closed: nothing that grows with them.
        const heapGrowthMb = (retainedHeap() - heapBefore) / 2 ** 20;
        expect(slowestMs).toBeLessThan(MAX_CALL_MS);
        expect(heapGrowthMb).toBeLessThan(64);
        // The fuzz reaches past the decoder: streams are opened and refused.
        expect(streams).toBeGreaterThan(0);
        expect(rejections).toBeGreaterThan(0);
        console.log(`[fuzz] receiver: ${RUNS} cases, ${streams} streams handed over, ${rejections} rejections reported (${[...byCode].map(([code, n]) => `${code} ${n}`).join(", ")}), slowest call ${slowestMs.toFixed(1)} ms, heap +${heapGrowthMb.toFixed(0)} MB`);
      },
      timeoutMs,
    );
  });
});
