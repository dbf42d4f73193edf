import type { RabbitMQConfirmChannel, RabbitMQConnection } from "./rabbitmq-connection";

/** Where frames for one channel go: a queue through the default exchange, or an inbox's fanout. */
export interface Route {
  readonly exchange: string;
  readonly routingKey: string;
  readonly persistent: boolean;
}

/** A publish waiting for its turn or for the broker's confirm. Settles once. */
export interface PublishJob {
  readonly channel: string;
  readonly frame: Uint8Array;
  settled: boolean;
  resolve(): void;
  reject(error: unknown): void;
}

/** The confirm channel frames are published on, and the frames it has not had confirmed yet. */
export interface Publisher {
  readonly channel: RabbitMQConfirmChannel;
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
 * (channels, routes, pending confirms) is reused.
 */
export class Session {
  alive = true;
  /** The error the connection reported before it closed. */
  cause: unknown;
  readonly routes = new Map<string, Route>();
  readonly routing = new Map<string, Promise<Route>>();
  publisher: Publisher | undefined;
  publisherOpening: Promise<Publisher> | undefined;

  constructor(
    readonly connection: RabbitMQConnection,
    /** Whether the transport created this connection and so closes it. */
    readonly owned: boolean,
    readonly detach: () => void,
  ) {}
}
