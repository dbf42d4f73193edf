import { EventEmitter } from "node:events";
import { describe, expect, test, vi } from "vitest";
import { TransportError } from "../errors/transport-error";
import { ConnectionSupervisor, type ConnectionSupervisorOptions, type SupervisedSubscription } from "./connection-supervisor";

/** A fake broker connection: `drop()` makes it emit "close". */
class FakeConnection extends EventEmitter {
  closed = false;
  constructor(readonly id: number) {
    super();
  }
  drop(cause = new Error("socket reset")): void {
    this.emit("close", cause);
  }
}

function harness(overrides: Partial<ConnectionSupervisorOptions<FakeConnection>> = {}) {
  let next = 1;
  const opened: FakeConnection[] = [];
  const failures: Array<unknown> = [];
  const reports: Error[] = [];
  const disconnected: number[] = [];
  const supervisor = new ConnectionSupervisor<FakeConnection>({
    name: "fake",
    open: async () => {
      const failure = failures.shift();
      if (failure !== undefined) throw failure;
      const connection = new FakeConnection(next++);
      opened.push(connection);
      return connection;
    },
    onLost: (connection, lost) => {
      connection.on("close", lost);
      return () => connection.removeListener("close", lost);
    },
    close: (connection) => {
      connection.closed = true;
    },
    onDisconnect: (connection) => void disconnected.push(connection.id),
    reconnect: { initialDelayMs: 1, maxDelayMs: 4 },
    toError: (what, cause, retryable = true) =>
      new TransportError({ message: `[stream] [fake] ${what}: ${String((cause as Error)?.message ?? cause)}`, cause, retryable }),
    report: (error) => void reports.push(error),
    ...overrides,
  });
  return { supervisor, opened, failures, reports, disconnected };
}

function subscription(start: SupervisedSubscription<FakeConnection>["start"] = () => {}) {
  return { start: vi.fn(start), close: vi.fn(async () => {}) };
}

const until = async (check: () => boolean) => {
  for (let i = 0; i < 500 && !check(); i++) await new Promise((resolve) => setTimeout(resolve, 2));
  expect(check()).toBe(true);
};

describe("ConnectionSupervisor", () => {
  test("opens one connection on first use, shared by concurrent callers", async () => {
    const connected: number[] = [];
    const { supervisor, opened } = harness({ onConnected: (connection) => void connected.push(connection.id) });
    expect(supervisor.phase).toBe("idle");
    const [a, b] = await Promise.all([supervisor.connection(), supervisor.connection()]);
    expect(a).toBe(b);
    expect(opened).toHaveLength(1);
    expect(supervisor.phase).toBe("connected");
    expect(supervisor.current).toBe(a);
    expect(supervisor.isAlive(a)).toBe(true);
    expect(connected).toEqual([1]);
  });

  test("a failed first connect rejects with the adapter's error and the next call tries again", async () => {
    const { supervisor, failures } = harness();
    failures.push(new Error("ECONNREFUSED"));
    await expect(supervisor.connection()).rejects.toThrow(/^\[stream\] \[fake\] could not connect to the broker: ECONNREFUSED/);
    expect(supervisor.phase).toBe("idle");
    await expect(supervisor.connection()).resolves.toBeInstanceOf(FakeConnection);
  });

  test("after a drop it reconnects with backoff and starts every tracked subscription again", async () => {
    const { supervisor, opened, failures, reports, disconnected } = harness();
    const first = await supervisor.connection();
    const sub = subscription();
    supervisor.track(sub);
    failures.push(new Error("still down"));
    first.drop();
    expect(supervisor.phase).toBe("reconnecting");
    expect(disconnected).toEqual([1]);
    const refused = await supervisor.connection().catch((error: unknown) => error);
    expect((refused as TransportError).retryable).toBe(true);
    const waited = supervisor.whenConnected();
    const second = await waited;
    expect(second).toBe(opened[1]);
    expect(supervisor.phase).toBe("connected");
    expect(sub.start).toHaveBeenCalledWith(second);
    expect(reports.map((error) => error.message)).toEqual([
      expect.stringMatching(/the connection to the broker dropped; reconnecting/),
      expect.stringMatching(/reconnecting to the broker failed \(attempt 1\): still down/),
    ]);
    first.drop(); // an old connection's late event changes nothing
    expect(supervisor.phase).toBe("connected");
  });

  test("its status says reconnecting from a drop until the new connection is up, and connected again after, each once", async () => {
    const { supervisor, failures } = harness();
    const states: string[] = [];
    supervisor.status.watch((state) => states.push(state));
    const first = await supervisor.connection();
    expect(supervisor.status.state).toBe("connected"); // idle and connecting are no outage
    failures.push(new Error("still down"), new Error("still down"));
    first.drop();
    expect(supervisor.status.state).toBe("reconnecting");
    await supervisor.whenConnected();
    expect(supervisor.status.state).toBe("connected");
    expect(states).toEqual(["reconnecting", "connected"]);
    // Failed for good or closed: no outage to wait out, so not "reconnecting".
    const { supervisor: giving, failures: down } = harness({ reconnect: { initialDelayMs: 1, maxDelayMs: 1, maxAttempts: 1 } });
    const doomed = await giving.connection();
    down.push(new Error("down"), new Error("down"));
    doomed.drop();
    expect(giving.status.state).toBe("reconnecting");
    await giving.whenConnected().catch(() => {});
    expect(giving.phase).toBe("failed");
    expect(giving.status.state).toBe("connected");
  });

  test("a retryable subscription failure fails the attempt; a permanent one closes that subscription only", async () => {
    const { supervisor, opened } = harness();
    const first = await supervisor.connection();
    let flaky = 1;
    const retried = subscription(() => {
      if (flaky-- > 0) throw new TransportError({ message: "busy", retryable: true });
    });
    const doomed = subscription(() => {
      throw new TransportError({ message: "refused", retryable: false });
    });
    supervisor.track(retried);
    supervisor.track(doomed);
    first.drop();
    const connection = await supervisor.whenConnected();
    expect(opened).toHaveLength(3);
    expect(opened[1]?.closed).toBe(true); // the failed attempt's connection was let go
    expect(connection).toBe(opened[2]);
    expect(retried.start).toHaveBeenCalledTimes(2);
    expect(doomed.close).toHaveBeenCalledTimes(1);
  });

  test("without reconnect a drop fails it for good with the adapter's reason", async () => {
    const { supervisor } = harness({ reconnect: () => new TransportError({ message: "[stream] [fake] cannot reopen", retryable: false }) });
    const connection = await supervisor.connection();
    connection.drop();
    expect(supervisor.phase).toBe("failed");
    await expect(supervisor.connection()).rejects.toThrow(/cannot reopen/);
    expect(supervisor.refusal()?.message).toMatch(/cannot reopen/);
  });

  test("gives up after maxAttempts", async () => {
    const { supervisor, failures } = harness({ reconnect: { initialDelayMs: 1, maxDelayMs: 1, maxAttempts: 2 } });
    const connection = await supervisor.connection();
    failures.push(new Error("down"), new Error("down"), new Error("down"));
    connection.drop();
    await expect(supervisor.whenConnected()).rejects.toThrow(/gave up reconnecting after 2 attempts/);
    expect(supervisor.phase).toBe("failed");
  });

  test("close() ends a reconnect wait, closes subscriptions and lets the connection go", async () => {
    const { supervisor, failures } = harness({ reconnect: { initialDelayMs: 60_000, maxDelayMs: 60_000 } });
    const first = await supervisor.connection();
    const sub = subscription();
    supervisor.track(sub);
    failures.push(new Error("down"));
    first.drop();
    const waiting = supervisor.whenConnected();
    await supervisor.close();
    await expect(waiting).rejects.toThrow(/closed/);
    expect(sub.close).toHaveBeenCalled();
    expect(supervisor.phase).toBe("closed");
    await expect(supervisor.connection()).rejects.toThrow(/the transport is closed/);
  });

  test("close() waits for a connection being opened and closes it", async () => {
    const { supervisor, opened } = harness();
    const opening = supervisor.connection();
    await supervisor.close();
    await expect(opening).rejects.toThrow(/closed/);
    await until(() => opened[0]?.closed === true);
  });

  test("close() of a live connection calls the adapter's close once", async () => {
    const close = vi.fn();
    const { supervisor } = harness({ close });
    const connection = await supervisor.connection();
    await Promise.all([supervisor.close(), supervisor.close()]);
    expect(close).toHaveBeenCalledTimes(1);
    expect(close).toHaveBeenCalledWith(connection);
    expect(supervisor.isAlive(connection)).toBe(false);
  });

  test("watchState: the status follows a client that reconnects by itself, while its connection stays current", async () => {
    const { supervisor } = harness({
      watchState: (connection, report) => {
        const onState = (state: "connected" | "reconnecting") => report(state);
        connection.on("state", onState);
        return () => connection.removeListener("state", onState);
      },
    });
    const states: string[] = [];
    supervisor.status.watch((state) => void states.push(state));
    const connection = await supervisor.connection();
    connection.emit("state", "reconnecting");
    expect(supervisor.status.state).toBe("reconnecting");
    expect(supervisor.phase).toBe("connected");
    await expect(supervisor.connection()).resolves.toBe(connection);
    connection.emit("state", "connected");
    connection.emit("state", "reconnecting");
    await supervisor.close();
    expect(supervisor.status.state).toBe("connected");
    connection.emit("state", "reconnecting");
    expect(states).toEqual(["reconnecting", "connected", "reconnecting", "connected"]);
  });
});
