import { createMemoryTransport, type MemoryBroker, type MemoryTransport } from "./testing/memory-transport";

/** @internal Tests only. Resolves once `condition` holds, polling every 10 ms; throws after `ms`. */
export async function until(condition: () => boolean | Promise<boolean>, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error("timed out");
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/**
 * @internal Tests only. A memory transport whose published stream frames are recorded as they
 * went out, each possibly changed first by `tamper` (given a copy).
 */
export function tappedTransport(broker: MemoryBroker, tamper?: (frame: Uint8Array) => Uint8Array): { transport: MemoryTransport; published: Uint8Array[] } {
  const transport = createMemoryTransport({ broker });
  const published: Uint8Array[] = [];
  const publish = transport.publish.bind(transport);
  transport.publish = (channel, frame, options) => {
    const sent = tamper ? tamper(Uint8Array.from(frame)) : frame;
    if (options?.kind === "stream") published.push(Uint8Array.from(sent));
    return publish(channel, sent, options);
  };
  return { transport, published };
}
