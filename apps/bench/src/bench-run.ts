import type { BrokerName } from "./brokers";

/** Which side of the comparison a run is: the broker's raw client, or @stream over its adapter. */
export type RunMode = "raw" | "stream";

/** What a worker process is told to do (its one command-line argument, as JSON). */
export interface WorkerTask {
  /** `local`: sender and receiver in one process, for the in-memory transport. */
  readonly role: "send" | "receive" | "local";
  readonly mode: RunMode;
  readonly broker: BrokerName;
  /** Queue / topic / channel name, fresh for each run. */
  readonly destination: string;
  /** The input file (send, local). */
  readonly inputFile?: string;
  /** Where the receiver writes what it gets (receive, local). */
  readonly outputFile?: string;
  readonly sizeBytes: number;
  readonly chunkBytes: number;
  /** Chunks in flight: @stream's window, the raw sender's bound on unconfirmed publishes. */
  /** Chunks in flight; for @stream, undefined leaves core's default. */
  readonly windowChunks: number | undefined;
}

/** What a worker measured; times are epoch milliseconds with sub-millisecond precision. */
export interface WorkerReport {
  readonly role: WorkerTask["role"];
  /** Sender: the moment it began reading the file (after connecting and any warm-up). */
  readonly startedAt?: number;
  /** Receiver: the first payload byte's arrival. */
  readonly firstByteAt?: number;
  /** Receiver: the last byte written (and, for @stream, verified); sender: its send resolved. */
  readonly doneAt: number;
  /** Unique payload bytes received (receiver) or sent (sender). */
  readonly bytes: number;
  readonly chunks: number;
  /** Raw receiver: chunks never received, and chunks received more than once. */
  readonly lost?: number;
  readonly duplicated?: number;
  /** @stream: SHA-256 of the stream, from the sender's or the receiver's side. */
  readonly sha256?: string;
  readonly cpuSeconds: number;
  readonly peakRssBytes: number;
  /** Connecting (and for @stream a 1-byte warm-up send that opens the inbox) before `startedAt`. */
  readonly setupMs?: number;
}

/** Worker to orchestrator, over the IPC channel. */
export type WorkerMessage =
  | { readonly type: "ready" }
  | { readonly type: "progress"; readonly bytes: number }
  | { readonly type: "report"; readonly report: WorkerReport }
  | { readonly type: "error"; readonly message: string };

/** Orchestrator to receiver: the sender is done, so a raw receiver may stop once the broker goes quiet. */
export type ParentMessage = { readonly type: "sender-done" };

/** One measured run: one mode, one broker, one chunk size, one round. */
export interface RunResult {
  readonly broker: BrokerName;
  readonly mode: RunMode;
  readonly chunkBytes: number;
  readonly sizeBytes: number;
  readonly round: number;
  /** From the sender's start to the receiver's last byte. */
  readonly seconds: number;
  /** Unique bytes delivered per second, in MB (10^6 bytes). */
  readonly mbPerSecond: number;
  readonly timeToFirstByteMs: number;
  readonly bytesDelivered: number;
  readonly lost: number;
  readonly duplicated: number;
  readonly sender: WorkerReport;
  readonly receiver: WorkerReport;
  /** True when sender and receiver share one process (the in-memory transport). */
  readonly oneProcess: boolean;
}

/** A run that did not complete. */
export interface RunFailure {
  readonly broker: BrokerName;
  readonly mode: RunMode;
  readonly chunkBytes: number;
  readonly sizeBytes: number;
  readonly round: number;
  readonly error: string;
}

/** Current time in epoch milliseconds, sub-millisecond, comparable across processes. */
export const now = (): number => performance.timeOrigin + performance.now();

/** Peak resident set size of this process so far, in bytes. */
export const peakRssBytes = (): number => process.resourceUsage().maxRSS * 1024;

/** CPU time (user + system) of this process so far, in seconds. */
export const cpuSeconds = (): number => {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1e6;
};
