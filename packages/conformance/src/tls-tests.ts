import assert from "node:assert/strict";
import { createHash, randomBytes, randomUUID } from "node:crypto";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { createStreamClient, TransportError, type Transport } from "@stream/core";
import type { TlsOptions } from "@stream/core/adapter-kit";
import { type PrivateBroker, type PrivateBrokerOptions, createPrivateBroker } from "./private-broker";

/** Where and how a transport of {@link runTlsTests} connects. */
export interface TlsConnection {
  /** The TLS port of the private broker to connect to, on 127.0.0.1. */
  readonly port: number;
  readonly tls: TlsOptions;
  readonly username: string;
  readonly password: string;
  /** The mutual TLS port: the client is known by its certificate (Kafka's SSL listener takes no SASL). */
  readonly mutualTls: boolean;
}

/** The files `tooling/brokers` (`tls_certs` of lib.sh) writes into a broker's cache, PEM. */
export interface TestCertificates {
  /** The test CA: it signed the broker's and the client's certificates. */
  readonly ca: string;
  /** A CA that signed nothing: the wrong CA. */
  readonly otherCa: string;
  /** A client certificate signed by {@link ca} (mutual TLS) and its key. */
  readonly cert: string;
  readonly key: string;
}

/** Reads the {@link TestCertificates} of a broker cache folder (`BROKERS_CACHE_DIR`). */
export async function readTestCertificates(cacheDir: string): Promise<TestCertificates> {
  const pem = (name: string): Promise<string> => readFile(join(cacheDir, "tls", name), "utf8");
  const [ca, otherCa, cert, key] = await Promise.all([pem("ca.pem"), pem("other-ca.pem"), pem("client.pem"), pem("client.key")]);
  return { ca, otherCa, cert, key };
}

/** Options of {@link runTlsTests}. */
export interface TlsTestOptions {
  readonly test: (name: string, body: () => Promise<void>, timeoutMs?: number) => void;
  readonly beforeAll: (body: () => Promise<void>, timeoutMs?: number) => void;
  readonly afterAll: (body: () => Promise<void>) => void;
  /** The adapter's name, for test names. */
  readonly name: string;
  /**
   * The broker, with its TLS listener(s) configured by `env`; the user and password are set by
   * the harness (`BROKER_TLS_USER`, `BROKER_TLS_PASSWORD`).
   */
  readonly broker: PrivateBrokerOptions;
  /** Which of the broker's ports take TLS with a password, and (if any) mutual TLS. */
  readonly tlsPorts: (ports: readonly number[]) => { readonly tls: number; readonly mutualTls?: number };
  /** A transport of the adapter under test, connecting as told. */
  readonly createTransport: (connection: TlsConnection) => Transport;
  /** More ways to make the adapter's transport (another client library), each tested with a transfer over TLS. */
  readonly alsoTransferWith?: Readonly<Record<string, (connection: TlsConnection) => Transport>>;
  /** Why the broker cannot run here: every test is skipped, and this is printed. */
  readonly skip?: string;
  /** Called once the broker answers, e.g. for the CLI test of the same broker. */
  readonly onStarted?: (broker: PrivateBroker, connection: TlsConnection) => void;
}

const TIMEOUT_MS = 120_000;

/**
 * Registers the TLS tests of one adapter against a private broker of `tooling/brokers` started
 * with TLS listeners: a transfer over TLS (SHA-256 equal), a broker certificate from another CA
 * refused, a wrong password refused, and, where the broker has a mutual TLS port, a transfer with
 * a client certificate and a refusal without one. A refusal must be a `TransportError` that is
 * not retryable and never quotes the password.
 */
export function runTlsTests(options: TlsTestOptions): void {
  const test = options.skip ? (name: string) => options.test(`${name} (skipped: ${options.skip})`, async () => {}) : options.test;
  if (options.skip) console.log(`[${options.name} tls] skipped: ${options.skip}`);
  const username = "stream-tls";
  const password = `pw-${randomUUID()}`;
  let broker: PrivateBroker | undefined;
  let certs: TestCertificates | undefined;
  let ports: { readonly tls: number; readonly mutualTls?: number } = { tls: 0 };

  options.beforeAll(async () => {
    if (options.skip) return;
    broker = await createPrivateBroker({
      ...options.broker,
      env: (picked) => ({ ...options.broker.env(picked), BROKER_TLS_USER: username, BROKER_TLS_PASSWORD: password }),
    });
    await broker.start();
    certs = await readTestCertificates(broker.dir);
    ports = options.tlsPorts(broker.ports);
    options.onStarted?.(broker, { port: ports.tls, tls: { ca: certs.ca }, username, password, mutualTls: false });
  }, TIMEOUT_MS * 2);
  options.afterAll(async () => {
    await broker?.dispose();
  });

  const connection = (overrides: Partial<TlsConnection> = {}): TlsConnection => {
    assert.ok(certs, "the private broker is not started");
    return { port: ports.tls, tls: { ca: certs.ca }, username, password, mutualTls: false, ...overrides };
  };

  /** Sends 3 MiB of random bytes through the broker, sender and receiver each on a transport of their own; both SHA-256 equal. */
  const transfer = async (make: () => TlsConnection, createTransport = options.createTransport): Promise<void> => {
    const sender = createStreamClient({ transport: createTransport(make()) });
    const receiving = createStreamClient({ transport: createTransport(make()) });
    try {
      const destination = `tls-${randomUUID().slice(0, 8)}`;
      const receiver = receiving.receive(destination);
      await receiver.ready;
      const received = (async () => {
        for await (const stream of receiver) {
          const hash = createHash("sha256");
          for await (const chunk of stream) hash.update(chunk);
          await stream.result;
          return hash.digest("hex");
        }
        throw new Error("the receiver ended without a stream");
      })();
      const data = randomBytes(3 * 1024 * 1024);
      const sent = await sender.send(data, { destination, name: "tls.bin" });
      const expected = createHash("sha256").update(data).digest("hex");
      assert.equal(sent.sha256, expected);
      assert.equal(await received, expected);
    } finally {
      await Promise.allSettled([sender.close(), receiving.close()]);
    }
  };

  /**
   * A transport made from `made` is refused on first use: a TransportError matching `pattern`,
   * without the password, and not retryable unless `mayRetry` (a client that sees only a closed
   * connection cannot tell why).
   */
  const refused = async (made: TlsConnection, pattern: RegExp, mayRetry = false): Promise<void> => {
    const transport = options.createTransport(made);
    try {
      const error = await transport.subscribe(`tls-${randomUUID().slice(0, 8)}`, () => {}, { kind: "stream" }).then(
        async (subscription) => {
          await subscription.close();
          return undefined;
        },
        (caught: unknown) => caught,
      );
      assert.ok(error !== undefined, "the broker accepted the connection");
      assert.ok(TransportError.isInstance(error), `not a TransportError: ${String(error)}`);
      if (!mayRetry) assert.equal(error.retryable, false, `retryable: ${error.message}`);
      assert.match(error.message, pattern);
      assert.ok(!error.message.includes(made.password), `the message quotes the password: ${error.message}`);
      console.log(`[${options.name} tls] refused as expected: ${error.message}`);
    } finally {
      await transport.close().catch(() => {});
    }
  };

  test(`[${options.name} tls] a stream goes through TLS with a CA and a password; SHA-256 equal`, () => transfer(() => connection()), TIMEOUT_MS);
  for (const [label, createTransport] of Object.entries(options.alsoTransferWith ?? {})) {
    test(`[${options.name} tls] a stream goes through TLS with a CA and a password on ${label}; SHA-256 equal`, () => transfer(() => connection(), createTransport), TIMEOUT_MS);
  }
  test(
    `[${options.name} tls] a broker certificate signed by another CA is refused`,
    () => refused(connection({ tls: { ca: certs?.otherCa ?? "" } }), /^\[stream\] \[[a-z]+\] .*(certificate|self.signed)/i),
    TIMEOUT_MS,
  );
  test(
    `[${options.name} tls] a wrong password is refused for good`,
    () => refused(connection({ password: `wrong-${randomUUID()}` }), /^\[stream\] \[[a-z]+\] /),
    TIMEOUT_MS,
  );
  test(
    `[${options.name} tls] mutual TLS: a client certificate is required, and with one the stream goes through`,
    async () => {
      if (ports.mutualTls === undefined) {
        console.log(`[${options.name} tls] no mutual TLS port: mutual TLS not tested here`);
        return;
      }
      const mutual = (withCert: boolean): TlsConnection => {
        assert.ok(certs && ports.mutualTls);
        return connection({ port: ports.mutualTls, mutualTls: true, tls: withCert ? { ca: certs.ca, cert: certs.cert, key: certs.key } : { ca: certs.ca } });
      };
      await transfer(() => mutual(true));
      // TLS 1.3: the broker checks the client's certificate after the client's handshake is done; a
      // client that does not read the broker's alert sees a closed connection (Kafka), retryable.
      await refused(mutual(false), /^\[stream\] \[[a-z]+\] /, true);
    },
    TIMEOUT_MS,
  );
}
