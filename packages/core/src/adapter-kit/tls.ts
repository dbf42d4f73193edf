import { isIP } from "node:net";
import type { ConnectionOptions } from "node:tls";

/** PEM text, or its bytes. */
export type Pem = string | Uint8Array;

/**
 * TLS settings every adapter takes alike (`tls` in its options), mapped onto its broker client by
 * {@link nodeTlsOptions}. The broker's certificate is always checked against `ca` (or Node's
 * trusted CAs) and must name the host connected to, unless `verify` is `false`.
 */
export interface TlsOptions {
  /** The CA certificate(s) the broker's certificate must chain to, PEM. @default Node's trusted CAs */
  readonly ca?: Pem | readonly Pem[];
  /** This client's certificate, PEM, for brokers that require one (mutual TLS). Needs {@link key}. */
  readonly cert?: Pem;
  /** The private key of {@link cert}, PEM (unencrypted). */
  readonly key?: Pem;
  /**
   * The name the broker's certificate must carry when it is not the host connected to (a broker
   * reached through a tunnel or by IP address).
   * @default the host connected to
   */
  readonly servername?: string;
  /**
   * Check the broker's certificate (its chain to `ca` and its name). `false` accepts any
   * certificate, so anyone on the path can read and change the stream, passwords included: for a
   * test broker only. Core writes a warning (`STREAM_TLS_UNVERIFIED`) every time it is used.
   * @default true
   */
  readonly verify?: boolean;
}

/** The code of the process warning written when certificate checks are turned off. */
export const TLS_UNVERIFIED_WARNING = "STREAM_TLS_UNVERIFIED";

/**
 * Node's `tls.connect` options for `tls` when connecting to `host`: what amqplib, mqtt.js,
 * stompit, kafkajs and `@platformatic/kafka` all take. Checks that `cert` and `key` come together
 * (`TypeError`, at creation). With `verify: false`, writes a loud process warning naming the
 * adapter and the host.
 *
 * @param adapterName the transport's `name`, for the `[stream] [<adapterName>]` prefix.
 * @param host the broker host connected to (the default `servername`; an IP address is checked
 *   against the certificate's IP entries, as TLS sends no IP as a server name). Leave it out for
 *   a client that connects to several hosts (Kafka): Node then checks each host it connects to.
 */
export function nodeTlsOptions(adapterName: string, tls: TlsOptions, host?: string): ConnectionOptions {
  if ((tls.cert === undefined) !== (tls.key === undefined)) {
    throw new TypeError(`[stream] [${adapterName}] tls.cert and tls.key go together: give both (mutual TLS) or neither`);
  }
  const verify = tls.verify ?? true;
  if (!verify) {
    process.emitWarning(
      `[stream] [${adapterName}] TLS certificate checks are OFF${host === undefined ? "" : ` for ${host}`} (tls.verify: false): anyone between here and the broker can read and alter the stream and the password. Use this with a test broker only; give the broker's CA (tls.ca) instead.`,
      { code: TLS_UNVERIFIED_WARNING },
    );
  }
  const servername = tls.servername ?? (host !== undefined && isIP(host) === 0 ? host : undefined);
  const pem = (value: Pem): string | Buffer => (typeof value === "string" ? value : Buffer.from(value));
  const ca = tls.ca === undefined ? undefined : Array.isArray(tls.ca) ? (tls.ca as readonly Pem[]).map(pem) : [pem(tls.ca as Pem)];
  return {
    ...(ca === undefined ? {} : { ca }),
    ...(tls.cert === undefined ? {} : { cert: pem(tls.cert) }),
    ...(tls.key === undefined ? {} : { key: pem(tls.key) }),
    ...(servername === undefined ? {} : { servername }),
    rejectUnauthorized: verify,
  };
}

/** OpenSSL's and Node's codes for a certificate, the broker's or ours, that did not verify. */
const UNTRUSTED_CODES = new Set([
  "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
  "UNABLE_TO_GET_ISSUER_CERT",
  "UNABLE_TO_GET_ISSUER_CERT_LOCALLY",
  "SELF_SIGNED_CERT_IN_CHAIN",
  "DEPTH_ZERO_SELF_SIGNED_CERT",
  "CERT_HAS_EXPIRED",
  "CERT_NOT_YET_VALID",
  "CERT_UNTRUSTED",
  "CERT_REJECTED",
  "CERT_SIGNATURE_FAILURE",
  "INVALID_CA",
  "ERR_TLS_CERT_ALTNAME_INVALID",
  "HOSTNAME_MISMATCH",
  // the broker's alerts: it wanted a client certificate, or did not trust the one given
  "ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED",
  "ERR_SSL_SSLV3_ALERT_BAD_CERTIFICATE",
  "ERR_SSL_SSLV3_ALERT_HANDSHAKE_FAILURE",
  "ERR_SSL_TLSV1_ALERT_UNKNOWN_CA",
]);

/**
 * Whether `error`, or an error it wraps (`cause`, kafkajs' `originalError`, an `AggregateError`'s
 * `errors`), says a TLS certificate did not verify: the broker's (an unknown CA, a wrong name,
 * expired), or the broker refused ours or wanted one. Never retryable: the same certificates fail
 * the same way every time.
 */
export function isTlsCertificateError(error: unknown): boolean {
  return tlsCertificateError(error) !== undefined;
}

/** The error of {@link isTlsCertificateError} itself, found where `error` wraps it. */
export function tlsCertificateError(error: unknown, depth = 0): Error | undefined {
  if (error === null || typeof error !== "object" || depth > 8) return undefined;
  const { code, cause, originalError, errors } = error as { code?: unknown; cause?: unknown; originalError?: unknown; errors?: unknown };
  if (typeof code === "string" && UNTRUSTED_CODES.has(code)) return error as Error;
  for (const item of [cause, originalError, ...(Array.isArray(errors) ? errors : [])]) {
    const found = item === error ? undefined : tlsCertificateError(item, depth + 1);
    if (found) return found;
  }
  return undefined;
}
