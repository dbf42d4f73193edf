import { randomBytes } from "node:crypto";
import { type ConnectionSupervisorOptions, withTimeout } from "@stream/core/adapter-kit";
import { connect, type IConnackPacket, type MqttClient } from "mqtt";
import { mqttErrors } from "./mqtt-transport-error";
import { type MqttTransportOptions, PUBLISH_OVERHEAD_BYTES, type ResolvedOptions } from "./mqtt-transport-options";

/** Resolves on the client's first CONNACK; rejects on its first error or after `timeoutMs`. */
export function waitForConnack(client: MqttClient, timeoutMs: number, url: string): Promise<IConnackPacket> {
  return new Promise((resolve, reject) => {
    const cleanup = (): void => {
      clearTimeout(timer);
      client.off("connect", onConnect);
      client.off("error", onError);
    };
    const onConnect = (packet: IConnackPacket): void => {
      cleanup();
      resolve(packet);
    };
    const onError = (error: Error): void => {
      cleanup();
      reject(mqttErrors.wrap(`could not connect to ${url}`, error, undefined, "check that the broker runs and accepts this client, then retry"));
    };
    const timer = setTimeout(() => {
      cleanup();
      reject(mqttErrors.error(`no CONNACK from ${url} within ${timeoutMs} ms; check the URL and that the broker runs, or raise connectTimeoutMs`, true));
    }, timeoutMs);
    client.on("connect", onConnect);
    client.on("error", onError);
  });
}

/** A new mqtt.js client for `options`, owned by the transport: persistent session, receive maximum, no auto re-subscribe. */
export function createClient(options: ResolvedOptions): MqttClient {
  const persistent = options.sessionExpirySeconds > 0;
  const extra = options.clientOptions;
  return connect(options.url, {
    protocolVersion: options.protocolVersion,
    clientId: `stream-${randomBytes(8).toString("hex")}`,
    clean: !persistent,
    reconnectPeriod: options.reconnectPeriodMs,
    connectTimeout: options.connectTimeoutMs,
    queueQoSZero: false,
    ...extra,
    ...(options.protocolVersion === 5
      ? {
          properties: {
            ...(persistent ? { sessionExpiryInterval: options.sessionExpirySeconds } : {}),
            receiveMaximum: options.prefetchFrames,
            ...extra.properties,
          },
        }
      : {}),
    // The transport re-subscribes itself, when the broker lost the session.
    resubscribe: false,
  });
}

/** What the transport does with each client the supervisor opens and lets go of. */
export interface ClientHooks {
  /** Hooks the transport into a connected client (deferred PUBACKs, resubscribe); returns the unhook. */
  attach(client: MqttClient): () => void;
  /** Topics the transport still has subscribed, unsubscribed from a client that is not its own. */
  topics(): readonly string[];
  /** The client was ended by whoever holds it: forget it. */
  lost(client: MqttClient): void;
}

/**
 * How `@stream/core`'s `ConnectionSupervisor` opens, watches and lets go of an mqtt.js client:
 * made from `url` or by a factory (the transport's: ended on close, re-made if it ends), or
 * given ready (the caller's: left connected, never re-made).
 *
 * The supervisor does not reconnect a dropped connection here: mqtt.js does, on the same client,
 * keeping the session (its client id, its queued frames) and resending the publishes in flight,
 * which a new client could not. So `watchState` hands mqtt.js's own `offline` and `connect` on
 * to the supervisor's `status`, and `onLost` hears only a client that was ended for good.
 */
export function mqttConnectionOptions(options: ResolvedOptions, given: MqttTransportOptions["client"], hooks: ClientHooks): ConnectionSupervisorOptions<MqttClient> {
  const owned = typeof given !== "object";
  const detach = new Map<MqttClient, () => void>();
  return {
    name: "mqtt",
    async open() {
      let client: MqttClient;
      if (typeof given === "function") {
        client = await given().catch((error: unknown) => Promise.reject(mqttErrors.wrap("the client factory failed", error)));
      } else if (given) {
        client = given;
      } else {
        client = createClient(options);
        try {
          checkPacketLimit(await waitForConnack(client, options.connectTimeoutMs, options.url), options.maxFrameBytes);
        } catch (error) {
          client.end(true);
          throw error;
        }
      }
      try {
        detach.set(client, hooks.attach(client));
      } catch (error) {
        if (owned) client.end(true);
        throw error;
      }
      return client;
    },
    onLost(client, lost) {
      // Ended by whoever holds it; a dropped connection is mqtt.js's to re-establish (offline).
      const onEnd = (): void => lost(new Error("the client was ended"));
      client.on("end", onEnd);
      return () => void client.off("end", onEnd);
    },
    watchState(client, report) {
      // Emitted once per outage, and only when mqtt.js will reconnect (not on end(), nor with reconnectPeriod 0).
      const onOffline = (): void => report("reconnecting");
      const onConnect = (): void => report("connected");
      client.on("offline", onOffline);
      client.on("connect", onConnect);
      return () => {
        client.off("offline", onOffline);
        client.off("connect", onConnect);
      };
    },
    onDisconnect(client) {
      detach.get(client)?.();
      detach.delete(client);
      hooks.lost(client);
    },
    async close(client) {
      if (owned) await endOwned(client, options, typeof given === "function");
      detach.get(client)?.();
      detach.delete(client);
      if (!owned) await Promise.all(hooks.topics().map((topic) => unsubscribe(client, topic, options.ackTimeoutMs)));
    },
    reconnect: owned
      ? { initialDelayMs: options.reconnectPeriodMs, maxDelayMs: Math.max(options.reconnectPeriodMs, 30_000) }
      : (cause) =>
          mqttErrors.wrap(
            "the client passed as `client` was ended",
            cause,
            false,
            "the transport cannot re-make a client it was given; pass a factory (`client: () => mqtt.connectAsync(url)`) or `url`",
          ),
    toError: mqttErrors.wrap,
  };
}

/** Refuses a broker whose MQTT 5 Maximum Packet Size cannot carry `maxFrameBytes`. */
function checkPacketLimit(connack: IConnackPacket, maxFrameBytes: number): void {
  const limit = connack.properties?.maximumPacketSize;
  if (limit === undefined || limit >= maxFrameBytes + PUBLISH_OVERHEAD_BYTES) return;
  throw mqttErrors.error(
    `the broker accepts packets of at most ${limit} bytes, less than maxFrameBytes ${maxFrameBytes} plus ` +
      `${PUBLISH_OVERHEAD_BYTES} bytes of packet header; set maxFrameBytes to ${Math.max(0, limit - PUBLISH_OVERHEAD_BYTES)} ` +
      "or less, or raise the broker's max_packet_size",
    false,
  );
}

/** Best effort: a subscription the broker keeps anyway only costs frames acknowledged unread. */
export async function unsubscribe(client: MqttClient, topic: string, ackTimeoutMs: number): Promise<void> {
  if (!client.connected) {
    // mqtt.js sends it once reconnected; nothing to wait for.
    client.unsubscribe(topic);
    return;
  }
  const unsubscribed = new Promise<void>((resolve) => client.unsubscribe(topic, () => resolve()));
  await withTimeout(unsubscribed, ackTimeoutMs).catch(() => {});
}

/** Ends a client of the transport's own and has the broker forget its session. */
async function endOwned(client: MqttClient, options: ResolvedOptions, fromFactory: boolean): Promise<void> {
  const graceMs = Math.min(options.ackTimeoutMs, 5000);
  const v5 = client.options.protocolVersion === 5;
  const wasConnected = client.connected;
  // A graceful end waits for publishes in flight; a broker that is gone gets a forced one.
  await withTimeout(client.endAsync(false, v5 ? { properties: { sessionExpiryInterval: 0 } } : {}), graceMs).catch(() =>
    client.endAsync(true).catch(() => {}),
  );
  // MQTT 3.1.1 has no session expiry: a clean connect with the same client id discards it.
  if (!v5 && wasConnected && !client.options.clean && !fromFactory) {
    const cleaner = connect(options.url, {
      ...options.clientOptions,
      protocolVersion: 4,
      clientId: client.options.clientId,
      clean: true,
      reconnectPeriod: 0,
      connectTimeout: graceMs,
    });
    cleaner.on("error", () => {});
    await withTimeout(waitForConnack(cleaner, graceMs, options.url), graceMs).catch(() => {});
    await cleaner.endAsync(true).catch(() => {});
  }
}
