import { randomUUID } from "node:crypto";
import { type IClientOptions, type MqttClient, connectAsync } from "mqtt";

/** The broker under test: `STREAM_MQTT_URL`, else Mosquitto on its default port. */
export const MQTT_URL = process.env.STREAM_MQTT_URL ?? "mqtt://127.0.0.1:1883";

/** Port of {@link MQTT_URL}, for a TCP proxy in front of it. */
export const MQTT_PORT = Number(new URL(MQTT_URL).port || 1883);

/** A fresh channel name, so tests never see each other's leftovers. */
export const freshChannel = (label: string): string => `test.${label}.${randomUUID().slice(0, 8)}`;

/** A plain mqtt.js client: the second door, to check what really reached the broker. */
export function plainClient(options: IClientOptions = {}): Promise<MqttClient> {
  return connectAsync(MQTT_URL, { protocolVersion: 5, reconnectPeriod: 0, ...options });
}

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Resolves once `condition()` holds, polling; rejects after `timeoutMs`. */
export async function eventually(condition: () => boolean, timeoutMs = 10_000, what = "condition"): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(20);
  }
}
