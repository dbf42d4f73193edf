import { createCipheriv, createDecipheriv, createHmac, hkdfSync, randomBytes, timingSafeEqual } from "node:crypto";
import { E2eKeyError } from "../errors/e2e-key-error";
import { IntegrityError } from "../errors/integrity-error";
import { DATA_HEADER_BYTES, parseManifest, streamIdBytes } from "../protocol/frame-codec";
import type { DataFrame, E2eInfo, Manifest } from "../protocol/frames";
import type { E2eKey, E2eKeyring } from "./e2e-keyring";

/** Bytes the GCM tag adds to every sealed chunk: a Data frame's payload is the chunk and this. */
export const E2E_TAG_BYTES = 16;
/** Bytes of an attempt's salt. */
const SALT_BYTES = 16;
const NONCE_BYTES = 12;
/** The first byte of a nonce: what it seals, so a chunk and the manifest never share one. */
const Domain = { Data: 1, Manifest: 2 } as const;
const INFO = "stream-e2e-v1";

/** The manifest fields only the receiver holding the key may read; the rest route the stream. */
interface SealedFields {
  readonly name: string;
  readonly contentType: string;
  readonly metadata: Readonly<Record<string, string>>;
  readonly sizeBytes?: number;
  readonly sha256?: string;
}

/** What an encrypted stream's Open shows in the clear in place of its sealed fields. */
const CLEAR_PLACEHOLDERS = { name: "", contentType: "application/octet-stream", metadata: {} } as const;

function nonce(domain: number, sequence: number): Buffer {
  const bytes = Buffer.alloc(NONCE_BYTES);
  bytes[0] = domain;
  bytes.writeBigUInt64BE(BigInt(sequence), 4);
  return bytes;
}

/**
 * The manifest's clear fields a receiver relies on, as associated data of the sealed fields: a
 * bit flipped in any of them fails the seal. (`takeover` is left out: the sender adds it to an
 * Open it publishes again.)
 */
function manifestAad(m: Manifest, e2e: Pick<E2eInfo, "keyId" | "salt">): Buffer {
  const fields = [m.streamId, m.chunkBytes, m.createdAt, m.model, m.replyTo, m.windowChunks, m.windowBytes, m.delivery ?? null, m.expiresAt ?? null, e2e.keyId, e2e.salt];
  // How the chunks are compressed, too (added only when set, so uncompressed streams seal as before).
  if (m.compression !== undefined) fields.push(m.compression);
  return Buffer.from(JSON.stringify(fields));
}

/**
 * The keys of one attempt at one stream: AES-256-GCM for its chunks and its sealed manifest, and
 * HMAC-SHA-256 for its End, both derived (HKDF-SHA-256) from the shared key, the stream id and
 * the attempt's random salt. A chunk's nonce is its sequence, so a chunk sent again (a resend, a
 * takeover reading the source again) is sealed to the same bytes; a new attempt at the same
 * stream id (a resume, a restart) has a new salt, so new keys, and never a (key, nonce) twice.
 */
export class StreamCipher {
  private readonly aesKey: Buffer;
  private readonly macKey: Buffer;
  private readonly streamId: Uint8Array;

  private constructor(
    key: E2eKey,
    streamId: string,
    /** The attempt's salt, base64url: in the clear manifest. */
    readonly salt: string,
  ) {
    this.streamId = streamIdBytes(streamId);
    const derived = Buffer.from(hkdfSync("sha256", key.key, Buffer.from(salt, "base64url"), Buffer.concat([Buffer.from(INFO), this.streamId]), 64));
    this.aesKey = derived.subarray(0, 32);
    this.macKey = derived.subarray(32);
    this.keyId = key.keyId;
  }

  /** The id of the key, in the clear manifest. */
  readonly keyId: string;

  /** A sender's cipher for a new attempt at `streamId`: a fresh random salt. */
  static forSend(key: E2eKey, streamId: string): StreamCipher {
    return new StreamCipher(key, streamId, randomBytes(SALT_BYTES).toString("base64url"));
  }

  private dataAad(sequence: number, offset: number): Buffer {
    const aad = Buffer.alloc(28);
    aad.set(this.streamId, 0);
    aad.writeUInt32BE(sequence, 16);
    aad.writeBigUInt64BE(BigInt(offset), 20);
    return aad;
  }

  /**
   * A Data frame for chunk `sequence` at `offset`: room for the header, then the sealed chunk
   * and its tag. The header (stream id, sequence, offset) is associated data.
   */
  sealData(sequence: number, offset: number, chunk: Uint8Array): Uint8Array {
    const cipher = createCipheriv("aes-256-gcm", this.aesKey, nonce(Domain.Data, sequence));
    cipher.setAAD(this.dataAad(sequence, offset));
    const frame = Buffer.allocUnsafe(DATA_HEADER_BYTES + chunk.byteLength + E2E_TAG_BYTES);
    const sealed = cipher.update(chunk);
    cipher.final();
    frame.set(sealed, DATA_HEADER_BYTES);
    frame.set(cipher.getAuthTag(), DATA_HEADER_BYTES + sealed.byteLength);
    return frame;
  }

  /** The chunk of a sealed Data frame, or `undefined` when it was tampered with or sealed under another key. */
  openData(frame: DataFrame): Uint8Array | undefined {
    const { payload, sequence, offset } = frame;
    if (payload.byteLength < E2E_TAG_BYTES) return undefined;
    const at = payload.byteLength - E2E_TAG_BYTES;
    return this.open(nonce(Domain.Data, sequence), this.dataAad(sequence, offset), payload.subarray(0, at), payload.subarray(at));
  }

  private open(iv: Buffer, aad: Buffer, sealed: Uint8Array, tag: Uint8Array): Uint8Array | undefined {
    try {
      const decipher = createDecipheriv("aes-256-gcm", this.aesKey, iv);
      decipher.setAAD(aad);
      decipher.setAuthTag(tag);
      const opened = decipher.update(sealed);
      decipher.final();
      return opened;
    } catch {
      return undefined;
    }
  }

  /**
   * What an encrypted stream's End carries where a plain one has the SHA-256: an HMAC of the
   * chunk count, byte count and the plaintext's SHA-256, so the End neither names the content
   * (a bare hash would confirm a guess) nor can be changed unseen.
   */
  endTag(chunkCount: number, byteCount: number, sha256: Uint8Array): Buffer {
    const counts = Buffer.alloc(12);
    counts.writeUInt32BE(chunkCount, 0);
    counts.writeBigUInt64BE(BigInt(byteCount), 4);
    return createHmac("sha256", this.macKey).update("end").update(counts).update(sha256).digest();
  }

  /** Whether `tag` is {@link endTag} of these values. */
  checkEnd(tag: Uint8Array, chunkCount: number, byteCount: number, sha256: Uint8Array): boolean {
    const expected = this.endTag(chunkCount, byteCount, sha256);
    return tag.byteLength === expected.byteLength && timingSafeEqual(tag, expected);
  }

  /** The manifest as the Open carries it: name, content type, metadata, size and SHA-256 sealed. */
  sealManifest(manifest: Manifest): Manifest {
    const { name, contentType, metadata, sizeBytes, sha256, takeover, ...clear } = manifest;
    const fields: SealedFields = { name, contentType, metadata, ...(sizeBytes === undefined ? {} : { sizeBytes }), ...(sha256 === undefined ? {} : { sha256 }) };
    const info = { keyId: this.keyId, salt: this.salt };
    const cipher = createCipheriv("aes-256-gcm", this.aesKey, nonce(Domain.Manifest, 0));
    cipher.setAAD(manifestAad(manifest, info));
    const sealed = Buffer.concat([cipher.update(JSON.stringify(fields)), cipher.final(), cipher.getAuthTag()]);
    return { ...clear, ...CLEAR_PLACEHOLDERS, ...(takeover === undefined ? {} : { takeover }), e2e: { ...info, sealed: sealed.toString("base64url") } };
  }

  /**
   * A receiver's cipher for the stream of `manifest` (its Open's, sealed or restored). Throws
   * {@link E2eKeyError} when `keys` holds no key under the manifest's key id.
   */
  static forManifest(manifest: Manifest, keys: E2eKeyring | undefined): StreamCipher {
    const { e2e, streamId } = manifest;
    if (!e2e) throw new TypeError("[stream] internal: the manifest is not sealed");
    const key = keys?.get(e2e.keyId);
    if (!key) {
      throw new E2eKeyError({
        message: `[stream] [e2e] stream ${streamId} is end-to-end encrypted under key ${e2e.keyId}, which this receiver ${keys ? `does not hold (it holds ${keys.keyIds.join(", ")})` : "has no keys for (ReceiveOptions.keys, --e2e-key)"}; it was refused and nothing of it written`,
        keyId: e2e.keyId,
      });
    }
    return new StreamCipher(key, streamId, e2e.salt);
  }

  /**
   * The manifest of an Open as published (`wire`), its sealed fields restored. Throws
   * {@link IntegrityError} when the seal does not hold: changed on the way, or sealed under
   * another key with the same id.
   */
  openManifest(wire: Manifest): Manifest {
    const { e2e, streamId } = wire;
    if (!e2e) throw new TypeError("[stream] internal: the manifest is not sealed");
    const sealed = Buffer.from(e2e.sealed, "base64url");
    const opened =
      sealed.byteLength > E2E_TAG_BYTES
        ? this.open(nonce(Domain.Manifest, 0), manifestAad(wire, e2e), sealed.subarray(0, -E2E_TAG_BYTES), sealed.subarray(-E2E_TAG_BYTES))
        : undefined;
    if (!opened) {
      throw new IntegrityError({
        message: `[stream] [e2e] the sealed manifest of stream ${streamId} does not open under key ${e2e.keyId}: it was changed on the way, or the sender's key under that id is another. Nothing of it was written.`,
      });
    }
    let fields: SealedFields;
    try {
      fields = JSON.parse(Buffer.from(opened).toString("utf8")) as SealedFields;
    } catch (error) {
      throw new IntegrityError({ message: `[stream] [e2e] the sealed manifest of stream ${streamId} is not JSON`, cause: error });
    }
    const { name, contentType, metadata, sizeBytes, sha256 } = fields;
    return parseManifest({ ...wire, name, contentType, metadata, sizeBytes, sha256 });
  }
}
