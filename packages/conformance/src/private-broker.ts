import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import type { TestApi } from "./conformance-suite";
import { type FaultTestOptions, runFaultTests } from "./fault-harness";

const run = promisify(execFile);

/** A free TCP port on 127.0.0.1 (free when asked; the broker takes it soon after). */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** Options of {@link createPrivateBroker}. */
export interface PrivateBrokerOptions {
  /** A broker script of `tooling/brokers` (`kafka.sh`, `activemq.sh`, ...): `up`, `kill` and `down` are run. */
  readonly script: string;
  /** How many free ports to pick for it. */
  readonly ports: number;
  /** The script's environment beyond `BROKERS_CACHE_DIR` (the private data dir), given the ports picked. */
  readonly env: (ports: readonly number[]) => Record<string, string>;
}

/**
 * A broker process of a test's own: the broker script of `tooling/brokers` run with its cache (config,
 * data, log, pid file) in a fresh temporary folder and on free ports, so the shared broker is never
 * touched. For the `{ restart: "broker" }` fault case: {@link PrivateBroker.kill} is a SIGKILL,
 * {@link PrivateBroker.start} starts it again on the same folder and ports and resolves once it answers.
 */
export interface PrivateBroker {
  /** The ports picked, in the order given to `env` (the first is the one clients connect to). */
  readonly ports: readonly number[];
  /** The private cache folder (`BROKERS_CACHE_DIR` of the script). */
  readonly dir: string;
  /** `script up`: starts the broker and waits until it answers its protocol. */
  start(): Promise<void>;
  /** `script kill`: SIGKILL, as a crash. */
  kill(): Promise<void>;
  /** Stops it (SIGKILL: its data is thrown away) and removes the folder. */
  dispose(): Promise<void>;
}

/** Creates (does not start) a {@link PrivateBroker}. */
export async function createPrivateBroker(options: PrivateBrokerOptions): Promise<PrivateBroker> {
  if (!existsSync(options.script)) throw new Error(`[stream] no broker script at ${options.script}`);
  const dir = await mkdtemp(join(tmpdir(), "stream-private-broker-"));
  const ports: number[] = [];
  while (ports.length < options.ports) {
    const port = await freePort();
    if (!ports.includes(port)) ports.push(port);
  }
  const env = { ...process.env, ...options.env(ports), BROKERS_CACHE_DIR: dir, BROKER_TIMEOUT: "120", BROKER_POLL: "0.1" };
  const script = async (command: string): Promise<void> => {
    try {
      await run("bash", [options.script, command], { env, maxBuffer: 16 * 1024 * 1024 });
    } catch (error) {
      const { stderr } = error as { stderr?: string };
      throw new Error(`[stream] ${options.script} ${command} failed (private broker in ${dir}, ports ${ports.join(", ")}):\n${stderr ?? String(error)}`);
    }
  };
  return {
    ports,
    dir,
    start: () => script("up"),
    kill: () => script("kill"),
    async dispose() {
      await script("kill").catch(() => {});
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** Options of {@link runBrokerRestartTest}. */
export interface BrokerRestartTestOptions extends Pick<FaultTestOptions, "name" | "transportModule" | "onReport"> {
  /** The test runner's `test`, with its `skip`. */
  readonly test: TestApi["test"] & { readonly skip: TestApi["test"] };
  readonly beforeAll: (body: () => Promise<void>) => void;
  readonly afterAll: (body: () => Promise<void>) => void;
  /** The broker to start: see {@link createPrivateBroker}. */
  readonly broker: PrivateBrokerOptions;
  /** Called once the broker answers, before the case: e.g. point the workers' environment at its ports. */
  readonly onStarted?: (broker: PrivateBroker) => void;
  /** Why the broker cannot run here (not installed...): the case is skipped and this is printed. */
  readonly skip?: string;
  /** How long the broker stays down. @default 2 */
  readonly seconds?: number;
}

/**
 * Registers the `{ restart: "broker" }` fault case against a {@link PrivateBroker}: started before
 * the case, SIGKILLed at half the file, started again `seconds` later on the same data dir and
 * ports, disposed after.
 */
export function runBrokerRestartTest(options: BrokerRestartTestOptions): void {
  if (options.skip) console.log(`[${options.name} faults] broker restart skipped: ${options.skip}`);
  let broker: PrivateBroker | undefined;
  const started = (): PrivateBroker => {
    if (!broker) throw new Error("[stream] the private broker is not started");
    return broker;
  };
  options.beforeAll(async () => {
    if (options.skip) return;
    broker = await createPrivateBroker(options.broker);
    await broker.start();
    options.onStarted?.(broker);
  });
  options.afterAll(async () => {
    await broker?.dispose();
  });
  runFaultTests({
    test: options.skip ? options.test.skip : options.test,
    name: options.name,
    transportModule: options.transportModule,
    get brokerPort() {
      return broker?.ports[0] ?? 0; // known once beforeAll has run
    },
    cases: [{ restart: "broker", seconds: options.seconds ?? 2 }],
    broker: { kill: () => started().kill(), start: () => started().start() },
    onReport: options.onReport ?? ((report) => console.log(`[${options.name} faults] ${report.fault}: ${report.seconds.toFixed(1)} s, ${report.duplicateBytes} duplicate bytes`)),
  });
}
