import { createHash, randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { E2eKeyError } from "../errors/e2e-key-error";

/** Bytes of an end-to-end key: AES-256. */
export const E2E_KEY_BYTES = 32;
/** What a key id may be: it travels in the clear, in the manifest, so receivers pick the key. */
const KEY_ID = /^[A-Za-z0-9._-]{1,64}$/;
const HEX_KEY = /^[0-9a-fA-F]{64}$/;
const BASE64_KEY = /^[A-Za-z0-9+/_-]{43}=?$/;

/** One key for end-to-end encryption, and the id under which streams name it. */
export interface E2eKey {
  /** Travels in the clear so a receiver picks the key: 1-64 characters of `[A-Za-z0-9._-]`. Never derived from a secret you do not want named. */
  readonly keyId: string;
  /** 32 secret bytes (AES-256). Streams use keys derived from it per attempt, never it directly. */
  readonly key: Uint8Array;
}

function keyError(message: string, keyId?: string): E2eKeyError {
  return new E2eKeyError({ message: `[stream] [e2e] ${message}`, keyId });
}

/** The id of a key given without one: `k` and the first 12 hex digits of SHA-256("stream-e2e-key-id" + key), naming it without revealing it. */
export function defaultKeyId(key: Uint8Array): string {
  return `k${createHash("sha256").update("stream-e2e-key-id").update(key).digest("hex").slice(0, 12)}`;
}

/** A checked {@link E2eKey}; throws {@link E2eKeyError}. */
export function e2eKey(key: Uint8Array, keyId: string = defaultKeyId(key)): E2eKey {
  if (!(key instanceof Uint8Array) || key.byteLength !== E2E_KEY_BYTES) throw keyError(`a key must be ${E2E_KEY_BYTES} bytes`, keyId);
  if (!KEY_ID.test(keyId)) throw keyError(`key id ${JSON.stringify(keyId)} must be 1-64 characters of [A-Za-z0-9._-]`);
  return { keyId, key: Uint8Array.from(key) };
}

function parseKeyLine(line: string, where: string): E2eKey {
  const colon = line.lastIndexOf(":");
  const keyId = colon === -1 ? undefined : line.slice(0, colon).trim();
  const text = (colon === -1 ? line : line.slice(colon + 1)).trim();
  let bytes: Uint8Array | undefined;
  if (HEX_KEY.test(text)) bytes = Buffer.from(text, "hex");
  else if (BASE64_KEY.test(text)) bytes = Buffer.from(text, text.includes("-") || text.includes("_") ? "base64url" : "base64");
  if (bytes?.byteLength !== E2E_KEY_BYTES) {
    throw keyError(`${where} does not hold a key: write one per line, [keyId:]key, the key as 64 hex digits or the base64 of 32 bytes (stream keygen writes one)`, keyId);
  }
  return e2eKey(bytes, keyId);
}

/**
 * The keys of end-to-end encryption, by id: a sender seals with {@link primary} (the first), a
 * receiver opens any stream whose key id it holds. Build it from keys, from text
 * ({@link E2eKeyring.parse}), a file ({@link E2eKeyring.fromFile}) or an environment variable
 * ({@link E2eKeyring.fromEnv}).
 *
 * Text form, one key a line, `#` comments: `keyId:key` or just `key` (its id is then
 * {@link defaultKeyId}), the key as 64 hex digits or the base64 (or base64url) of 32 bytes.
 */
export class E2eKeyring {
  private readonly byId = new Map<string, E2eKey>();

  constructor(keys: Iterable<E2eKey>) {
    for (const key of keys) {
      const checked = e2eKey(key.key, key.keyId);
      if (this.byId.has(checked.keyId)) throw keyError(`key id ${checked.keyId} is given twice`, checked.keyId);
      this.byId.set(checked.keyId, checked);
    }
    if (this.byId.size === 0) throw keyError("a keyring needs at least one key");
  }

  /** Keys from text (see the class). `where` names the text's origin in errors. */
  static parse(text: string, where = "the key text"): E2eKeyring {
    const lines = text.split(/\r?\n|,/).map((line) => line.replace(/#.*/, "").trim()).filter((line) => line !== "");
    return new E2eKeyring(lines.map((line) => parseKeyLine(line, where)));
  }

  /** Keys from a file in the text form. Throws {@link E2eKeyError} when it cannot be read or holds none. */
  static fromFile(path: string): E2eKeyring {
    let text: string;
    try {
      text = readFileSync(path, "utf8");
    } catch (error) {
      throw new E2eKeyError({ message: `[stream] [e2e] cannot read the key file ${path}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`, cause: error });
    }
    return E2eKeyring.parse(text, `the key file ${path}`);
  }

  /**
   * Keys from an environment variable in the text form, or `undefined` when it is not set.
   * @default name "STREAM_E2E_KEY"
   */
  static fromEnv(name = "STREAM_E2E_KEY", env: NodeJS.ProcessEnv = process.env): E2eKeyring | undefined {
    const text = env[name];
    return text === undefined || text.trim() === "" ? undefined : E2eKeyring.parse(text, `the environment variable ${name}`);
  }

  /** A new random key under `keyId` (by default its {@link defaultKeyId}), as a line of the text form. */
  static generate(keyId?: string): string {
    const key = e2eKey(randomBytes(E2E_KEY_BYTES), keyId);
    return `${key.keyId}:${Buffer.from(key.key).toString("base64")}`;
  }

  /** The key a sender seals with: the first. */
  get primary(): E2eKey {
    return this.byId.values().next().value as E2eKey;
  }

  /** The key under `keyId`, if held. */
  get(keyId: string): E2eKey | undefined {
    return this.byId.get(keyId);
  }

  /** The ids held, in order; a key's bytes are never listed. */
  get keyIds(): string[] {
    return [...this.byId.keys()];
  }
}
