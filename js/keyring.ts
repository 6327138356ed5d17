/**
 * The store key: 32 random bytes that seal every record (in the core). It is kept
 * wrapped (AES-GCM, WebCrypto) in the `keyring` store under a key-encryption key:
 * PBKDF2-SHA-256 of the passphrase when one is given (its parameters stored with it),
 * else the platform's device key (a non-extractable IndexedDB key, a Node key file).
 * A wrong passphrase fails the unwrap: WRONG_PASSPHRASE, and nothing is written.
 */
import { LogosChatError } from "./errors.js";
import type { StorageAdapter, StoreOp } from "./types.js";

export const KEYRING = "keyring";
const ENTRY = new TextEncoder().encode("store-key");
/** OWASP's 2023 figure for PBKDF2-SHA-256; stores keep their own count, so older ones open. */
const PBKDF2_ITERATIONS = 600_000;

interface Wrapped {
  v: 1;
  kek: "pbkdf2-sha256" | "device" | "none";
  iterations?: number;
  salt?: string;
  iv?: string;
  key: string;
}

const b64 = (b: Uint8Array) => btoa(String.fromCharCode(...b));
const unb64 = (s: string): Uint8Array<ArrayBuffer> => Uint8Array.from(atob(s), (c) => c.charCodeAt(0));

async function passphraseKek(passphrase: string, salt: Uint8Array<ArrayBuffer>, iterations: number): Promise<CryptoKey> {
  const base = await crypto.subtle.importKey("raw", new TextEncoder().encode(passphrase), "PBKDF2", false, ["deriveKey"]);
  return crypto.subtle.deriveKey({ name: "PBKDF2", hash: "SHA-256", salt, iterations }, base, { name: "AES-GCM", length: 256 }, false, ["encrypt", "decrypt"]);
}

const RECOVERY_WRAPPED = "logos_recovery_pw_";
const b64url = (b: Uint8Array) => b64(b).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
const unb64url = (s: string) => unb64(s.replace(/-/g, "+").replace(/_/g, "/") + "=".repeat((4 - (s.length % 4)) % 4));

/**
 * A recovery secret wrapped under a passphrase: `logos_recovery_pw_` and base64url of
 * salt (16) ‖ iv (12) ‖ AES-GCM(PBKDF2-SHA-256(passphrase, salt, 600,000), secret).
 */
export async function wrapRecovery(secret: string, passphrase: string): Promise<string> {
  const salt = crypto.getRandomValues(new Uint8Array(16));
  const iv = crypto.getRandomValues(new Uint8Array(12));
  const kek = await passphraseKek(passphrase, salt, PBKDF2_ITERATIONS);
  const sealed = new Uint8Array(await crypto.subtle.encrypt({ name: "AES-GCM", iv }, kek, new TextEncoder().encode(secret)));
  return RECOVERY_WRAPPED + b64url(new Uint8Array([...salt, ...iv, ...sealed]));
}

/** The secret of a recovery string, unwrapping it with the passphrase if it is wrapped. */
export async function unwrapRecovery(recovery: string, passphrase: string | undefined): Promise<string> {
  if (!recovery.startsWith(RECOVERY_WRAPPED)) return recovery;
  if (passphrase === undefined) throw new LogosChatError("WRONG_PASSPHRASE", "this recovery secret is wrapped by a passphrase: pass it as recoverPassphrase");
  let raw: Uint8Array<ArrayBuffer>;
  try {
    raw = unb64url(recovery.slice(RECOVERY_WRAPPED.length));
  } catch {
    throw new LogosChatError("INVALID_ARGUMENT", "not a recovery secret");
  }
  if (raw.length < 16 + 12 + 16) throw new LogosChatError("INVALID_ARGUMENT", "not a recovery secret");
  try {
    const kek = await passphraseKek(passphrase, raw.slice(0, 16), PBKDF2_ITERATIONS);
    return new TextDecoder().decode(await crypto.subtle.decrypt({ name: "AES-GCM", iv: raw.slice(16, 28) }, kek, raw.slice(28)));
  } catch {
    throw new LogosChatError("WRONG_PASSPHRASE", "the passphrase does not open this recovery secret");
  }
}

/** The store key; for a new store also the keyring record, to commit with the account. */
export interface StoreKey {
  key: Uint8Array;
  fresh: boolean;
  keyring?: StoreOp;
}

/** Returns the store key, creating it (and its wrapped keyring record) for a new store. */
export async function storeKey(adapter: StorageAdapter, passphrase: string | undefined, persistent: boolean): Promise<StoreKey> {
  const raw = await adapter.get(KEYRING, ENTRY);
  if (!raw) {
    const key: Uint8Array<ArrayBuffer> = crypto.getRandomValues(new Uint8Array(32));
    if (!persistent) return { key, fresh: true };
    let entry: Wrapped;
    if (passphrase !== undefined) {
      const salt = crypto.getRandomValues(new Uint8Array(16));
      const iv = crypto.getRandomValues(new Uint8Array(12));
      const kek = await passphraseKek(passphrase, salt, PBKDF2_ITERATIONS);
      const wrapped = new Uint8Array(await crypto.subtle.encrypt({ name: "AES-GCM", iv }, kek, key));
      entry = { v: 1, kek: "pbkdf2-sha256", iterations: PBKDF2_ITERATIONS, salt: b64(salt), iv: b64(iv), key: b64(wrapped) };
    } else if (adapter.deviceKey) {
      const iv = crypto.getRandomValues(new Uint8Array(12));
      const wrapped = new Uint8Array(await crypto.subtle.encrypt({ name: "AES-GCM", iv }, await adapter.deviceKey(), key));
      entry = { v: 1, kek: "device", iv: b64(iv), key: b64(wrapped) };
    } else {
      // A custom adapter with neither a passphrase nor a device key: the key is stored as is,
      // which the app chose by giving neither. Say so, once per store.
      console.warn("logos-chat: this StorageAdapter has no deviceKey() and no passphrase was given: the store key is kept in clear next to the data");
      entry = { v: 1, kek: "none", key: b64(key) };
    }
    return { key, fresh: true, keyring: { store: KEYRING, key: ENTRY, value: new TextEncoder().encode(JSON.stringify(entry)) } };
  }
  let entry: Wrapped;
  try {
    entry = JSON.parse(new TextDecoder().decode(raw)) as Wrapped;
  } catch {
    throw new LogosChatError("STORE_CORRUPT", "the keyring does not parse");
  }
  if (entry.kek !== "pbkdf2-sha256" && passphrase !== undefined) {
    // Ignoring it would let the app believe the store is protected by it.
    throw new LogosChatError("WRONG_PASSPHRASE", "this store was created without a passphrase: open it without one");
  }
  try {
    if (entry.kek === "pbkdf2-sha256") {
      if (passphrase === undefined) throw new LogosChatError("WRONG_PASSPHRASE", "this store is protected by a passphrase");
      const kek = await passphraseKek(passphrase, unb64(entry.salt!), entry.iterations!);
      return { key: new Uint8Array(await crypto.subtle.decrypt({ name: "AES-GCM", iv: unb64(entry.iv!) }, kek, unb64(entry.key))), fresh: false };
    }
    if (entry.kek === "device") {
      if (!adapter.deviceKey) throw new LogosChatError("STORE_CORRUPT", "the store was sealed with a device key this adapter lacks");
      return { key: new Uint8Array(await crypto.subtle.decrypt({ name: "AES-GCM", iv: unb64(entry.iv!) }, await adapter.deviceKey(), unb64(entry.key))), fresh: false };
    }
    return { key: unb64(entry.key), fresh: false };
  } catch (e) {
    if (e instanceof LogosChatError) throw e;
    if (entry.kek === "pbkdf2-sha256") throw new LogosChatError("WRONG_PASSPHRASE", "the passphrase does not open this store");
    throw new LogosChatError("STORE_CORRUPT", "the store key does not unwrap");
  }
}
