import { transportErrors } from "@stream/core/adapter-kit";

/**
 * MQTT reason codes that say the broker refused for good: trying again with the same client,
 * credentials, topic or payload gets the same answer. MQTT 3.1.1 CONNACK return codes (1-5) and
 * MQTT 5 reason codes (0x80 and up) do not overlap.
 */
const PERMANENT_REASON_CODES = new Set([
  1, // 3.1.1: unacceptable protocol version
  2, // 3.1.1: identifier rejected
  4, // 3.1.1: bad user name or password
  5, // 3.1.1: not authorized
  0x81, // malformed packet
  0x82, // protocol error
  0x84, // unsupported protocol version
  0x85, // client identifier not valid
  0x86, // bad user name or password
  0x87, // not authorized
  0x8a, // banned
  0x8c, // bad authentication method
  0x8f, // topic filter invalid
  0x90, // topic name invalid
  0x94, // topic alias invalid
  0x95, // packet too large
  0x99, // payload format invalid
  0x9a, // retain not supported
  0x9b, // QoS not supported
  0x9e, // shared subscriptions not supported
  0xa1, // subscription identifiers not supported
  0xa2, // wildcard subscriptions not supported
]);

/** The MQTT reason code an mqtt.js error carries, if any. */
export function reasonCodeOf(error: unknown): number | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === "number" ? code : undefined;
}

/** Whether trying again (after a reconnect) may help with `error`. */
export function isRetryable(error: unknown): boolean {
  const code = reasonCodeOf(error);
  return code === undefined || !PERMANENT_REASON_CODES.has(code);
}

/**
 * This adapter's `TransportError`s (core's `transportErrors`): `wrap` turns an mqtt.js error into
 * `[stream] [mqtt] <what happened>: <cause> (reason code 0x..); <what to do>`, `retryable` from
 * the reason code.
 */
export const mqttErrors = transportErrors({
  name: "mqtt",
  isRetryable,
  detail(error) {
    const code = reasonCodeOf(error);
    const detail = error instanceof Error ? error.message : String(error);
    return code === undefined ? detail : `${detail} (reason code 0x${code.toString(16)})`;
  },
  advice: (_, retryable) =>
    retryable ? undefined : "the broker refused for good: check credentials, ACLs, topic names and size limits",
});
