import { integerOptions, nodeTlsOptions, type TlsOptions } from "@stream/core/adapter-kit";
import type { IClientOptions, MqttClient } from "mqtt";

/** Options of {@link createMqttTransport}. */
export interface MqttTransportOptions {
  /**
   * The broker to connect to (`mqtt://`, `mqtts://`, `ws://`, `wss://`). Ignored when
   * {@link MqttTransportOptions.client} is given.
   * @default "mqtt://127.0.0.1:1883"
   */
  readonly url?: string;
  /**
   * A ready mqtt.js client, or a function returning one, instead of {@link url}.
   *
   * - A client instance stays the caller's: `close()` leaves it connected and keeps its session
   *   settings, reconnect policy and protocol version as they are.
   * - A factory's client belongs to the transport, which ends it on `close()` (like Kysely's
   *   `pool: Pool | (() => Promise<Pool>)`).
   *
   * The transport installs its own `handleMessage` on the client to hold each PUBACK until the
   * frame is handled, and calls any `handleMessage` that was there for topics it does not own.
   */
  readonly client?: MqttClient | (() => Promise<MqttClient>);
  /**
   * Extra mqtt.js options for the connection the transport creates: `username`, `password`,
   * TLS (`ca`, `cert`, `key`), `keepalive`, `clientId`... They win over the defaults the transport
   * picks, except `resubscribe`, which the transport does itself.
   */
  readonly clientOptions?: IClientOptions;
  /**
   * TLS for an `mqtts://` (or `wss://`) URL: the CA to trust, a client certificate for mutual
   * TLS; the broker's certificate and name are checked unless `verify: false`. The same settings
   * in {@link clientOptions} win.
   */
  readonly tls?: TlsOptions;
  /**
   * MQTT version to speak: `5`, or `4` for MQTT 3.1.1.
   * @default 5
   */
  readonly protocolVersion?: 4 | 5;
  /**
   * QoS of published frames. `1` (at least once) is enough: core drops duplicates. `2`
   * (exactly once into the broker) costs two more packets per frame. Subscriptions always take
   * QoS 1, so the transport decides when a received frame is acknowledged.
   * @default 1
   */
  readonly qos?: 1 | 2;
  /**
   * Prepended to every channel name to make its topic, so the streams of several applications
   * can share a broker. Channel names never contain `/`, `+` or `#`.
   * @default "stream/"
   */
  readonly topicPrefix?: string;
  /**
   * The largest frame, header included, that the transport publishes, in bytes; core sizes its
   * chunks to fit. The default holds core's largest chunk (1 MiB) plus its largest manifest
   * (64 KiB). MQTT allows 256 MiB, but every frame queued for a subscriber costs the broker that
   * much memory, so larger chunks buy little. Keep it at or below the broker's own limits
   * (Mosquitto `message_size_limit`, `max_packet_size`).
   * @default 1_114_112 (1 MiB + 64 KiB)
   */
  readonly maxFrameBytes?: number;
  /**
   * Most frames the broker may hand this client before it acknowledges them: MQTT 5 "Receive
   * Maximum". MQTT 3.1.1 has no such field; the broker's own setting applies (Mosquitto
   * `max_inflight_messages`, default 20).
   * @default 64
   */
  readonly prefetchFrames?: number;
  /**
   * Most published frames waiting for their PUBACK (PUBCOMP) at once; further publishes wait
   * their turn, in call order. An MQTT 5 broker announces its own limit (Receive Maximum) and
   * the lower one applies. MQTT 3.1.1 announces none, and Mosquitto, past its
   * `max_inflight_messages` (default 20), refuses QoS 2 frames from a 5 client and silently drops
   * them from a 3.1.1 client, so the default stays at 20.
   * @default 20
   */
  readonly inflightFrames?: number;
  /**
   * How long the broker keeps this client's session (its subscriptions and the frames queued
   * for them) after the connection drops, in seconds, so frames published during a reconnect
   * are not lost. `0` asks for a clean session. On `close()` the session is discarded. With
   * MQTT 3.1.1 any value above 0 means a session without expiry (the protocol has none); the
   * transport discards it on `close()`, and a process that dies leaves it to the broker's
   * `persistent_client_expiration`.
   * @default 300
   */
  readonly sessionExpirySeconds?: number;
  /**
   * Pause between reconnect attempts after the connection drops, in milliseconds.
   * @default 1000
   */
  readonly reconnectPeriodMs?: number;
  /**
   * How long to wait for the broker to accept a connection (CONNACK), in milliseconds.
   * @default 10000
   */
  readonly connectTimeoutMs?: number;
  /**
   * How long a publish, subscribe or unsubscribe waits for the broker's acknowledgement (PUBACK,
   * PUBCOMP, SUBACK, UNSUBACK), reconnects included, in milliseconds. A publish issued while
   * the connection is down waits for the reconnect; past this it rejects with a retryable
   * `TransportError`.
   * @default 30000
   */
  readonly ackTimeoutMs?: number;
}

const MiB = 1024 * 1024;
/** MQTT's own ceiling: a packet's remaining length is at most 268,435,455 bytes. */
const MQTT_MAX_PACKET_BYTES = 268_435_455;
/** Room for the PUBLISH packet around the payload: fixed header, topic, packet id, properties. */
export const PUBLISH_OVERHEAD_BYTES = 1024;

/** {@link MqttTransportOptions} checked, with every default filled in. */
export interface ResolvedOptions {
  readonly url: string;
  readonly protocolVersion: 4 | 5;
  readonly qos: 1 | 2;
  readonly topicPrefix: string;
  readonly maxFrameBytes: number;
  readonly prefetchFrames: number;
  readonly inflightFrames: number;
  readonly sessionExpirySeconds: number;
  readonly reconnectPeriodMs: number;
  readonly connectTimeoutMs: number;
  readonly ackTimeoutMs: number;
  readonly clientOptions: IClientOptions;
}

const integer = integerOptions("mqtt");

/** Checks `options` and fills in the defaults; throws `RangeError` / `TypeError` at creation. */
export function resolveOptions(options: MqttTransportOptions): ResolvedOptions {
  const topicPrefix = options.topicPrefix ?? "stream/";
  if (/[+#\0]/.test(topicPrefix) || topicPrefix.startsWith("$")) {
    throw new TypeError(`[stream] [mqtt] topicPrefix ${JSON.stringify(topicPrefix)} must not contain + # or NUL, nor start with $`);
  }
  const protocolVersion = options.protocolVersion ?? 5;
  if (protocolVersion !== 4 && protocolVersion !== 5) {
    throw new RangeError(`[stream] [mqtt] protocolVersion must be 5 or 4 (MQTT 3.1.1), got ${String(protocolVersion)}`);
  }
  const qos = options.qos ?? 1;
  if (qos !== 1 && qos !== 2) throw new RangeError(`[stream] [mqtt] qos must be 1 or 2, got ${String(qos)}`);
  const maxFrameBytes = integer("maxFrameBytes", options.maxFrameBytes ?? MiB + 64 * 1024, {
    min: 4096,
    max: MQTT_MAX_PACKET_BYTES - PUBLISH_OVERHEAD_BYTES,
  });
  const url = options.url ?? "mqtt://127.0.0.1:1883";
  return {
    url,
    protocolVersion,
    qos,
    topicPrefix,
    maxFrameBytes,
    prefetchFrames: integer("prefetchFrames", options.prefetchFrames ?? 64, { max: 65_535 }),
    inflightFrames: integer("inflightFrames", options.inflightFrames ?? 20, { max: 65_535 }),
    sessionExpirySeconds: integer("sessionExpirySeconds", options.sessionExpirySeconds ?? 300, { min: 0, max: 0xffff_ffff }),
    reconnectPeriodMs: integer("reconnectPeriodMs", options.reconnectPeriodMs ?? 1000, { min: 0 }),
    connectTimeoutMs: integer("connectTimeoutMs", options.connectTimeoutMs ?? 10_000, { min: 0 }),
    ackTimeoutMs: integer("ackTimeoutMs", options.ackTimeoutMs ?? 30_000, { min: 0 }),
    clientOptions: tlsClientOptions(url, options),
  };
}


/** {@link MqttTransportOptions.clientOptions} over the mqtt.js options of {@link MqttTransportOptions.tls}. */
function tlsClientOptions(url: string, options: MqttTransportOptions): IClientOptions {
  if (!options.tls) return options.clientOptions ?? {};
  const host = URL.canParse(url) ? new URL(url).hostname.replace(/^\[|\]$/g, "") : url;
  return { ...(nodeTlsOptions("mqtt", options.tls, host) as IClientOptions), ...options.clientOptions };
}
