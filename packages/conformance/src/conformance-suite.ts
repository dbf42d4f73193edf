import assert from "node:assert/strict";
import { createHash, randomBytes, randomUUID } from "node:crypto";
import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  createStreamClient,
  E2eKeyError,
  e2eKey,
  IntegrityError,
  ProtocolError,
  StreamAbortedError,
  StreamRefusedError,
  StreamTimeoutError,
  TargetFolderError,
  type IncomingStream,
  type OutgoingStream,
  type SaveResult,
  type SendOptions,
  type SendProgress,
  type StreamClient,
  type StreamError,
  type StreamReceiver,
  type Transport,
} from "@stream/core";
import { type FaultOptions, withFaults } from "@stream/core/testing";
import { type SenderTap, tapSender } from "./sender-tap";

/** The test-runner functions the suite registers its tests with (vitest's, jest's, node:test's). */
export interface TestApi {
  readonly describe: (name: string, body: () => void) => void;
  readonly test: (name: string, body: () => Promise<void>, timeoutMs?: number) => void;
}

/** The groups of the suite, to skip what a broker cannot do. */
export type ConformanceGroup =
  | "round-trip"
  | "concurrency"
  | "duplicates-and-reordering"
  | "loss"
  | "corruption"
  | "lying-manifest"
  | "backpressure"
  | "abort"
  | "garbage"
  | "pull"
  | "refusal"
  | "withdrawal"
  | "delivery"
  | "resume"
  | "cancel"
  | "expiry"
  | "e2e"
  | "compression";

/** Options of {@link runConformanceSuite}. */
export interface ConformanceOptions extends TestApi {
  /** The adapter's name, in test titles. */
  readonly name: string;
  /** Returns a fresh, connected transport; called twice per test (sender and receiver sides). */
  readonly createTransport: () => Transport | Promise<Transport>;
  /** Groups to skip, with the reason in the adapter's README. */
  readonly skip?: readonly ConformanceGroup[];
  /** Chunk size used by the suite: small, so multi-chunk cases stay quick. @default 16384 */
  readonly chunkBytes?: number;
  /** Per-test timeout. @default 60000 */
  readonly timeoutMs?: number;
}

const sha256 = (bytes: Uint8Array): string => createHash("sha256").update(bytes).digest("hex");

async function readAll(stream: IncomingStream): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const part of stream) parts.push(part as Buffer);
  return Buffer.concat(parts);
}

async function nextStream(receiver: StreamReceiver): Promise<IncomingStream> {
  for await (const stream of receiver) return stream;
  throw new Error("the receiver closed before a stream arrived");
}

async function rejectionOf(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  assert.fail("expected a rejection");
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Waits until `condition` holds, checking every 10 ms; fails naming `what` after `ms`. */
async function until(what: string, condition: () => boolean, ms = 30_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > deadline) assert.fail(`waited ${ms} ms for ${what}`);
    await sleep(10);
  }
}

/**
 * Calls `act` from the progress event in which `outgoing` has half of `sizeBytes` acknowledged:
 * at once, so that a fast transport cannot finish the stream meanwhile. Resolves then; rejects if
 * the send ends first.
 */
function atHalfWay(outgoing: OutgoingStream, sizeBytes: number, act: () => void): Promise<void> {
  return new Promise((resolve, reject) => {
    const onProgress = ({ bytesAcknowledged }: SendProgress) => {
      if (bytesAcknowledged < sizeBytes / 2) return;
      outgoing.off("progress", onProgress);
      act();
      resolve();
    };
    outgoing.on("progress", onProgress);
    outgoing.result.then(
      () => reject(new Error("the send completed before half way")),
      (error: unknown) => reject(new Error(`the send failed before half way: ${String(error)}`)),
    );
  });
}

/** The `.partial` files in `folder`. */
const partialFiles = async (folder: string): Promise<string[]> => (await readdir(folder)).filter((file) => file.endsWith(".partial"));

/** A fresh temporary folder for `body`, removed afterwards. */
async function withFolder(body: (dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), "stream-conformance-"));
  try {
    await body(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Saves every stream of `streams` into `folderFor(n)` (n counts from 0), recording each outcome: a `SaveResult` or an error. */
function saveEach(streams: StreamReceiver, folderFor: (n: number) => string): unknown[] {
  const outcomes: unknown[] = [];
  void (async () => {
    for await (const stream of streams) {
      try {
        outcomes.push(await stream.saveTo(folderFor(outcomes.length)));
      } catch (error) {
        outcomes.push(error); // the application goes on with the next stream
      }
    }
  })();
  return outcomes;
}

/** One test's world: a sending and a receiving client on separate transports, one destination. */
interface Rig {
  readonly destination: string;
  readonly sender: StreamClient;
  readonly receiver: StreamClient;
  readonly senderTransport: Transport;
  readonly frameErrors: StreamError[];
  readonly streams: StreamReceiver;
  readonly options: Pick<SendOptions, "destination" | "chunkBytes">;
  /** Another sending client, on a fresh transport wrapped in {@link tapSender}; closed with the rig. */
  readonly newSender: () => Promise<SenderTap & { readonly client: StreamClient }>;
}

/**
 * Registers the conformance suite: every adapter runs it against its real broker, and core runs
 * it against the in-memory transport. Each test uses a fresh destination and fresh transports.
 *
 * @example
 * runConformanceSuite({ describe, test, name: "rabbitmq", createTransport: () => createRabbitmqTransport({ url }) });
 */
export function runConformanceSuite(options: ConformanceOptions): void {
  const { describe, test, name } = options;
  const chunkBytes = options.chunkBytes ?? 16 * 1024;
  const timeoutMs = options.timeoutMs ?? 60_000;
  const skip = new Set(options.skip ?? []);

  const withRig = async (faults: FaultOptions | undefined, body: (rig: Rig) => Promise<void>): Promise<void> => {
    const senderTransport = await options.createTransport();
    const receiverTransport = await options.createTransport();
    const destination = `conformance.${name}.${randomUUID().slice(0, 8)}`;
    const sender = createStreamClient({ transport: faults ? withFaults(senderTransport, faults) : senderTransport });
    const receiver = createStreamClient({ transport: receiverTransport });
    const frameErrors: StreamError[] = [];
    const streams = receiver.receive(destination, { onFrameError: (error) => frameErrors.push(error), gapTimeoutMs: 300 });
    const clients = [sender, receiver];
    const newSender = async () => {
      const tap = tapSender(await options.createTransport());
      const client = createStreamClient({ transport: tap.transport });
      clients.push(client);
      return { ...tap, client };
    };
    try {
      await streams.ready;
      await body({ destination, sender, receiver, senderTransport, frameErrors, streams, options: { destination, chunkBytes }, newSender });
    } finally {
      await Promise.allSettled(clients.map((client) => client.close()));
    }
  };
  const group = (key: ConformanceGroup, title: string, body: () => void): void => {
    if (!skip.has(key)) describe(title, body);
  };

  describe(`@stream conformance: ${name}`, () => {
    group("round-trip", "round trips", () => {
      const sizes: Array<[string, number]> = [
        ["0 B", 0],
        ["1 B", 1],
        ["chunk - 1", chunkBytes - 1],
        ["chunk", chunkBytes],
        ["chunk + 1", chunkBytes + 1],
        ["multi-chunk", chunkBytes * 5 + 123],
      ];
      for (const [label, size] of sizes) {
        test(
          `${label} (${size} bytes) arrives byte-exact with its manifest`,
          () =>
            withRig(undefined, async ({ sender, streams, options: sendOptions }) => {
              const data = randomBytes(size);
              const arriving = nextStream(streams);
              const sent = sender.send(data, { ...sendOptions, name: `file-${size}.bin`, metadata: { label } });
              const stream = await arriving;
              assert.equal(stream.manifest.name, `file-${size}.bin`);
              assert.equal(stream.manifest.sizeBytes, size);
              assert.deepEqual(stream.manifest.metadata, { label });
              const bytes = await readAll(stream);
              const [result, received] = await Promise.all([sent, stream.result]);
              assert.equal(sha256(bytes), sha256(data));
              assert.equal(received.sha256, sha256(data));
              assert.equal(result.sha256, sha256(data));
              assert.equal(result.chunkCount, Math.ceil(size / chunkBytes));
              assert.equal(stream.offset, size);
            }),
          timeoutMs,
        );
      }
    });

    group("concurrency", "many concurrent streams", () => {
      test(
        "8 streams sent at once all arrive intact, each to its own IncomingStream",
        () =>
          withRig(undefined, async ({ sender, streams, options: sendOptions }) => {
            const payloads = Array.from({ length: 8 }, (_, i) => randomBytes(chunkBytes * 3 + i * 1000));
            const digests = new Map<string, string>();
            const receiving = (async () => {
              const done: Array<Promise<void>> = [];
              for await (const stream of streams) {
                done.push(readAll(stream).then((bytes) => void digests.set(stream.manifest.name, sha256(bytes))));
                if (done.length === payloads.length) break;
              }
              await Promise.all(done);
            })();
            await Promise.all(payloads.map((data, i) => sender.send(data, { ...sendOptions, name: `concurrent-${i}` })));
            await receiving;
            payloads.forEach((data, i) => assert.equal(digests.get(`concurrent-${i}`), sha256(data), `stream ${i}`));
          }),
        timeoutMs,
      );
    });

    group("concurrency", "one stream at a time", () => {
      test(
        "a receiver takes one stream at a time by default: 4 sent at once arrive whole, one after another, the waiting ones queued",
        () =>
          withRig(undefined, async ({ sender, streams, options: sendOptions }) => {
            const payloads = Array.from({ length: 4 }, (_, i) => randomBytes(chunkBytes * 6 + i));
            let queued = 0;
            const sending = payloads.map((data, i) =>
              sender.send(data, { ...sendOptions, name: `one-at-a-time-${i}`, onProgress: (progress) => void (queued += progress.queued ? 1 : 0) }),
            );
            const digests = new Map<string, string>();
            let mostOpen = 0;
            for await (const stream of streams) {
              mostOpen = Math.max(mostOpen, streams.activeStreams);
              digests.set(stream.manifest.name, sha256(await readAll(stream)));
              if (digests.size === payloads.length) break;
            }
            await Promise.all(sending);
            payloads.forEach((data, i) => assert.equal(digests.get(`one-at-a-time-${i}`), sha256(data), `stream ${i}`));
            assert.equal(mostOpen, 1, "one stream handed over at a time");
            assert.ok(queued > 0, "the streams that came while the receiver was busy were queued, their senders told");
          }),
        timeoutMs,
      );
    });

    group("delivery", "delivery modes", () => {
      test(
        "streaming (the default): the application reads the first bytes while the sender is still sending",
        () =>
          withRig(undefined, async ({ sender, streams, options: sendOptions }) => {
            const data = randomBytes(chunkBytes * 64);
            const startedAt = performance.now();
            let sentAt: number | undefined;
            const sent = sender.send(data, { ...sendOptions, windowChunks: 4 }).then((result) => {
              sentAt = performance.now();
              return result;
            });
            const stream = await nextStream(streams);
            const parts: Buffer[] = [];
            let firstByteMs: number | undefined;
            for await (const part of stream) {
              firstByteMs ??= performance.now() - startedAt;
              assert.equal(sentAt, undefined, "a byte read before the send completed");
              parts.push(part as Buffer);
            }
            await sent;
            assert.equal(sha256(Buffer.concat(parts)), sha256(data));
            assert.ok(firstByteMs !== undefined && firstByteMs < 2000, `first byte after ${firstByteMs?.toFixed(0)} ms`);
            console.log(`[${name} delivery] streaming: first byte ${firstByteMs.toFixed(1)} ms after send()`);
          }),
        timeoutMs,
      );
      test(
        "transactional: the stream is handed over only once all of it has arrived and been verified",
        () =>
          withRig(undefined, async ({ sender, streams, options: sendOptions }) => {
            const data = randomBytes(chunkBytes * 30 + 11);
            const sent = sender.send(data, { ...sendOptions, delivery: "transactional" });
            const stream = await nextStream(streams);
            const verified = await Promise.race([stream.result, sleep(0).then(() => "not yet")]);
            assert.deepEqual(verified, { streamId: stream.streamId, byteCount: data.byteLength, chunkCount: 31, sha256: sha256(data) });
            assert.equal(stream.spooled, true);
            assert.equal(sha256(await readAll(stream)), sha256(data));
            assert.equal((await sent).sha256, sha256(data));
          }),
        timeoutMs,
      );
      test(
        "transactional store-and-forward: the producer is done before any receiver exists (where the broker stores durably)",
        () =>
          withRig(undefined, async ({ sender, receiver, senderTransport, options: sendOptions }) => {
            const { brokerAcks, retention } = senderTransport.capabilities;
            const data = randomBytes(chunkBytes * 12 + 5);
            const destination = `${sendOptions.destination}.stored`;
            const sending = sender.send(data, { ...sendOptions, destination, flowControl: "broker", delivery: "transactional" });
            if (!brokerAcks || retention === "none") {
              // Such a broker could lose it: refused up front rather than lost later.
              assert.ok((await rejectionOf(sending)) instanceof TypeError);
              return;
            }
            await sending; // all of it in the broker, no receiver yet
            const later = receiver.receive(destination);
            const stream = await nextStream(later);
            assert.equal(stream.spooled, true);
            assert.equal(sha256(await readAll(stream)), sha256(data));
            await later.close();
          }),
        timeoutMs,
      );
    });

    const faultyRoundTrip = (faults: FaultOptions) =>
      withRig(faults, async ({ sender, streams, options: sendOptions }) => {
        const data = randomBytes(chunkBytes * 20 + 7);
        const arriving = nextStream(streams);
        const sent = sender.send(data, { ...sendOptions, retransmitAfterMs: 500 });
        const bytes = await readAll(await arriving);
        assert.equal((await sent).sha256, sha256(data));
        assert.equal(sha256(bytes), sha256(data));
      });

    group("duplicates-and-reordering", "duplicates and reordering", () => {
      test("duplicated and reordered chunks are delivered once, in order", () => faultyRoundTrip({ seed: 7, duplicateRate: 0.3, reorderRate: 0.3 }), timeoutMs);
    });

    group("loss", "loss", () => {
      test("lost chunks are asked for again and the stream completes", () => faultyRoundTrip({ seed: 11, lossRate: 0.1 }), timeoutMs);
    });

    group("corruption", "corruption", () => {
      test(
        "a corrupted chunk ends the stream with IntegrityError on both sides, and nothing past it is delivered",
        () =>
          withRig({ corrupt: (sequence) => sequence === 2 }, async ({ sender, streams, options: sendOptions }) => {
            const data = randomBytes(chunkBytes * 6);
            const arriving = nextStream(streams);
            const sent = rejectionOf(sender.send(data, sendOptions));
            const stream = await arriving;
            const delivered: Buffer[] = [];
            const readError = await rejectionOf(
              (async () => {
                for await (const part of stream) delivered.push(part as Buffer);
              })(),
            );
            assert.ok(IntegrityError.isInstance(readError), `receiver got ${String(readError)}`);
            const sendError = await sent;
            assert.ok(IntegrityError.isInstance(sendError), `sender got ${String(sendError)}`);
            const bytes = Buffer.concat(delivered);
            assert.ok(bytes.byteLength <= 2 * chunkBytes, "nothing from the corrupt chunk on");
            assert.ok(bytes.equals(data.subarray(0, bytes.byteLength)), "what was delivered is the true prefix");
          }),
        timeoutMs,
      );
    });

    group("lying-manifest", "a lying manifest", () => {
      const lies: Array<[string, number, number]> = [
        ["longer", 3, 2],
        ["shorter", 2, 3],
      ];
      for (const [label, actualChunks, declaredChunks] of lies) {
        test(
          `a stream ${label} than its declared size fails with IntegrityError on both sides`,
          () =>
            withRig(undefined, async ({ sender, streams, options: sendOptions }) => {
              const data = randomBytes(chunkBytes * actualChunks);
              const arriving = nextStream(streams);
              const source = (async function* () {
                yield data; // an iterable source: its size is only what the sender declares
              })();
              const sendError = rejectionOf(sender.send(source, { ...sendOptions, sizeBytes: chunkBytes * declaredChunks }));
              const readError = await rejectionOf(readAll(await arriving));
              assert.ok(IntegrityError.isInstance(readError), `receiver got ${String(readError)}`);
              assert.ok(IntegrityError.isInstance(await sendError), `sender got ${String(await sendError)}`);
            }),
          timeoutMs,
        );
      }
    });

    group("backpressure", "backpressure", () => {
      test(
        "a stalled consumer stops the sender within one window, and reading again completes it",
        () =>
          withRig(undefined, async ({ sender, streams, options: sendOptions }) => {
            const windowChunks = 4;
            const data = randomBytes(chunkBytes * 40);
            let bytesSent = 0;
            const arriving = nextStream(streams);
            const sent = sender.send(data, { ...sendOptions, windowChunks, onProgress: (p) => void (bytesSent = p.bytesSent) });
            const stream = await arriving; // taken, not read
            await sleep(1500);
            const stalledAt = bytesSent;
            // One window in flight, plus what the receiver's Readable buffer took before it stalled.
            assert.ok(stalledAt <= (windowChunks + 2) * chunkBytes, `sender ran ${stalledAt} bytes ahead of a stalled consumer`);
            await sleep(500);
            assert.equal(bytesSent, stalledAt, "the sender stays stopped while the consumer is stalled");
            const bytes = await readAll(stream);
            assert.equal((await sent).sha256, sha256(data));
            assert.equal(sha256(bytes), sha256(data));
          }),
        timeoutMs,
      );
    });

    group("abort", "abort", () => {
      test(
        "the sender aborting ends the receiver's stream with StreamAbortedError",
        () =>
          withRig(undefined, async ({ sender, streams, options: sendOptions }) => {
            const controller = new AbortController();
            const arriving = nextStream(streams);
            const sent = sender.send(
              (async function* () {
                yield randomBytes(chunkBytes * 2);
                await sleep(300);
                controller.abort();
                await sleep(10_000);
              })(),
              { ...sendOptions, signal: controller.signal },
            );
            const reading = rejectionOf(arriving.then(readAll));
            const sendError = await rejectionOf(sent);
            assert.ok(StreamAbortedError.isInstance(sendError), `sender got ${String(sendError)}`);
            const readError = await reading;
            assert.ok(StreamAbortedError.isInstance(readError), `receiver got ${String(readError)}`);
          }),
        timeoutMs,
      );
    });

    // Many windows long, so "half way" is in the middle of the transfer, not in its last window.
    const longBytes = chunkBytes * 128 + 999;
    const longWindowChunks = 8;
    /** When `promise` settles (`performance.now()`), and its error (undefined if it resolved). */
    const settling = (promise: Promise<unknown>) =>
      promise.then(
        () => ({ error: undefined as unknown, at: performance.now() }),
        (error: unknown) => ({ error, at: performance.now() }),
      );

    group("cancel", "cancel half way", () => {
      test(
        "the sender's cancel() rejects its send with StreamAbortedError (phase cancelled); the receiver's saveTo rejects with it within 2 s and leaves no partial file",
        () =>
          withRig(undefined, ({ sender, streams, options: sendOptions }) =>
            withFolder(async (dir) => {
              const arriving = nextStream(streams);
              const outgoing = sender.startSend(randomBytes(longBytes), { ...sendOptions, windowChunks: longWindowChunks, name: "cancelled.bin" });
              const saving = settling((await arriving).saveTo(dir));
              let cancelledAt = 0;
              await atHalfWay(outgoing, longBytes, () => {
                cancelledAt = performance.now();
                outgoing.cancel(new Error("the user changed their mind"));
              });
              const sendError = await rejectionOf(outgoing.result);
              assert.ok(StreamAbortedError.isInstance(sendError), `sender got ${String(sendError)}`);
              assert.equal(outgoing.phase, "cancelled");
              const saved = await saving;
              assert.ok(StreamAbortedError.isInstance(saved.error), `saveTo got ${String(saved.error)}`);
              const afterMs = saved.at - cancelledAt;
              assert.ok(afterMs < 2000, `saveTo rejected ${afterMs.toFixed(0)} ms after the cancel`);
              assert.deepEqual(await readdir(dir), [], "nothing of the cancelled stream is kept, no partial file");
              console.log(`[${name} cancel] sender cancel: the receiver's saveTo rejected ${afterMs.toFixed(0)} ms later`);
            }),
          ),
        timeoutMs,
      );
      for (const how of ["reading", "saving"] as const) {
        test(
          `the receiver destroying its stream half way while ${how} rejects the send with StreamAbortedError within 2 s${how === "saving" ? ", and leaves no partial file" : ""}`,
          () =>
            withRig(undefined, ({ sender, streams, options: sendOptions }) =>
              withFolder(async (dir) => {
                const arriving = nextStream(streams);
                const sending = settling(sender.send(randomBytes(longBytes), { ...sendOptions, windowChunks: longWindowChunks, name: "destroyed.bin" }));
                const stream = await arriving;
                let destroyedAt: number | undefined;
                const destroy = () => {
                  destroyedAt ??= performance.now();
                  stream.destroy();
                };
                if (how === "reading") {
                  let bytesRead = 0;
                  for await (const part of stream) {
                    bytesRead += (part as Buffer).byteLength;
                    if (bytesRead >= longBytes / 2) {
                      destroy();
                      break;
                    }
                  }
                } else {
                  const saveError = await rejectionOf(stream.saveTo(dir, { onProgress: ({ bytesReceived }) => void (bytesReceived >= longBytes / 2 && destroy()) }));
                  assert.ok(saveError instanceof Error, `saveTo got ${String(saveError)}`);
                }
                assert.ok(destroyedAt !== undefined, "the stream was destroyed half way");
                const sent = await sending;
                assert.ok(StreamAbortedError.isInstance(sent.error), `sender got ${String(sent.error)}`);
                const afterMs = sent.at - destroyedAt;
                assert.ok(afterMs < 2000, `the send rejected ${afterMs.toFixed(0)} ms after the receiver destroyed its stream`);
                assert.deepEqual(await readdir(dir), [], "nothing of the destroyed stream is kept, no partial file");
                console.log(`[${name} cancel] receiver destroy while ${how}: the send rejected ${afterMs.toFixed(0)} ms later`);
              }),
            ),
          timeoutMs,
        );
      }
    });

    group("resume", "resume after the sender died", () => {
      const cases = [
        { model: "push", patient: false, title: "the receiver gave up on the silent sender (producerTimeoutMs), keeping its partial file" },
        { model: "push", patient: true, title: "the new attempt supersedes the old one before the receiver noticed" },
        { model: "pull", patient: true, title: "a pull: the resumed attempt is asked from where the partial file ends" },
      ] as const;
      for (const { model, patient, title } of cases) {
        test(
          `a sender killed half way sends again with the same streamId and resume: true; ${title}`,
          () =>
            withRig(undefined, ({ receiver, destination, newSender }) =>
              withFolder(async (dir) => {
                const source = join(dir, "movie.bin");
                const folder = join(dir, "inbox");
                const data = randomBytes(longBytes);
                await writeFile(source, data);
                const files = `${destination}.resume`;
                const streams = receiver.receive(files, { producerTimeoutMs: patient ? 60_000 : 2000 });
                await streams.ready;
                const outcomes = saveEach(streams, () => folder);
                const sendOptions: SendOptions = { destination: files, streamId: randomUUID(), chunkBytes, windowChunks: longWindowChunks, model, heartbeatMs: 500 };
                const first = await newSender();
                const doomed = first.client.startSend(source, sendOptions);
                try {
                  await atHalfWay(doomed, longBytes, () => first.crash()); // SIGKILL: not a word more
                  if (!patient) {
                    await until("the receiver to give up on the dead sender", () => outcomes.length === 1);
                    assert.ok(StreamTimeoutError.isInstance(outcomes[0]), `saveTo got ${String(outcomes[0])}`);
                    assert.match(String(outcomes[0]), /presumed dead/);
                    assert.equal((await partialFiles(folder)).length, 1, "the partial file is kept for the resume");
                  }
                  const second = await newSender();
                  const resumed = await second.client.send(source, { ...sendOptions, resume: true });
                  assert.equal(resumed.sha256, sha256(data));
                  const isSaved = (outcome: unknown): outcome is SaveResult => !(outcome instanceof Error);
                  await until("the receiver to save the resumed stream", () => outcomes.some(isSaved));
                  const saved = outcomes.find(isSaved) as SaveResult;
                  assert.equal(saved.sha256, sha256(data));
                  assert.equal(sha256(await readFile(saved.path)), sha256(data));
                  assert.ok(saved.startOffset > 0, "the receiver continued its partial file");
                  assert.equal(resumed.startOffset, saved.startOffset, "the sender knows where the receiver took up");
                  // Resuming sends again at most what the first attempt had in flight: one window.
                  const resent = second.dataBytes();
                  assert.ok(resent <= longBytes - saved.startOffset + longWindowChunks * chunkBytes, `the resumed attempt sent ${resent} bytes from ${saved.startOffset}`);
                  assert.ok(resent < longBytes, `the resumed attempt sent ${resent} bytes, the whole stream is ${longBytes}`);
                  assert.deepEqual(await readdir(folder), ["movie.bin"], "one file, no partial file left");
                  console.log(`[${name} resume] ${model}${patient ? ", superseding" : ""}: resumed from ${saved.startOffset} of ${longBytes} bytes, ${resent} sent again`);
                } finally {
                  doomed.cancel(); // the dead attempt's timers; what it publishes is dropped
                }
              }),
            ),
          timeoutMs,
        );
      }
    });

    group("garbage", "garbage on the destination", () => {
      test(
        "a message that is not a stream frame is reported as ProtocolError and dropped; streams still flow",
        () =>
          withRig(undefined, async ({ sender, senderTransport, streams, frameErrors, destination, options: sendOptions }) => {
            await senderTransport.publish(destination, new TextEncoder().encode("hello, not a frame"), { key: "garbage", kind: "stream" });
            const data = randomBytes(chunkBytes + 5);
            const arriving = nextStream(streams);
            const sent = sender.send(data, sendOptions);
            const bytes = await readAll(await arriving);
            await sent;
            assert.equal(sha256(bytes), sha256(data));
            assert.equal(frameErrors.length, 1);
            assert.ok(ProtocolError.isInstance(frameErrors[0]));
          }),
        timeoutMs,
      );
    });

    group("pull", "pull model", () => {
      test(
        "a pull stream sends no data until the receiver reads it",
        () =>
          withRig(undefined, async ({ sender, streams, options: sendOptions }) => {
            const data = randomBytes(chunkBytes * 3);
            let bytesSent = 0;
            const arriving = nextStream(streams);
            const sent = sender.send(data, { ...sendOptions, model: "pull", onProgress: (p) => void (bytesSent = p.bytesSent) });
            const stream = await arriving;
            assert.equal(stream.manifest.model, "pull");
            await sleep(500);
            assert.equal(bytesSent, 0);
            const bytes = await readAll(stream);
            assert.equal((await sent).sha256, sha256(data));
            assert.equal(sha256(bytes), sha256(data));
          }),
        timeoutMs,
      );
    });

    group("refusal", "a stream the receiver cannot take", () => {
      test(
        "a receiver that cannot write to its folder refuses the stream with the reason within seconds, idles, and takes the next",
        () =>
          withRig(undefined, ({ sender, receiver, destination, options: sendOptions }) =>
            withFolder(async (dir) => {
              await writeFile(join(dir, "file"), "");
              const blocked = join(dir, "file", "inbox"); // ENOTDIR for any user, root included
              const refusing = `${destination}.refusal`;
              const streams = receiver.receive(refusing); // the default retry: 3 attempts, 1 s then 2 s apart
              await streams.ready;
              const outcomes = saveEach(streams, (n) => (n === 0 ? blocked : join(dir, "good")));
              const started = Date.now();
              const sendError = await rejectionOf(sender.send(randomBytes(chunkBytes * 3), { ...sendOptions, destination: refusing, name: "video.mp4" }));
              const elapsedMs = Date.now() - started;
              assert.ok(StreamRefusedError.isInstance(sendError), `sender got ${String(sendError)}`);
              assert.match(String(sendError), new RegExp(`the receiver cannot write to its folder ${blocked}: ENOTDIR`));
              assert.ok(elapsedMs >= 2900 && elapsedMs < 8000, `refused after ${elapsedMs} ms`);
              assert.ok(TargetFolderError.isInstance(outcomes[0]), `saveTo got ${String(outcomes[0])}`);
              // Nothing can progress now: no redelivery loop, the process idles.
              const before = process.cpuUsage();
              await sleep(2000);
              const cpu = process.cpuUsage(before);
              const cpuMs = (cpu.user + cpu.system) / 1000;
              assert.ok(cpuMs < 200, `${cpuMs} ms of CPU in the 2 s after the refusal`);
              const data = randomBytes(chunkBytes + 1);
              await sender.send(data, { ...sendOptions, destination: refusing, name: "next.bin" });
              assert.equal(sha256(await readFile(join(dir, "good", "next.bin"))), sha256(data));
            }),
          ),
        timeoutMs,
      );
    });

    group("withdrawal", "a send that timed out", () => {
      test(
        "is withdrawn: a receiver started later saves nothing, and the same stream id sent again is saved once",
        () =>
          withRig(undefined, ({ sender, receiver, senderTransport, destination, options: sendOptions }) =>
            withFolder(async (dir) => {
              // A broker that keeps nothing for absent consumers has nothing to deliver late.
              if (senderTransport.capabilities.retention === "none") return;
              const late = `${destination}.late`;
              const data = randomBytes(chunkBytes * 3 + 5);
              const streamId = randomUUID();
              const send = () => sender.send(data, { ...sendOptions, destination: late, name: "report.pdf", streamId, idleTimeoutMs: 1500 });
              const sendError = await rejectionOf(send());
              assert.ok(StreamTimeoutError.isInstance(sendError), `sender got ${String(sendError)}`);
              assert.match(String(sendError), /withdrawn.*safe to send again/);
              const streams = receiver.receive(late);
              await streams.ready;
              const outcomes = saveEach(streams, () => dir);
              // The late receiver gets the withdrawn stream's frames, the Abort among them.
              for (let waitedMs = 0; outcomes.length === 0 && waitedMs < 20_000; waitedMs += 100) await sleep(100);
              assert.equal(outcomes.length, 1, "the late receiver met the withdrawn stream");
              assert.ok(StreamAbortedError.isInstance(outcomes[0]), `saveTo got ${String(outcomes[0])}`);
              assert.match(String(outcomes[0]), /the sender withdrew the stream/);
              assert.deepEqual(await readdir(dir), [], "nothing saved of the withdrawn stream");
              assert.equal((await send()).sha256, sha256(data));
              assert.deepEqual(await readdir(dir), ["report.pdf"]);
              assert.equal(sha256(await readFile(join(dir, "report.pdf"))), sha256(data));
            }),
          ),
        timeoutMs,
      );
    });

    group("expiry", "a stream that expires in the broker (expireAfterMs)", () => {
      test(
        "nobody took it: after its expiry a receiver gets no frame of it, while the same send without expiry is delivered",
        () =>
          withRig(undefined, async ({ sender, receiver, senderTransport, destination, options: sendOptions }) => {
            const { messageExpiry, brokerAcks, retention } = senderTransport.capabilities;
            const data = randomBytes(chunkBytes * 3 + 5);
            const stored = { ...sendOptions, flowControl: "broker" as const };
            const [expiring, kept] = [`${destination}.expiring`, `${destination}.kept`];
            if (!messageExpiry) {
              // Refused up front rather than leave frames in the broker it promised would go.
              const refused = await rejectionOf(sender.send(data, { ...sendOptions, destination: expiring, expireAfterMs: 2000 }));
              assert.ok(refused instanceof TypeError && /messageExpiry/.test(refused.message), `send got ${String(refused)}`);
              return;
            }
            // A broker that keeps nothing for an absent receiver has nothing to expire.
            if (!brokerAcks || retention === "none") return;
            const sent = await sender.send(data, { ...stored, destination: expiring, expireAfterMs: 2000 });
            await sender.send(data, { ...stored, destination: kept });
            await sleep(Date.parse(sent.manifest.expiresAt ?? "") - Date.now() + 500);
            // Through a plain subscription, so that a stray Data or End counts as much as the Open.
            const late = await options.createTransport();
            let frames = 0;
            try {
              await late.subscribe(expiring, () => void (frames += 1), { kind: "stream" });
              await sleep(3000);
            } finally {
              await late.close();
            }
            assert.equal(frames, 0, "frames of the expired stream were delivered");
            const later = receiver.receive(kept);
            assert.equal(sha256(await readAll(await nextStream(later))), sha256(data));
            await later.close();
          }),
        timeoutMs,
      );
    });

    group("e2e", "end-to-end encryption", () => {
      const key = e2eKey(randomBytes(32), "conformance");
      test(
        "an encrypted multi-chunk file round-trips to the receiver holding the key, name and metadata restored",
        () =>
          withRig(undefined, async ({ sender, receiver, destination, options: sendOptions }) => {
            const sealed = receiver.receive(`${destination}.e2e`, { keys: [key], requireEncryption: true });
            try {
              await sealed.ready;
              const data = randomBytes(chunkBytes * 4 + 321);
              const arriving = nextStream(sealed);
              const sent = sender.send(data, { ...sendOptions, destination: `${destination}.e2e`, name: "sealed.bin", metadata: { team: "a" }, encryption: key });
              const stream = await arriving;
              assert.equal(stream.manifest.name, "sealed.bin");
              assert.deepEqual(stream.manifest.metadata, { team: "a" });
              assert.equal(stream.manifest.e2e?.keyId, "conformance");
              assert.equal(sha256(await readAll(stream)), sha256(data));
              assert.equal((await sent).sha256, sha256(data));
              assert.equal((await stream.result).sha256, sha256(data));
            } finally {
              await sealed.close();
            }
          }),
        timeoutMs,
      );
      test(
        "a receiver without the key refuses it (E2eKeyError), its sender told, nothing handed over",
        () =>
          withRig(undefined, async ({ sender, streams, frameErrors, options: sendOptions }) => {
            let handed = 0;
            streams.on("stream", () => void (handed += 1));
            const refused = await rejectionOf(sender.send(randomBytes(chunkBytes * 2), { ...sendOptions, name: "sealed.bin", encryption: key }));
            assert.ok(StreamRefusedError.isInstance(refused), `send got ${String(refused)}`);
            assert.match(refused.reason, /no key conformance/);
            assert.ok(frameErrors.some((error) => E2eKeyError.isInstance(error)), "the receiver reported an E2eKeyError");
            assert.equal(handed, 0);
          }),
        timeoutMs,
      );
    });

    group("compression", "compression", () => {
      test(
        "a compressible multi-chunk file sent with zstd round-trips, in fewer data bytes than it has",
        () =>
          withRig(undefined, async ({ streams, options: sendOptions, newSender }) => {
            const line = (i: number) => `${String(i).padStart(8, "0")} GET /files/${i % 13}.bin 200 ${i % 997} ms\n`;
            const data = Buffer.from(Array.from({ length: Math.ceil((chunkBytes * 4 + 321) / line(0).length) }, (_, i) => line(i)).join("")).subarray(0, chunkBytes * 4 + 321);
            const tapped = await newSender();
            const arriving = nextStream(streams);
            const sent = tapped.client.send(data, { ...sendOptions, name: "app.log", compression: "zstd" });
            const stream = await arriving;
            assert.equal(stream.manifest.compression, "zstd");
            assert.equal(stream.manifest.sizeBytes, data.byteLength);
            assert.equal(sha256(await readAll(stream)), sha256(data));
            assert.equal((await sent).sha256, sha256(data));
            assert.equal((await stream.result).sha256, sha256(data));
            assert.ok(tapped.dataBytes() < data.byteLength / 2, `${tapped.dataBytes()} data bytes published for ${data.byteLength}`);
          }),
        timeoutMs,
      );
    });
  });
}
