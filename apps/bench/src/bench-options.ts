import { dirname, resolve } from "node:path";
import { parseArgs } from "node:util";
import { BROKER_NAMES, type BrokerName } from "./brokers";
import { GiB, MiB, parseSize, parseSizeList } from "./sizes";

/** What one `pnpm bench` invocation runs. */
export interface BenchOptions {
  /** The small CI smoke matrix. */
  readonly quick: boolean;
  /** Transports to bench, in report order. */
  readonly brokers: readonly BrokerName[];
  /** Whether the brokers were named (`--brokers`, `BROKERS`): then an unreachable one is an error, not a skip. */
  readonly brokersNamed: boolean;
  /** Chunk sizes in bytes (`"max"`: each broker's practical maximum); undefined for the defaults. */
  readonly chunks: ReadonlyArray<number | "max"> | undefined;
  /** Bytes of the file streamed in each run. */
  readonly sizeBytes: number;
  /** Times each (broker, chunk, raw|@stream) run is repeated, alternating raw and @stream. */
  readonly rounds: number;
  /** Folder the JSON, Markdown and SVG go to. */
  readonly outDir: string;
  /** The memory-flatness row: @stream on one broker at `sizeBytes` and at this larger size. */
  readonly flatness: { readonly broker: BrokerName; readonly sizeBytes: number } | undefined;
  /** A results.json to render again (Markdown and chart) instead of running anything. */
  readonly from: string | undefined;
  /** Runs every worker with `node --cpu-prof`, profiles into `<outDir>/profiles`. */
  readonly profile: boolean;
  /**
   * Chunks in flight: @stream's `windowChunks`, and the raw sender's bound on unconfirmed
   * publishes. @default 16 (@stream's default)
   */
  readonly windowChunks: number;
  /** @stream's `windowChunks`, to see what another window buys. @default core's own default (16 MiB in flight) */
  readonly streamWindowChunks: number | undefined;
  /** @stream's transfers encrypted end to end (`SendOptions.encryption`), to measure what it costs. @default false */
  readonly e2e: boolean;
  /** The fan-in row: this many producers, each streaming `sizeBytes`, into one consumer; undefined: off (`--fan-in 0`). */
  readonly fanIn: { readonly producers: number; readonly sizeBytes: number } | undefined;
  /** The failover row: a receiver killed half-way through a file of this size; undefined: off. */
  readonly failover: { readonly sizeBytes: number } | undefined;
  /**
   * The resume row: a file sent uninterrupted, then again with the sender killed half-way and a
   * second sender resuming it; `windowBytes` is the senders' window (undefined: core's default). Undefined: off.
   */
  readonly resume: { readonly sizeBytes: number; readonly windowBytes: number | undefined } | undefined;
}

/** The largest file the bench streams. */
export const MAX_SIZE_BYTES = 10 * GiB;

export const USAGE = `usage: pnpm bench [--quick] [--brokers memory,activemq,rabbitmq,mqtt,kafka,kafkajs] [--chunks 64KiB,256KiB,1MiB,max]
                  [--size 1GiB] [--rounds 2] [--out results] [--flatness-size 4GiB] [--flatness-broker rabbitmq]
                  [--no-flatness] [--window 16] [--stream-window N] [--e2e] [--profile]
                  [--fan-in 100] [--fan-in-size 8MiB] [--failover | --no-failover] [--failover-size 128MiB]
                  [--no-resume] [--resume-size 256MiB] [--resume-window 16MiB]
  --quick      16 MiB, 256 KiB chunks, one round, every reachable broker: the CI's correctness smoke
               test (each @stream transfer's SHA-256 checked); its ratios are shown, not judged;
               fan-in of 10 x 1 MiB, no failover, a resume of 16 MiB with a 4 MiB window
  --brokers    transports to bench (default: all; BROKERS=... in the environment works too);
               kafka is @stream/kafka's default client (@platformatic/kafka), kafkajs the same broker through kafkajs
  --chunks     chunk sizes; "max" is each broker's practical maximum (default 64KiB,256KiB,1MiB,max)
  --size       file size, up to 10GiB (default 1GiB)
  --rounds     repetitions, raw and @stream alternating (default 2; the best of them is reported)
  --out        results folder (default apps/bench/results)
  --window     the raw sender's unconfirmed publishes (default 16)
  --stream-window  @stream's windowChunks (default: core's default, 16 MiB in flight), to see what another buys
  --e2e        @stream's transfers encrypted end to end (AES-256-GCM), to see what it costs
  --from       render results.md and chart.svg again from a results.json (into its folder, or --out)
  --profile    run every worker under node --cpu-prof (profiles in <out>/profiles)
  --fan-in     producers streaming at once into one consumer, per broker (default 100, --quick 10; 0: off)
  --fan-in-size  bytes each producer streams (default 8MiB, --quick 1MiB)
  --failover   a receiver SIGKILLed half-way, a second one taking over, per broker (default on; off with --quick
               unless given); --no-failover turns it off
  --failover-size  the failover row's file (default 128MiB)
  --no-resume  no resume row (per broker: a file sent uninterrupted, then with its sender SIGKILLed half-way
               and a second sender resuming it)
  --resume-size    the resume row's file (default 256MiB, --quick 16MiB)
  --resume-window  the resume row's window, @stream's windowBytes (default: core's, 16 MiB; --quick 4MiB,
               under the half left at the kill)`;

/**
 * Reads the command line (and `BROKERS`) into {@link BenchOptions}. Throws a `RangeError` saying
 * what is wrong with a bad value. `appDir` anchors the default results folder.
 */
export function parseBenchOptions(argv: readonly string[], env: NodeJS.ProcessEnv, appDir: string): BenchOptions & { help: boolean } {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      quick: { type: "boolean", default: false },
      brokers: { type: "string" },
      chunks: { type: "string" },
      size: { type: "string" },
      rounds: { type: "string" },
      out: { type: "string" },
      "flatness-size": { type: "string" },
      "flatness-broker": { type: "string" },
      "no-flatness": { type: "boolean", default: false },
      profile: { type: "boolean", default: false },
      window: { type: "string" },
      from: { type: "string" },
      "stream-window": { type: "string" },
      e2e: { type: "boolean", default: false },
      "fan-in": { type: "string" },
      "fan-in-size": { type: "string" },
      failover: { type: "boolean" },
      "no-failover": { type: "boolean", default: false },
      "failover-size": { type: "string" },
      "no-resume": { type: "boolean", default: false },
      "resume-size": { type: "string" },
      "resume-window": { type: "string" },
      help: { type: "boolean", short: "h", default: false },
    },
    strict: true,
    allowPositionals: false,
  });
  const quick = values.quick ?? false;
  const namedList = values.brokers ?? env.BROKERS;
  const brokers = namedList ? parseBrokerList(namedList, values.brokers === undefined) : [...BROKER_NAMES];
  const sizeBytes = values.size ? parseSize(values.size) : quick ? 16 * MiB : GiB;
  if (sizeBytes > MAX_SIZE_BYTES) throw new RangeError(`[stream] [bench] --size ${values.size} is over the 10GiB the bench supports`);
  const rounds = values.rounds ? Number(values.rounds) : quick ? 1 : 2;
  if (!Number.isSafeInteger(rounds) || rounds < 1 || rounds > 20) throw new RangeError(`[stream] [bench] --rounds ${values.rounds} must be a whole number from 1 to 20`);
  const windowChunks = values.window ? Number(values.window) : 16;
  if (!Number.isSafeInteger(windowChunks) || windowChunks < 1 || windowChunks > 4096) throw new RangeError(`[stream] [bench] --window ${values.window} must be a whole number of chunks from 1 to 4096`);
  const streamWindowChunks = values["stream-window"] ? Number(values["stream-window"]) : undefined;
  if (streamWindowChunks !== undefined && (!Number.isSafeInteger(streamWindowChunks) || streamWindowChunks < 1 || streamWindowChunks > 4096)) throw new RangeError(`[stream] [bench] --stream-window ${values["stream-window"]} must be a whole number of chunks from 1 to 4096`);
  const chunks = values.chunks ? parseSizeList(values.chunks) : quick ? [256 * 1024] : undefined;
  const flatnessBroker = (values["flatness-broker"] ?? "rabbitmq") as BrokerName;
  if (!BROKER_NAMES.includes(flatnessBroker)) throw new RangeError(`[stream] [bench] --flatness-broker ${flatnessBroker}: use one of ${BROKER_NAMES.join(", ")}`);
  const flatnessSize = values["flatness-size"] ? parseSize(values["flatness-size"]) : 4 * GiB;
  if (flatnessSize > MAX_SIZE_BYTES) throw new RangeError("[stream] [bench] --flatness-size must be at most 10GiB");
  const flatness =
    quick || values["no-flatness"] || flatnessSize <= sizeBytes || !brokers.includes(flatnessBroker)
      ? undefined
      : { broker: flatnessBroker, sizeBytes: flatnessSize };
  const producers = values["fan-in"] === undefined ? (quick ? 10 : 100) : Number(values["fan-in"]);
  if (!Number.isSafeInteger(producers) || producers < 0 || producers > 1000) throw new RangeError(`[stream] [bench] --fan-in ${values["fan-in"]} must be a whole number of producers from 0 (off) to 1000`);
  const fanInBytes = values["fan-in-size"] ? parseSize(values["fan-in-size"]) : quick ? MiB : 8 * MiB;
  if (fanInBytes < 1 || fanInBytes > GiB) throw new RangeError(`[stream] [bench] --fan-in-size ${values["fan-in-size"]} must be from 1 byte to 1GiB`);
  if (values.failover && values["no-failover"]) throw new RangeError("[stream] [bench] --failover and --no-failover contradict each other");
  const failoverBytes = values["failover-size"] ? parseSize(values["failover-size"]) : 128 * MiB;
  // Half the file must outlast a receiver's start and the kill: a few chunks at least.
  if (failoverBytes < 8 * MiB || failoverBytes > MAX_SIZE_BYTES) throw new RangeError(`[stream] [bench] --failover-size ${values["failover-size"]} must be from 8MiB to 10GiB`);
  const failover = values["no-failover"] || (quick && !values.failover) ? undefined : { sizeBytes: failoverBytes };
  const resumeBytes = values["resume-size"] ? parseSize(values["resume-size"]) : quick ? 16 * MiB : 256 * MiB;
  // As for failover: half the file must outlast a sender's start and the kill.
  if (resumeBytes < 8 * MiB || resumeBytes > MAX_SIZE_BYTES) throw new RangeError(`[stream] [bench] --resume-size ${values["resume-size"]} must be from 8MiB to 10GiB`);
  const resumeWindow = values["resume-window"] ? parseSize(values["resume-window"]) : quick ? 4 * MiB : undefined;
  if (resumeWindow !== undefined && (resumeWindow < MiB || resumeWindow > GiB)) throw new RangeError(`[stream] [bench] --resume-window ${values["resume-window"]} must be from 1MiB (a chunk) to 1GiB`);
  return {
    help: values.help ?? false,
    quick,
    brokers,
    brokersNamed: namedList !== undefined,
    chunks,
    sizeBytes,
    rounds,
    outDir: resolve(values.out ?? (values.from ? dirname(resolve(values.from)) : resolve(appDir, "results"))),
    flatness,
    profile: values.profile ?? false,
    from: values.from === undefined ? undefined : resolve(values.from),
    windowChunks,
    streamWindowChunks,
    e2e: values.e2e ?? false,
    fanIn: producers === 0 ? undefined : { producers, sizeBytes: fanInBytes },
    failover,
    resume: values["no-resume"] ? undefined : { sizeBytes: resumeBytes, windowBytes: resumeWindow },
  };
}

/**
 * Parses `activemq,kafka`. From the `BROKERS` environment variable (the one `tooling/brokers`
 * reads, which knows no `memory` and no client names), the in-memory transport is added in front
 * and `kafka` brings `kafkajs` along: both clients of the one broker.
 */
export function parseBrokerList(text: string, fromEnvironment = false): BrokerName[] {
  const names = text.split(",").map((name) => name.trim().toLowerCase()).filter(Boolean);
  for (const name of names) {
    if (!(BROKER_NAMES as readonly string[]).includes(name)) {
      throw new RangeError(`[stream] [bench] unknown broker "${name}"; use one of ${BROKER_NAMES.join(", ")}`);
    }
  }
  if (fromEnvironment && !names.includes("memory")) names.unshift("memory");
  if (fromEnvironment && names.includes("kafka")) names.push("kafkajs");
  // Report order, not the order typed.
  return BROKER_NAMES.filter((name) => names.includes(name));
}
