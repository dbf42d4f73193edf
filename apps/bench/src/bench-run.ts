import { e2eKey } from "@stream/core";
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
  /** @stream's transfer is encrypted end to end with {@link BENCH_E2E_KEY}. */
  readonly e2e?: boolean;
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
  /** Receivers: bytes saved so far; a resume sender: data payload bytes published so far (on each publish, so a killed one's count survives it). */
  | { readonly type: "progress"; readonly bytes: number }
  | { readonly type: "report"; readonly report: WorkerReport }
  | { readonly type: "error"; readonly message: string }
  /** Fan-in and failover workers ({@link ScenarioTask}): their measurement. */
  | { readonly type: "scenario"; readonly report: ScenarioReport }
  /** A resume sender's measured send began (after connecting and any warm-up), at `at`. */
  | { readonly type: "started"; readonly at: number }
  /** A failover receiver has saved `bytes` (at least the task's `reachAtBytes`): the moment to kill it (or, for resume, its sender). */
  | { readonly type: "reached"; readonly bytes: number; readonly at: number };

/** Orchestrator to receiver: the sender is done, so a raw receiver may stop once the broker goes quiet. */
export type ParentMessage = { readonly type: "sender-done" };

/** What a fan-in or failover worker is told to do (@stream only, a broker only). */
export interface ScenarioTask {
  /**
   * `fanin-send`: `producers` clients each send `inputFile` at once; `fanin-receive`: one client
   * saves them all into `outputDir`; `failover-send`: one client sends `inputFile`;
   * `failover-receive`: saves it into `outputDir`, taking over a dead receiver's partial file;
   * `resume-send`: one client sends `inputFile` under `streamId` (with `resume`: continuing a killed
   * sender's stream), counting the data payload bytes it publishes; `resume-receive`: saves it into
   * `outputDir`, waiting past an attempt whose sender died for the resumed one.
   */
  readonly role: "fanin-send" | "fanin-receive" | "failover-send" | "failover-receive" | "resume-send" | "resume-receive";
  readonly mode: "stream";
  readonly broker: Exclude<BrokerName, "memory">;
  readonly destination: string;
  readonly chunkBytes: number;
  /** Bytes of each stream. */
  readonly sizeBytes: number;
  readonly inputFile?: string;
  readonly outputDir?: string;
  /** Fan-in: how many streams (and sending clients). */
  readonly producers?: number;
  /** Receivers: the SHA-256 every saved file must have. */
  readonly expectedSha256?: string;
  /** Failover and resume receivers: say `reached` once they have saved this many bytes. */
  readonly reachAtBytes?: number;
  /** Resume sender: the stream id, known to the orchestrator so that a second sender can resume it. */
  readonly streamId?: string;
  /** Resume sender: continue `streamId` from where the receiver's partial file ends (`resume: true`), without a warm-up. */
  readonly resume?: boolean;
  /** Resume sender: @stream's `windowBytes`; undefined leaves core's default. */
  readonly windowBytes?: number;
}

/** What a fan-in or failover worker measured; epoch milliseconds as in {@link WorkerReport}. */
export interface ScenarioReport {
  /** Sender: the moment its measured send(s) began (after connecting and warming up). */
  readonly startedAt?: number;
  /** Receiver: the first payload byte saved. */
  readonly firstByteAt?: number;
  /** Receiver: the last stream saved and verified; sender: its last send resolved. */
  readonly doneAt: number;
  /** Payload bytes saved (receiver, counting a taken-over file's earlier part) or sent. */
  readonly bytes: number;
  /** Streams sent, or saved with the expected SHA-256. */
  readonly streams: number;
  /** Fan-in receiver: most streams it had open (arrived, not yet saved) at once. */
  readonly maxOpenStreams?: number;
  /** Failover receiver: bytes of the file that came from the dead receiver's partial file. */
  readonly startOffset?: number;
  /** Whether the stream was a takeover (failover receiver). */
  readonly takeover?: boolean;
  /** Resume sender: data payload bytes it published in its measured send, retransmissions included. */
  readonly publishedBytes?: number;
  /** Resume sender: the send's window (core's `windowBytes` as resolved for the transport): the most that may go twice. */
  readonly windowBytes?: number;
  /** Resume sender: where its send started, as the receiver asked (`SendResult.startOffset`). */
  readonly sendStartOffset?: number;
  readonly cpuSeconds: number;
  readonly peakRssBytes: number;
}

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

/** The key of `--e2e` runs: fixed, since the bench measures what encryption costs, not secrecy. */
export const BENCH_E2E_KEY = e2eKey(Buffer.alloc(32, 0x5e), "bench");
