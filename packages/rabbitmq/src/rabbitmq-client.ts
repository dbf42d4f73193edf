/**
 * The parts of amqplib's promise API this adapter uses, restated structurally (Kysely's
 * `PostgresPool` way) so that a connection from amqplib 0.10, 1.x or 2.x fits, with or without
 * `@types/amqplib`, and the published types of this package import nothing from amqplib.
 *
 * @packageDocumentation
 */

/** An event emitter as amqplib's connections and channels are. */
export interface RabbitmqEmitter {
  /** Adds a listener. */
  on(event: string, listener: (...args: any[]) => void): unknown;
  /** Removes a listener added with `on`. */
  removeListener(event: string, listener: (...args: any[]) => void): unknown;
}

/** What `amqplib.connect()` resolves to (amqplib's `ChannelModel`). */
export interface RabbitmqConnection extends RabbitmqEmitter {
  /** Opens a channel. */
  createChannel(): Promise<RabbitmqChannel>;
  /** Opens a channel in publisher-confirm mode. */
  createConfirmChannel(): Promise<RabbitmqConfirmChannel>;
  /** Closes the connection. */
  close(): Promise<void>;
}

/** A delivered message, as much of amqplib's `ConsumeMessage` as this adapter reads. */
export interface RabbitmqMessage {
  /** The frame. */
  readonly content: Buffer;
  /** Delivery fields. */
  readonly fields: { readonly deliveryTag: number; readonly redelivered: boolean };
}

/** An AMQP channel (amqplib's `Channel`). */
export interface RabbitmqChannel extends RabbitmqEmitter {
  /** Declares a queue. */
  assertQueue(queue: string, options?: Record<string, unknown>): Promise<unknown>;
  /** Checks that a queue exists; a missing one closes the channel with 404. */
  checkQueue(queue: string): Promise<unknown>;
  /** Declares an exchange. */
  assertExchange(exchange: string, type: string, options?: Record<string, unknown>): Promise<unknown>;
  /** Binds a queue to an exchange. */
  bindQueue(queue: string, source: string, pattern: string): Promise<unknown>;
  /** Deletes a queue. */
  deleteQueue(queue: string): Promise<unknown>;
  /** Sets the prefetch count. */
  prefetch(count: number): Promise<unknown>;
  /** Starts a consumer; `onMessage(null)` means the broker cancelled it. */
  consume(
    queue: string,
    onMessage: (message: RabbitmqMessage | null) => void,
    options?: Record<string, unknown>,
  ): Promise<{ consumerTag: string }>;
  /** Stops a consumer. */
  cancel(consumerTag: string): Promise<unknown>;
  /** Acknowledges one delivery. */
  ack(message: RabbitmqMessage): void;
  /** Rejects one delivery. */
  nack(message: RabbitmqMessage, allUpTo?: boolean, requeue?: boolean): void;
  /** Closes the channel; unacknowledged deliveries go back to their queues. */
  close(): Promise<void>;
}

/** A channel in publisher-confirm mode (amqplib's `ConfirmChannel`). */
export interface RabbitmqConfirmChannel extends RabbitmqChannel {
  /**
   * Publishes; `callback` runs on the broker's ack (`null`) or nack (an error). Returns false
   * when the socket's buffer is full: wait for `drain` before publishing more.
   */
  publish(
    exchange: string,
    routingKey: string,
    content: Buffer,
    options?: Record<string, unknown>,
    callback?: (error: unknown) => void,
  ): boolean;
}
