import { createHash, randomBytes, randomUUID } from "node:crypto";
import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, test } from "vitest";
import { crc32 } from "../checksum";
import { createStreamClient, type StreamClient } from "../client";
import { E2eKeyError } from "../errors/e2e-key-error";
import { IntegrityError } from "../errors/integrity-error";
import { StreamRefusedError } from "../errors/stream-refused-error";
import type { StreamError } from "../errors/stream-error";
import type { IncomingStream } from "../incoming-stream";
import { TransferJournal } from "../journal";
import { DATA_HEADER_BYTES, decodeFrame, encodeFrame } from "../protocol/frame-codec";
import { type Frame, FrameType } from "../protocol/frames";
import type { SaveResult } from "../save-to";
import type { SendOptions } from "../sender";
import type { ReceiveOptions } from "../stream-receiver";
import { createMemoryTransport, MemoryBroker, type MemoryTransport } from "../testing/memory-transport";
import { defaultKeyId, E2eKeyring, e2eKey } from "./e2e-keyring";
import { E2E_TAG_BYTES, StreamCipher } from "./stream-cipher";
import { tappedTransport, until } from "../test-support";

const sha256 = (bytes: Uint8Array) => createHash("sha256").update(bytes).digest("hex");
const CHUNK = 16 * 1024;
const SIZE = 40 * CHUNK + 777;
const NAME = "quarterly-secrets.pdf";
const KEY = e2eKey(randomBytes(32), "team-a");

let dir: string;
let clients: StreamClient[] = [];
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "stream-e2e-"));
});
afterEach(async () => {
  await Promise.all(clients.map((client) => client.close()));
  clients = [];
  await rm(dir, { recursive: true, force: true });
});


/** A client whose published frames are recorded, and may be changed on their way (`tamper`). */
function tappedClient(broker: MemoryBroker, tamper?: (frame: Uint8Array) => Uint8Array) {
  const { transport, published } = tappedTransport(broker, tamper);
  const client = createStreamClient({ transport, retry: false });
  clients.push(client);
  return { client, transport, published };
}

/** A receiver saving every stream into `folder`, recording outcomes and frame errors. */
async function savingReceiver(broker: MemoryBroker, folder: string, options: ReceiveOptions = {}, onBytes?: (bytes: number) => void) {
  const client = createStreamClient({ transport: createMemoryTransport({ broker }) });
  clients.push(client);
  const frameErrors: StreamError[] = [];
  const receiver = client.receive("files", { onFrameError: (error) => frameErrors.push(error), ...options });
  await receiver.ready;
  const outcomes: Array<SaveResult | Error> = [];
  const streams: IncomingStream[] = [];
  let progress = 0;
  receiver.on("stream", (stream: IncomingStream) => {
    streams.push(stream);
    stream.saveTo(folder, { onProgress: ({ bytesReceived }) => {
      progress = bytesReceived;
      onBytes?.(bytesReceived);
    } }).then(
      (saved) => outcomes.push(saved),
      (error: Error) => outcomes.push(error),
    );
  });
  return { outcomes, streams, frameErrors, progress: () => progress };
}

const send = (client: StreamClient, source: string | Uint8Array, options: Partial<SendOptions> = {}) =>
  client.send(source, { destination: "files", name: NAME, metadata: { owner: "finance" }, chunkBytes: CHUNK, windowChunks: 8, encryption: KEY, ...options });

const contains = (haystack: Uint8Array, needle: Uint8Array) => Buffer.from(haystack).indexOf(needle) !== -1;

/** Frames of `type` changed by `change`; the others as they are. */
function onType(type: number, change: (frame: Frame, bytes: Uint8Array) => Uint8Array) {
  let done = false;
  return (bytes: Uint8Array) => {
    if (done || bytes[3] !== type) return bytes;
    done = true;
    return change(decodeFrame(bytes), bytes);
  };
}

describe("end-to-end encryption", () => {
  test("round trip: the receiver with the key saves the file under its name; the broker never carries the plaintext, the name or the metadata", async () => {
    const broker = new MemoryBroker();
    const folder = join(dir, "inbox");
    const bytes = randomBytes(SIZE);
    const receiving = await savingReceiver(broker, folder, { keys: [KEY], requireEncryption: true });
    const sender = tappedClient(broker);
    const sent = await send(sender.client, bytes);
    await until(() => receiving.outcomes.length === 1);
    const saved = receiving.outcomes[0] as SaveResult;
    expect(saved.path).toBe(join(folder, NAME));
    expect((await readFile(saved.path)).equals(bytes)).toBe(true);
    expect(saved.sha256).toBe(sha256(bytes));
    expect(sent.sha256).toBe(sha256(bytes));
    expect(sent.manifest).toMatchObject({ name: NAME, e2e: { keyId: "team-a" } });
    expect(receiving.streams[0]?.manifest).toMatchObject({ name: NAME, metadata: { owner: "finance" }, sizeBytes: SIZE, e2e: { keyId: "team-a" } });
    // What went through the broker: no name, no metadata, no size, no SHA-256, no 64-byte run of the content.
    const wire = Buffer.concat(sender.published);
    for (const secret of [NAME, "finance", String(SIZE), sha256(bytes), Buffer.from(sha256(bytes), "hex")]) {
      expect(contains(wire, typeof secret === "string" ? Buffer.from(secret) : secret)).toBe(false);
    }
    for (let at = 0; at + 64 <= SIZE; at += CHUNK / 2) expect(contains(wire, bytes.subarray(at, at + 64))).toBe(false);
    const open = decodeFrame(sender.published.find((frame) => frame[3] === FrameType.Open) as Uint8Array);
    expect(open.type === FrameType.Open && open.manifest).toMatchObject({ name: "", metadata: {}, e2e: { keyId: "team-a" } });
    expect(open.type === FrameType.Open && open.manifest.sizeBytes).toBeUndefined();
  });

  test("a receiver without the key refuses the stream with E2eKeyError, tells the sender (naming only the key id) and writes nothing", async () => {
    const broker = new MemoryBroker();
    const folder = join(dir, "inbox");
    const other = e2eKey(randomBytes(32), "team-b");
    for (const keys of [undefined, [other]]) {
      const receiving = await savingReceiver(broker, folder, keys ? { keys } : {});
      const sender = tappedClient(broker);
      const error = await send(sender.client, randomBytes(SIZE)).catch((caught: unknown) => caught);
      expect(StreamRefusedError.isInstance(error)).toBe(true);
      expect((error as StreamRefusedError).reason).toBe("the receiver has no key team-a for this end-to-end encrypted stream");
      expect(receiving.frameErrors.some((frameError) => E2eKeyError.isInstance(frameError) && frameError.keyId === "team-a")).toBe(true);
      expect(receiving.streams).toHaveLength(0);
      await expect(readdir(folder)).rejects.toThrow(/ENOENT/);
      await clients.pop()?.close();
      await clients.pop()?.close();
    }
  });

  test("a receiver holding another key under the same id fails the manifest's seal: IntegrityError, nothing written", async () => {
    const broker = new MemoryBroker();
    const folder = join(dir, "inbox");
    const receiving = await savingReceiver(broker, folder, { keys: [e2eKey(randomBytes(32), "team-a")] });
    const error = await send(tappedClient(broker).client, randomBytes(SIZE)).catch((caught: unknown) => caught);
    expect(IntegrityError.isInstance(error)).toBe(true);
    expect(receiving.frameErrors.some((frameError) => IntegrityError.isInstance(frameError))).toBe(true);
    expect(receiving.streams).toHaveLength(0);
    await expect(readdir(folder)).rejects.toThrow(/ENOENT/);
  });

  test("requireEncryption refuses a plain stream with E2eKeyError", async () => {
    const broker = new MemoryBroker();
    const receiving = await savingReceiver(broker, join(dir, "inbox"), { keys: [KEY], requireEncryption: true });
    const error = await send(tappedClient(broker).client, randomBytes(100), { encryption: undefined }).catch((caught: unknown) => caught);
    expect((error as StreamRefusedError).reason).toBe("the receiver takes only end-to-end encrypted streams");
    expect(E2eKeyError.isInstance(receiving.frameErrors[0])).toBe(true);
  });

  const flips: Array<[string, (bytes: Uint8Array) => Uint8Array, RegExp]> = [
    [
      "a bit of a sealed chunk (its CRC-32 made to match)",
      onType(FrameType.Data, (_frame, bytes) => {
        bytes[DATA_HEADER_BYTES + 5] = (bytes[DATA_HEADER_BYTES + 5] as number) ^ 0x01;
        new DataView(bytes.buffer, bytes.byteOffset).setUint32(32, crc32(bytes.subarray(DATA_HEADER_BYTES)));
        return bytes;
      }),
      /does not open under the stream's key/,
    ],
    [
      "a bit of a chunk's tag (its CRC-32 made to match)",
      onType(FrameType.Data, (_frame, bytes) => {
        bytes[bytes.byteLength - 1] = (bytes[bytes.byteLength - 1] as number) ^ 0x80;
        new DataView(bytes.buffer, bytes.byteOffset).setUint32(32, crc32(bytes.subarray(DATA_HEADER_BYTES)));
        return bytes;
      }),
      /does not open under the stream's key/,
    ],
    [
      "a bit of the sealed manifest",
      onType(FrameType.Open, (frame) => {
        if (frame.type !== FrameType.Open || !frame.manifest.e2e) throw new Error("not a sealed Open");
        const sealed = Buffer.from(frame.manifest.e2e.sealed, "base64url");
        sealed[3] = (sealed[3] as number) ^ 0x04;
        return encodeFrame({ ...frame, manifest: { ...frame.manifest, e2e: { ...frame.manifest.e2e, sealed: sealed.toString("base64url") } } });
      }),
      /sealed manifest/,
    ],
    [
      "a clear manifest field the seal covers (the window)",
      onType(FrameType.Open, (frame) => {
        if (frame.type !== FrameType.Open) throw new Error("not an Open");
        return encodeFrame({ ...frame, manifest: { ...frame.manifest, windowChunks: frame.manifest.windowChunks ^ 1 } });
      }),
      /sealed manifest/,
    ],
    [
      "a bit of the End's tag",
      onType(FrameType.End, (_frame, bytes) => {
        bytes[40] = (bytes[40] as number) ^ 0x10;
        return bytes;
      }),
      /SHA-256/,
    ],
  ];
  for (const [what, tamper, message] of flips) {
    test(`a flipped bit is caught: ${what}; IntegrityError, nothing saved`, async () => {
      const broker = new MemoryBroker();
      const folder = join(dir, "inbox");
      const receiving = await savingReceiver(broker, folder, { keys: [KEY] });
      const bytes = randomBytes(SIZE);
      const error = await send(tappedClient(broker, tamper).client, bytes).catch((caught: unknown) => caught);
      expect(IntegrityError.isInstance(error)).toBe(true);
      const caught = () => [...receiving.frameErrors, ...receiving.outcomes].some((failure) => IntegrityError.isInstance(failure) && message.test(failure.message));
      await until(caught);
      const files = await readdir(folder).catch(() => []);
      expect(files.filter((name) => !name.endsWith(".partial"))).toEqual([]);
    });
  }

  test("the tag fits the transport: chunks are 16 bytes smaller than an unencrypted stream's", async () => {
    const broker = new MemoryBroker();
    const capabilities = { maxFrameBytes: 4096 + DATA_HEADER_BYTES };
    const receiverClient = createStreamClient({ transport: createMemoryTransport({ broker, capabilities }) });
    clients.push(receiverClient);
    const receiver = receiverClient.receive("files", { keys: [KEY] });
    await receiver.ready;
    const got = new Promise<Buffer>((resolve) => {
      receiver.once("stream", async (stream: IncomingStream) => {
        const parts: Buffer[] = [];
        for await (const part of stream) parts.push(part as Buffer);
        resolve(Buffer.concat(parts));
      });
    });
    const sender = createStreamClient({ transport: createMemoryTransport({ broker, capabilities }) });
    clients.push(sender);
    const bytes = randomBytes(50_000);
    const sent = await sender.send(bytes, { destination: "files", encryption: KEY });
    expect(sent.manifest.chunkBytes).toBe(4096 - E2E_TAG_BYTES);
    expect((await got).equals(bytes)).toBe(true);
  });

  test("nonces: two attempts at one stream id under one key never share keys; a chunk sent again is sealed to the same bytes", () => {
    const streamId = randomUUID();
    const chunk = randomBytes(1000);
    const first = StreamCipher.forSend(KEY, streamId);
    const second = StreamCipher.forSend(KEY, streamId);
    expect(first.salt).not.toBe(second.salt);
    const a = first.sealData(0, 0, chunk).subarray(DATA_HEADER_BYTES);
    expect(Buffer.from(a).equals(first.sealData(0, 0, chunk).subarray(DATA_HEADER_BYTES))).toBe(true); // deterministic resend
    // Same plaintext, same sequence, other attempt: other keys, so other bytes (no keystream reused).
    const b = second.sealData(0, 0, chunk).subarray(DATA_HEADER_BYTES);
    expect(Buffer.from(a).equals(b)).toBe(false);
    const xorA = Buffer.from(a.subarray(0, 1000).map((byte, i) => byte ^ (chunk[i] as number)));
    const xorB = Buffer.from(b.subarray(0, 1000).map((byte, i) => byte ^ (chunk[i] as number)));
    expect(xorA.equals(xorB)).toBe(false);
    // Sequence and offset are bound in: a chunk moved to another place does not open.
    const moved = first.sealData(1, 1000, chunk);
    const frame = decodeFrame(encodeFrame({ type: FrameType.Data, streamId, sequence: 2, offset: 2000, crc32: 0, payload: moved.subarray(DATA_HEADER_BYTES) }));
    expect(frame.type === FrameType.Data && first.openData(frame)).toBeUndefined();
  });

  test("resume: a sender killed half way resumes under the same key, new salt; the receiver continues its plaintext partial file", async () => {
    const broker = new MemoryBroker();
    const folder = join(dir, "inbox");
    const source = join(dir, "source.bin");
    const bytes = randomBytes(SIZE);
    await writeFile(source, bytes);
    const first = tappedClient(broker);
    // Killed (SIGKILL: not a word more) as soon as the receiver has saved half, so never whole.
    const receiving = await savingReceiver(broker, folder, { keys: new E2eKeyring([KEY]), producerTimeoutMs: 60_000 }, (bytes) => {
      if (bytes >= SIZE / 2) first.transport.crash();
    });
    const streamId = randomUUID();
    send(first.client, source, { streamId }).catch(() => {});
    await until(() => receiving.progress() >= SIZE / 2);
    const second = tappedClient(broker);
    const resumed = await send(second.client, source, { streamId, resume: true, heartbeatMs: 100 });
    expect(resumed.sha256).toBe(sha256(bytes));
    expect(resumed.startOffset).toBeGreaterThan(0);
    await until(() => receiving.outcomes.some((outcome) => !(outcome instanceof Error)));
    const saved = receiving.outcomes.find((outcome): outcome is SaveResult => !(outcome instanceof Error)) as SaveResult;
    expect((await readFile(saved.path)).equals(bytes)).toBe(true);
    const salts = [first, second].map(({ published }) => {
      const open = decodeFrame(published.find((frame) => frame[3] === FrameType.Open) as Uint8Array);
      return open.type === FrameType.Open ? open.manifest.e2e?.salt : undefined;
    });
    expect(salts[0]).not.toBe(salts[1]);
  }, 20_000);

  test("takeover: a receiver dies half way, another with the key takes the stream over; every chunk sent again is byte-identical", async () => {
    const broker = new MemoryBroker();
    const source = join(dir, "source.bin");
    const bytes = randomBytes(SIZE);
    await writeFile(source, bytes);
    const dying = createMemoryTransport({ broker });
    const dyingClient = createStreamClient({ transport: dying, retry: false });
    clients.push(dyingClient);
    const firstReceiver = dyingClient.receive("files", { keys: [KEY] });
    await firstReceiver.ready;
    const died = new Promise<void>((resolve) => {
      firstReceiver.once("stream", (stream: IncomingStream) => {
        stream
          .saveTo(dir, {
            onProgress: ({ bytesReceived }) => {
              if (bytesReceived >= SIZE / 2) {
                dying.crash();
                resolve();
              }
            },
          })
          .catch(() => {});
      });
    });
    const sender = tappedClient(broker);
    const sent = send(sender.client, source, { takeoverAfterMs: 300 });
    sent.catch(() => {});
    await died;
    const receiving = await savingReceiver(broker, dir, { keys: [KEY] });
    expect((await sent).sha256).toBe(sha256(bytes));
    await until(() => receiving.outcomes.length === 1);
    const saved = receiving.outcomes[0] as SaveResult;
    expect((await readFile(saved.path)).equals(bytes)).toBe(true);
    expect(saved.startOffset).toBeGreaterThan(0); // it continued the dead receiver's plaintext partial file
    const bySequence = new Map<number, Buffer>();
    for (const frame of sender.published.filter((published) => published[3] === FrameType.Data)) {
      const sequence = new DataView(frame.buffer, frame.byteOffset).getUint32(20);
      const seen = bySequence.get(sequence);
      if (seen) expect(seen.equals(frame)).toBe(true);
      else bySequence.set(sequence, Buffer.from(frame));
    }
  }, 20_000);
});

describe("a journaled encrypted send", () => {
  test("records its key id, never its key, and resumes only with a key", async () => {
    const source = join(dir, "source.bin");
    await writeFile(source, randomBytes(SIZE));
    const journal = new TransferJournal({ dir: join(dir, "state") });
    const client = createStreamClient({ transport: createMemoryTransport(), journal });
    clients.push(client);
    const failed = await send(client, source, { idleTimeoutMs: 300 }).catch((error: unknown) => error);
    expect(String(failed)).toMatch(/withdrawn/);
    const [record] = await journal.list();
    expect(record?.e2eKeyId).toBe("team-a");
    const stored = (await readdir(journal.dir)).map((name) => join(journal.dir, name));
    for (const file of stored) expect((await readFile(file)).includes(Buffer.from(KEY.key).toString("base64"))).toBe(false);
    const refused = await client.resumeSend(record?.id ?? "").catch((error: unknown) => error);
    expect(E2eKeyError.isInstance(refused) && refused.keyId).toBe("team-a");
  });
});

describe("E2eKeyring", () => {
  test("reads keyId:base64, bare hex (its id derived), comments, files and environment variables", async () => {
    const key = randomBytes(32);
    const text = `# team keys\nteam-a:${key.toString("base64")}\n${"ab".repeat(32)}\n`;
    const ring = E2eKeyring.parse(text);
    expect(ring.keyIds).toEqual(["team-a", defaultKeyId(Buffer.from("ab".repeat(32), "hex"))]);
    expect(Buffer.from(ring.primary.key).equals(key)).toBe(true);
    const file = join(dir, "stream.key");
    await writeFile(file, `${E2eKeyring.generate("ops")}\n`);
    expect(E2eKeyring.fromFile(file).primary.keyId).toBe("ops");
    expect(E2eKeyring.fromEnv("STREAM_E2E_KEY", { STREAM_E2E_KEY: `x:${key.toString("base64url")}` })?.get("x")?.key).toEqual(Uint8Array.from(key));
    expect(E2eKeyring.fromEnv("STREAM_E2E_KEY", {})).toBeUndefined();
  });

  test("refuses what is not a key with E2eKeyError, without echoing it", () => {
    for (const bad of ["", "short", `a b:${randomBytes(32).toString("base64")}`, randomBytes(31).toString("hex")]) {
      let caught: unknown;
      try {
        E2eKeyring.parse(bad);
      } catch (error) {
        caught = error;
      }
      expect(E2eKeyError.isInstance(caught)).toBe(true);
      if (bad.length > 10) expect((caught as Error).message).not.toContain(bad.slice(-20));
    }
    expect(() => E2eKeyring.fromFile(join(dir, "missing.key"))).toThrow(/ENOENT/);
  });
});
