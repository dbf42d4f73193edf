import { decodeFrame, FrameType, type Transport } from "@stream/core";

/** A transport wrapped by {@link tapSender}: what it published, and a way to kill it. */
export interface SenderTap {
  /** The wrapped transport, to hand to `createStreamClient`. */
  readonly transport: Transport;
  /** Payload bytes of the Data frames published through it so far (retransmissions included). */
  readonly dataBytes: () => number;
  /**
   * The process is killed: from now on every publish is dropped (and resolves, as a dead process
   * never learns otherwise), nothing more is delivered to its subscriptions, and the underlying
   * transport is closed without waiting. No Abort goes out: the receiver sees only silence.
   */
  crash(): void;
}

/**
 * Wraps a sender's transport, real broker or in-memory, to count the data it publishes and to
 * crash it like a SIGKILL would, for the conformance suite's resume group.
 */
export function tapSender(transport: Transport): SenderTap {
  let crashed = false;
  let dataBytes = 0;
  const tapped: Transport = {
    specificationVersion: transport.specificationVersion,
    name: transport.name,
    capabilities: transport.capabilities,
    ...(transport.connection ? { connection: transport.connection } : {}),
    async publish(channel, frame, options) {
      if (crashed) return;
      const decoded = decodeFrame(frame);
      if (decoded.type === FrameType.Data) dataBytes += decoded.payload.byteLength;
      await transport.publish(channel, frame, options);
    },
    subscribe(channel, handler, options) {
      return transport.subscribe(channel, (frame) => (crashed ? undefined : handler(frame)), options);
    },
    async close() {
      if (!crashed) await transport.close();
    },
  };
  return {
    transport: tapped,
    dataBytes: () => dataBytes,
    crash() {
      crashed = true;
      transport.close().catch(() => {}); // a dead process's sockets just go away
    },
  };
}
