import { createHash } from "node:crypto";
import { availableParallelism } from "node:os";
import { Worker } from "node:worker_threads";
import { StreamError } from "./errors/stream-error";

/**
 * The SHA-256 of a whole stream, computed as its chunks go by: used by the sender and by every
 * incoming stream, so both ends hash the same way.
 *
 * SHA-256 is the single largest cost of a transfer (about 1.4 GB/s on one core here, once per
 * side). On a machine with cores to spare ({@link HASH_ON_THREAD}) large chunks are hashed on a
 * worker thread: the event loop only copies each chunk into a buffer the worker hands back (a
 * fixed pool, so nothing waits for a GC). The copy is bounded: {@link backlogBytes} says how far
 * the worker is behind, and callers stop taking chunks while it is over {@link MAX_BACKLOG_BYTES}.
 */
export interface StreamHasher {
  update(bytes: Uint8Array): void;
  /** The digest of everything given to {@link update}; the hasher is spent after it. */
  digest(): Promise<Buffer>;
  /**
   * The digest of everything given to {@link update} so far, the hasher going on (a copy of its
   * state: no byte is hashed twice). `undefined` once it is spent or disposed.
   */
  peek(): Promise<Buffer | undefined>;
  /** Bytes handed over and not yet hashed. */
  readonly backlogBytes: number;
  /** Resolves once {@link backlogBytes} is under {@link MAX_BACKLOG_BYTES}. */
  drained(): Promise<void>;
  /** Frees the hasher without a digest (a failed stream). */
  dispose(): void;
}

/** How far a worker hasher may fall behind before callers wait for it. */
export const MAX_BACKLOG_BYTES = 8 * 1024 * 1024;
/** Chunks at least this large are hashed on the worker thread. */
export const WORKER_HASH_MIN_CHUNK_BYTES = 64 * 1024;

const WORKER_SOURCE = `
const { parentPort } = require("node:worker_threads");
const { createHash } = require("node:crypto");
const hashes = new Map();
parentPort.on("message", (message) => {
  const { id, op } = message;
  if (op === "update") {
    let hash = hashes.get(id);
    if (!hash) hashes.set(id, (hash = createHash("sha256")));
    hash.update(new Uint8Array(message.buffer, 0, message.length));
    // The buffer goes back to be filled again: no garbage, so no memory waiting for a GC.
    parentPort.postMessage({ id, op: "hashed", buffer: message.buffer, length: message.length }, [message.buffer]);
  } else if (op === "peek") {
    const hash = hashes.get(id);
    const digest = hash ? hash.copy().digest() : undefined;
    parentPort.postMessage({ id, op: "peeked", digest }, digest ? [digest.buffer] : []);
  } else if (op === "digest") {
    const hash = hashes.get(id) ?? createHash("sha256");
    hashes.delete(id);
    const digest = hash.digest();
    parentPort.postMessage({ id, op: "digest", digest }, [digest.buffer]);
  } else if (op === "dispose") {
    hashes.delete(id);
  }
});
`;

interface WorkerSession {
  hashed(buffer: ArrayBuffer, length: number): void;
  peeked(digest: Uint8Array | undefined): void;
  digested(digest: Uint8Array): void;
  failed(error: Error): void;
}

/** One worker thread shared by every hasher in the process, started on first use. */
let shared: { worker: Worker; sessions: Map<number, WorkerSession>; nextId: number } | undefined;

function hashWorker(): NonNullable<typeof shared> {
  if (shared) return shared;
  const worker = new Worker(WORKER_SOURCE, { eval: true });
  const state = { worker, sessions: new Map<number, WorkerSession>(), nextId: 1 };
  worker.on("message", (message: { id: number; op: string; buffer?: ArrayBuffer; length?: number; digest?: Uint8Array }) => {
    const session = state.sessions.get(message.id);
    if (message.op === "hashed") session?.hashed(message.buffer as ArrayBuffer, message.length ?? 0);
    else if (message.op === "digest") session?.digested(message.digest as Uint8Array);
    else if (message.op === "peeked") session?.peeked(message.digest);
  });
  worker.on("error", (error) => {
    // Every stream hashing here fails (and says so) rather than waiting forever.
    if (shared === state) shared = undefined;
    for (const session of state.sessions.values()) session.failed(error);
    state.sessions.clear();
  });
  worker.unref();
  shared = state;
  return state;
}

function inlineHasher(): StreamHasher {
  const hash = createHash("sha256");
  let spent = false;
  return {
    update: (bytes) => void hash.update(bytes),
    digest: async () => {
      spent = true;
      return hash.digest();
    },
    peek: async () => (spent ? undefined : hash.copy().digest()),
    backlogBytes: 0,
    drained: async () => {},
    dispose: () => {},
  };
}

function workerHasher(): StreamHasher {
  const { worker, sessions } = hashWorker();
  const id = shared!.nextId++;
  let backlog = 0;
  /** Buffers back from the worker, to copy the next chunks into. */
  const pool: ArrayBuffer[] = [];
  let wake: (() => void) | undefined;
  let done: ((digest: Buffer) => void) | undefined;
  let broken: ((error: Error) => void) | undefined;
  let failure: Error | undefined;
  /** Peeks asked for, answered in order (the worker takes messages in order). */
  const peeks: Array<(digest: Buffer | undefined) => void> = [];
  const endPeeks = (): void => {
    for (const resolve of peeks.splice(0)) resolve(undefined);
  };
  sessions.set(id, {
    hashed(buffer, length) {
      backlog -= length;
      if (pool.length * buffer.byteLength < MAX_BACKLOG_BYTES) pool.push(buffer);
      if (backlog < MAX_BACKLOG_BYTES && wake) {
        const resolve = wake;
        wake = undefined;
        resolve();
      }
    },
    peeked(digest) {
      peeks.shift()?.(digest ? Buffer.from(digest.buffer, digest.byteOffset, digest.byteLength) : undefined);
    },
    failed(error) {
      endPeeks();
      failure = new StreamError("STREAM_HASH", { message: `[stream] the hashing thread failed: ${error.message}`, cause: error, retryable: true });
      broken?.(failure);
      backlog = 0;
      const resolve = wake;
      wake = undefined;
      resolve?.();
    },
    digested(digest) {
      endPeeks();
      sessions.delete(id);
      if (sessions.size === 0) worker.unref();
      done?.(Buffer.from(digest.buffer, digest.byteOffset, digest.byteLength));
    },
  });
  worker.ref(); // A digest is owed: keep the process alive until it comes.
  return {
    update(bytes) {
      if (failure) return; // digest() reports it
      let buffer = pool.pop();
      if (buffer === undefined || buffer.byteLength < bytes.byteLength) buffer = new ArrayBuffer(bytes.byteLength);
      new Uint8Array(buffer).set(bytes);
      backlog += bytes.byteLength;
      worker.postMessage({ id, op: "update", buffer, length: bytes.byteLength }, [buffer]);
    },
    digest() {
      if (failure) return Promise.reject(failure);
      return new Promise((resolve, reject) => {
        done = resolve;
        broken = reject;
        worker.postMessage({ id, op: "digest" });
      });
    },
    peek() {
      if (failure || !sessions.has(id)) return Promise.resolve(undefined);
      return new Promise((resolve) => {
        peeks.push(resolve);
        worker.postMessage({ id, op: "peek" });
      });
    },
    get backlogBytes() {
      return backlog;
    },
    drained() {
      if (failure || backlog < MAX_BACKLOG_BYTES) return Promise.resolve();
      return new Promise((resolve) => {
        wake = resolve;
      });
    },
    dispose() {
      endPeeks();
      if (!sessions.delete(id)) return;
      if (sessions.size === 0) worker.unref();
      worker.postMessage({ id, op: "dispose" });
    },
  };
}

/**
 * Whether SHA-256 runs on the hashing thread by default: only where there are cores to spare.
 * Measured here on 2 cores (broker, sender and receiver sharing them), handing chunks to a
 * thread cost as much as hashing them and raised peak RSS by 20-40 MB, for no throughput.
 */
export const HASH_ON_THREAD = availableParallelism() >= 4;

/** A hasher for a stream of `chunkBytes` chunks: on the hashing thread for large chunks, where it pays. */
export function createStreamHasher(chunkBytes: number, onThread = HASH_ON_THREAD): StreamHasher {
  return onThread && chunkBytes >= WORKER_HASH_MIN_CHUNK_BYTES ? workerHasher() : inlineHasher();
}
