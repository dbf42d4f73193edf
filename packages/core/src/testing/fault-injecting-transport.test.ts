import { describe, expect, test } from "vitest";
import type { ConnectionWatch } from "../transport";
import { withFaults } from "./fault-injecting-transport";
import { createMemoryTransport } from "./memory-transport";

describe("withFaults", () => {
  test("reads the wrapped transport's connection as it is now (an adapter's getter), not a copy of it", () => {
    const inner = createMemoryTransport();
    let current: ConnectionWatch | undefined;
    Object.defineProperty(inner, "connection", { get: () => current, configurable: true });
    const wrapped = withFaults(inner, { lossRate: 0 });
    expect(wrapped.connection).toBeUndefined();
    current = { state: "reconnecting", watch: () => () => {} };
    expect(wrapped.connection?.state).toBe("reconnecting");
    expect(wrapped.name).toBe(inner.name);
  });
});
