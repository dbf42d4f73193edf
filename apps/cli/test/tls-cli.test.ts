import { existsSync } from "node:fs";
import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { type PrivateBroker, createPrivateBroker } from "@stream/conformance";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freshDestination, parseEvents, randomFile, run, sha256File, start } from "./cli-process";

/** A broker of `tooling/brokers` started with a password-protected TLS listener, for the CLI. */
interface TlsBroker {
  readonly name: string;
  readonly script: string;
  readonly ports: number;
  readonly env: (ports: readonly number[]) => Record<string, string>;
  /** `--broker` for its TLS listener. */
  readonly url: (ports: readonly number[], user: string, password: string) => string;
  /** Why it cannot run here. */
  readonly skip?: string;
}

const script = (name: string): string => fileURLToPath(new URL(`../../../tooling/brokers/${name}`, import.meta.url));
const USER = "stream-cli";
// Distinctive, and in the URL percent-encoded as given: the secrets test greps for both forms.
const PASSWORD = "Tls-Pa55word-7f3e";
const WRONG_PASSWORD = "Wrong-Pa55word-91ac";

const TLS_BROKERS: readonly TlsBroker[] = [
  {
    name: "Mosquitto (mqtts)",
    script: script("mosquitto.sh"),
    ports: 2,
    env: ([plain, tls]) => ({ MQTT_PORT: String(plain), MQTT_TLS_PORT: String(tls) }),
    url: ([, tls], user, password) => `mqtts://${user}:${password}@127.0.0.1:${tls}`,
    ...(existsSync("/usr/sbin/mosquitto") ? {} : { skip: "no /usr/sbin/mosquitto" }),
  },
  {
    name: "ActiveMQ (stomp+ssl)",
    script: script("activemq.sh"),
    ports: 3,
    env: ([stomp, openwire, tls]) => ({
      ACTIVEMQ_STOMP_PORT: String(stomp),
      ACTIVEMQ_OPENWIRE_PORT: String(openwire),
      ACTIVEMQ_STOMP_TLS_PORT: String(tls),
      ACTIVEMQ_HEAP: "512M",
    }),
    url: ([, , tls], user, password) => `stomp+ssl://${user}:${password}@127.0.0.1:${tls}`,
    ...(existsSync("/usr/share/activemq/bin/activemq.jar") ? {} : { skip: "no ActiveMQ in /usr/share/activemq" }),
  },
];

/** Every file under `dir`, read as text (the journal folder). */
async function readTree(dir: string): Promise<string> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true }).catch(() => []);
  const texts = await Promise.all(entries.filter((entry) => entry.isFile()).map((entry) => readFile(join(entry.parentPath, entry.name), "utf8")));
  return texts.join("\n");
}

describe.each(TLS_BROKERS)("stream over TLS through $name", (tlsBroker) => {
  let broker: PrivateBroker | undefined;
  let dir = "";
  let ca = "";
  let otherCa = "";

  beforeAll(async () => {
    if (tlsBroker.skip) return;
    dir = await mkdtemp(join(tmpdir(), "stream-cli-tls-"));
    broker = await createPrivateBroker({
      script: tlsBroker.script,
      ports: tlsBroker.ports,
      env: (ports) => ({ ...tlsBroker.env(ports), BROKER_TLS_USER: USER, BROKER_TLS_PASSWORD: PASSWORD }),
    });
    await broker.start();
    ca = join(broker.dir, "tls", "ca.pem");
    otherCa = join(broker.dir, "tls", "other-ca.pem");
  }, 240_000);
  afterAll(async () => {
    await broker?.dispose();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  const url = (password = PASSWORD): string => tlsBroker.url(broker?.ports ?? [], USER, password);

  it.skipIf(tlsBroker.skip)("sends and receives a file with --ca and a password in the URL; SHA-256 equal", async () => {
    const destination = freshDestination("tls");
    const out = await mkdtemp(join(dir, "out-"));
    const file = join(dir, "tls-payload.bin");
    const sentSha256 = await randomFile(file, 2 * 1024 * 1024 + 5);
    const receiver = start(["receive", "--broker", url(), "--ca", ca, "--dest", destination, "--out", out, "--once", "--json"]);
    try {
      await receiver.waitForEvent("listening");
      const sent = await run(["send", file, "--broker", url(), "--ca", ca, "--dest", destination, "--json"]);
      expect(sent.stderr).toBe("");
      expect(sent.code).toBe(0);
      expect((await receiver.finished).code).toBe(0);
      expect(parseEvents(sent.stdout).find((event) => event.event === "done")).toMatchObject({ sha256: sentSha256 });
      expect(await sha256File(join(out, "tls-payload.bin"))).toBe(sentSha256);
    } finally {
      receiver.child.kill("SIGKILL");
    }
  }, 120_000);

  it.skipIf(tlsBroker.skip)("exits 11 when the broker's certificate is not signed by the --ca given", async () => {
    const file = join(dir, "small.bin");
    await writeFile(file, "hello");
    const result = await run(["send", file, "--broker", url(), "--ca", otherCa, "--dest", freshDestination("tls-ca")]);
    expect(result.code).toBe(11);
    expect(result.stderr).toMatch(/the TLS connection to the broker at \S+ failed over a certificate/);
    expect(result.stderr).toContain("--ca <file>");
  }, 60_000);

  it.skipIf(tlsBroker.skip)("exits 4 on a wrong password, which no output, --json event or journal file holds", async () => {
    const file = join(dir, "small.bin");
    await writeFile(file, "hello");
    const state = await mkdtemp(join(dir, "state-"));
    const args = ["send", file, "--broker", url(WRONG_PASSWORD), "--ca", ca, "--dest", freshDestination("tls-auth")];
    const human = await run(args, { STREAM_STATE_DIR: state });
    const json = await run([...args, "--json"], { STREAM_STATE_DIR: state });
    expect(human.code).toBe(4);
    expect(json.code).toBe(4);
    expect(human.stderr).toMatch(/refused the credentials/);
    expect(parseEvents(json.stdout).find((event) => event.event === "error")).toMatchObject({ code: "AUTHENTICATION_FAILED", exitCode: 4 });
    const journal = await readTree(state);
    for (const text of [human.stdout, human.stderr, json.stdout, json.stderr, journal]) {
      expect(text).not.toContain(WRONG_PASSWORD);
      expect(text).not.toContain(PASSWORD);
    }
  }, 60_000);
});

it("refuses --ca on a plain scheme, --cert without --cert-key, and a --ca it cannot read (exit 2, no broker asked)", async () => {
  const plain = await run(["send", "-", "--broker", "mqtt://127.0.0.1:1", "--ca", "ca.pem", "--dest", "x"]);
  expect(plain.code).toBe(2);
  expect(plain.stderr).toMatch(/--ca is for a TLS connection, but mqtt:\/\/ is not one/);
  const halfPair = await run(["send", "-", "--broker", "mqtts://127.0.0.1:1", "--cert", "client.pem", "--dest", "x"]);
  expect(halfPair.code).toBe(2);
  expect(halfPair.stderr).toMatch(/--cert and --cert-key go together/);
  const missing = await run(["send", "-", "--broker", "mqtts://127.0.0.1:1", "--ca", "/nonexistent/ca.pem", "--dest", "x"]);
  expect(missing.code).toBe(2);
  expect(missing.stderr).toMatch(/--ca \/nonexistent\/ca.pem cannot be read \(ENOENT\)/);
}, 60_000);
