import { open } from "node:fs/promises";
import type { RawPublisher } from "./raw-client";
import { RAW_HEADER_BYTES, writeRawHeader } from "./raw-header";

/**
 * Sends a file as plain messages of `chunkBytes` (plus the bench header), never more than
 * `windowChunks` unconfirmed: the bounded wait for confirms a user writes by hand. Each message
 * is read into a buffer of its own, since the client may hold it until the broker confirms.
 */
export async function sendRawFile(
  publisher: RawPublisher,
  file: string,
  chunkBytes: number,
  windowChunks: number,
): Promise<{ bytes: number; chunks: number }> {
  const handle = await open(file, "r");
  try {
    const { size } = await handle.stat();
    const chunkCount = Math.ceil(size / chunkBytes);
    const inFlight = new Set<Promise<void>>();
    let bytes = 0;
    for (let sequence = 0; sequence < chunkCount; sequence++) {
      const payloadBytes = Math.min(chunkBytes, size - bytes);
      const message = Buffer.allocUnsafe(RAW_HEADER_BYTES + payloadBytes);
      let filled = 0;
      while (filled < payloadBytes) {
        const { bytesRead } = await handle.read(message, RAW_HEADER_BYTES + filled, payloadBytes - filled, bytes + filled);
        if (bytesRead === 0) throw new Error(`[stream] [bench] ${file} ended early, at byte ${bytes + filled}`);
        filled += bytesRead;
      }
      writeRawHeader(message, { sequence, chunkCount, payloadBytes });
      while (inFlight.size >= windowChunks) await Promise.race(inFlight);
      const confirmed: Promise<void> = publisher.publish(message).then(() => {
        inFlight.delete(confirmed);
      });
      inFlight.add(confirmed);
      bytes += payloadBytes;
    }
    await Promise.all(inFlight);
    return { bytes, chunks: chunkCount };
  } finally {
    await handle.close();
  }
}
