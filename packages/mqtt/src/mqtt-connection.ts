import { randomBytes } from "node:crypto";
import { TransportError } from "@stream/core";
import { connect, type IConnackPacket, type MqttClient } from "mqtt";
import { toTransportError } from "./mqtt-transport-error";
import type { ResolvedOptions } from "./mqtt-transport-options";

/** `promise`, or a rejection with `onTimeout()` if it has not settled after `ms`. */
export function withTimeout<T>(promise: Promise<T>, ms: number, onTimeout: () => Error): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(onTimeout()), ms);
    timer.unref();
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

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
      reject(toTransportError(error, `could not connect to ${url}`, "check that the broker runs and accepts this client, then retry"));
    };
    const timer = setTimeout(() => {
      cleanup();
      reject(
        new TransportError({
          message: `[stream] [mqtt] no CONNACK from ${url} within ${timeoutMs} ms; check the URL and that the broker runs, or raise connectTimeoutMs`,
        }),
      );
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
