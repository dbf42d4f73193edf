import type { ChannelKind } from "@stream/core";
import type { RabbitmqConfirmChannel, RabbitmqConnection } from "./rabbitmq-connection";

/** A publish waiting for its turn or for the broker's confirm. Settles once. */
export interface PublishJob {
  readonly channel: string;
  readonly kind: ChannelKind;
  readonly frame: Uint8Array;
  settled: boolean;
  resolve(): void;
  reject(error: unknown): void;
}

/** The confirm channel frames are published on, and the frames it has not had confirmed yet. */
export interface Publisher {
  readonly channel: RabbitmqConfirmChannel;
  alive: boolean;
  /** False after `publish` returned false, until `drain`. */
  writable: boolean;
  /** Resolves on `drain` or `close` while not writable. */
  drained: Promise<void>;
  readonly pending: Set<PublishJob>;
  cause: unknown;
}

/**
 * One connection's worth of state. A reconnect makes a new session; nothing of an old one
 * (channels, declarations, pending confirms) is reused.
 */
export class Session {
  alive = true;
  /** The error the connection reported before it closed. */
  cause: unknown;
  /** Destination queues declared on this connection, and the inbox exchange under `""`. */
  readonly declared = new Map<string, Promise<void>>();
  publisher: Publisher | undefined;
  publisherOpening: Promise<Publisher> | undefined;

  constructor(
    readonly connection: RabbitmqConnection,
    /** Whether the transport created this connection and so closes it. */
    readonly owned: boolean,
    readonly detach: () => void,
  ) {}
}
