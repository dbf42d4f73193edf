import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { promisify } from "node:util";
import { type ChannelModel, connect } from "amqplib";

/** The broker under test; `tooling/brokers/up.sh` starts one on this address. */
export const RABBITMQ_URL = process.env.STREAM_RABBITMQ_URL ?? "amqp://127.0.0.1:5672";

/** A destination name no earlier test has used. */
export function freshName(prefix = "test"): string {
  return `${prefix}-${randomBytes(6).toString("hex")}`;
}

/** A plain amqplib connection: the second door through which tests look at the broker. */
export function plainConnection(): Promise<ChannelModel> {
  return connect(RABBITMQ_URL);
}

/** Deletes queues the tests declared, through the plain client. */
export async function deleteQueues(...queues: string[]): Promise<void> {
  const connection = await plainConnection();
  try {
    const channel = await connection.createChannel();
    for (const queue of queues) await channel.deleteQueue(queue);
    await channel.close();
  } finally {
    await connection.close();
  }
}

/** Whether a queue exists, and its counts, through the plain client. */
export async function inspectQueue(queue: string): Promise<{ messageCount: number; consumerCount: number } | undefined> {
  const connection = await plainConnection();
  try {
    const channel = await connection.createChannel();
    channel.on("error", () => {});
    return await channel.checkQueue(queue).catch(() => undefined);
  } finally {
    await connection.close().catch(() => {});
  }
}

/**
 * Really drops every client connection on the broker (`rabbitmqctl close_all_connections`), as
 * a network failure would. Needs `rabbitmqctl` and the rights to run it (root on Debian).
 */
export async function closeAllConnections(reason = "test"): Promise<void> {
  await promisify(execFile)("rabbitmqctl", ["close_all_connections", reason], { timeout: 30_000 });
}

/** Resolves when `predicate` holds, polling; rejects after `timeoutMs`. */
export async function waitFor(predicate: () => boolean, timeoutMs = 10_000, what = "condition"): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** The queues whose names start with `prefix`, listed with `rabbitmqctl` since AMQP cannot list queues. */
export async function queuesStartingWith(prefix: string): Promise<string[]> {
  const { stdout } = await promisify(execFile)("rabbitmqctl", ["list_queues", "-q", "--no-table-headers", "name"], {
    timeout: 30_000,
  });
  return stdout
    .split("\n")
    .map((line) => line.trim())
    .filter((name) => name.startsWith(prefix));
}

/**
 * Deletes every queue whose name starts with `prefix` (the conformance suite and the end-to-end
 * harness name their destinations `conformance.rabbitmq.*` and `e2e.rabbitmq.*`).
 */
export async function deleteQueuesStartingWith(prefix: string): Promise<void> {
  const names = await queuesStartingWith(prefix);
  if (names.length > 0) await deleteQueues(...names);
}
