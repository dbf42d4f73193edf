/**
 * The header the raw baseline puts in front of each chunk, so its receiver can count what was
 * lost or duplicated: magic, sequence number, chunk count, payload length (4 × uint32, big-endian).
 * A hand-written sender would carry about as much (a sequence number, an end marker).
 */
export const RAW_HEADER_BYTES = 16;
const MAGIC = 0x53425231; // "SBR1"

export interface RawHeader {
  readonly sequence: number;
  readonly chunkCount: number;
  readonly payloadBytes: number;
}

export function writeRawHeader(message: Buffer, header: RawHeader): void {
  message.writeUInt32BE(MAGIC, 0);
  message.writeUInt32BE(header.sequence, 4);
  message.writeUInt32BE(header.chunkCount, 8);
  message.writeUInt32BE(header.payloadBytes, 12);
}

/** Reads the header of a raw message; throws when it is not one or its length disagrees. */
export function readRawHeader(message: Buffer): RawHeader {
  if (message.byteLength < RAW_HEADER_BYTES || message.readUInt32BE(0) !== MAGIC) {
    throw new Error(`[stream] [bench] a raw message of ${message.byteLength} bytes has no bench header`);
  }
  const header = { sequence: message.readUInt32BE(4), chunkCount: message.readUInt32BE(8), payloadBytes: message.readUInt32BE(12) };
  if (header.payloadBytes !== message.byteLength - RAW_HEADER_BYTES) {
    throw new Error(`[stream] [bench] raw message ${header.sequence} says ${header.payloadBytes} payload bytes but carries ${message.byteLength - RAW_HEADER_BYTES}`);
  }
  return header;
}
