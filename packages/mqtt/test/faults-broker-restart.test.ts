import { type ChildProcess, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { connect, createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { runFaultTests } from "@stream/conformance";
import { afterAll, beforeAll, test } from "vitest";

// A Mosquitto of this test's own (not the shared one), on a free port, killed with SIGKILL at
// half the file and started again 2 s later: a new broker with no session, no subscription and
// none of the frames in flight. The adapter reconnects and subscribes again, the sender's
// retries and retransmissions bring the rest. Skipped where mosquitto is not installed.
const MOSQUITTO = process.env.STREAM_MOSQUITTO_BIN ?? "/usr/sbin/mosquitto";
const installed = existsSync(MOSQUITTO);

let dir = "";
let port = 0;
let broker: ChildProcess | undefined;

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port: free } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return free;
}

const accepts = (): Promise<boolean> =>
  new Promise((resolve) => {
    const socket = connect(port, "127.0.0.1", () => (socket.destroy(), resolve(true)));
    socket.on("error", () => resolve(false));
  });

async function start(): Promise<void> {
  broker = spawn(MOSQUITTO, ["-c", join(dir, "mosquitto.conf")], { stdio: "ignore" });
  for (const deadline = Date.now() + 10_000; !(await accepts()); ) {
    if (Date.now() > deadline || broker.exitCode !== null) throw new Error(`mosquitto did not start on port ${port}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

async function kill(): Promise<void> {
  const running = broker;
  if (!running || running.exitCode !== null || running.signalCode !== null) return;
  const exited = new Promise((resolve) => running.once("exit", resolve));
  running.kill("SIGKILL");
  await exited;
}

beforeAll(async () => {
  if (!installed) return;
  dir = await mkdtemp(join(tmpdir(), "stream-mosquitto-"));
  port = await freePort();
  // As tooling/brokers/mosquitto.sh writes it: no queue limits that would drop QoS 1 frames.
  const config = [`listener ${port} 127.0.0.1`, "allow_anonymous true", "persistence false", "max_queued_messages 0", "max_queued_bytes 4294967296", "max_inflight_messages 100"];
  await writeFile(join(dir, "mosquitto.conf"), `${config.join("\n")}\n`);
  await start();
});

afterAll(async () => {
  await kill();
  await rm(dir, { recursive: true, force: true });
});

runFaultTests({
  test: installed ? test : test.skip,
  name: "mqtt",
  transportModule: fileURLToPath(new URL("./fixtures/transport.mjs", import.meta.url)),
  get brokerPort() {
    return port; // known once beforeAll has run
  },
  cases: [{ restart: "broker", seconds: 2 }],
  broker: { kill, start },
  onReport: (report) => console.log(`[mqtt faults] ${report.fault}: ${report.seconds.toFixed(1)} s, ${report.duplicateBytes} duplicate bytes`),
});
