/**
 * The raw baseline: what a user writes by hand with the broker's own client library. Each broker
 * implements these two halves; the file reading, sequence header and disk writing around them
 * are shared (`raw-sender.ts`, `raw-sink.ts`) so the brokers differ only where their clients do.
 */

/** Publishes plain messages; `publish` resolves on the broker's acknowledgement. */
export interface RawPublisher {
  publish(body: Buffer): Promise<void>;
  close(): Promise<void>;
}

/** A live consumer. */
export interface RawConsumer {
  close(): Promise<void>;
}

/**
 * Takes one received message. Resolves (or returns undefined) when the consumer may take the
 * next one; `written` is called once the bytes are on their way to disk, the moment a hand-written
 * consumer acknowledges.
 */
export type RawMessageHandler = (body: Buffer, written?: () => void) => Promise<void> | undefined;

/** One broker's raw client. */
export interface RawClient {
  openPublisher(destination: string, chunkBytes: number): Promise<RawPublisher>;
  /**
   * Resolves once the consumer is live (a message published from then on reaches it). A failure
   * of the connection after that goes to `onError`.
   */
  openConsumer(destination: string, chunkBytes: number, onMessage: RawMessageHandler, onError: (error: Error) => void): Promise<RawConsumer>;
}
