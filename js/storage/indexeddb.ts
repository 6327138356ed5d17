/**
 * The browser StorageAdapter: one IndexedDB database per profile, one object store per
 * model store, binary keys (IndexedDB orders them byte-wise, so history pages by key
 * range), one readwrite transaction per commit. It also keeps the profile's
 * non-extractable key-encryption key (a WebCrypto AES-GCM key, stored by structured clone:
 * the page can use it but never read its bytes).
 */
import { LogosChatError } from "../errors.js";
import type { StorageAdapter, StoreOp } from "../types.js";

const KEYS = "__keys";
const SCHEMA_DB_VERSION = 1;

function req<T>(r: IDBRequest<T>): Promise<T> {
  return new Promise((resolve, reject) => {
    r.onsuccess = () => resolve(r.result);
    r.onerror = () => reject(r.error);
  });
}

function done(tx: IDBTransaction): Promise<void> {
  return new Promise((resolve, reject) => {
    tx.oncomplete = () => resolve();
    tx.onerror = () => reject(tx.error);
    tx.onabort = () => reject(tx.error ?? new Error("transaction aborted"));
  });
}

const buf = (b: Uint8Array): ArrayBuffer => b.slice().buffer;
const bytes = (v: unknown): Uint8Array => (v instanceof ArrayBuffer ? new Uint8Array(v) : new Uint8Array(v as ArrayBufferLike));

export class IndexedDbStorage implements StorageAdapter {
  private db: IDBDatabase | undefined;

  constructor(readonly name: string) {}

  async open(stores: string[]): Promise<void> {
    if (typeof indexedDB === "undefined") throw new LogosChatError("INVALID_ARGUMENT", "IndexedDB is not available here; pass store: \"memory\" or { path }");
    const open = indexedDB.open(this.name, SCHEMA_DB_VERSION);
    open.onupgradeneeded = () => {
      const db = open.result;
      for (const s of [...stores, KEYS]) if (!db.objectStoreNames.contains(s)) db.createObjectStore(s);
    };
    this.db = await req(open);
    const missing = stores.filter((s) => !this.db!.objectStoreNames.contains(s));
    if (missing.length) throw new LogosChatError("STORE_CORRUPT", `database ${this.name} lacks object stores ${missing.join(", ")}`);
  }

  private get handle(): IDBDatabase {
    if (!this.db) throw new LogosChatError("CLOSED", "the store is closed");
    return this.db;
  }

  async getAll(store: string): Promise<Array<[Uint8Array, Uint8Array]>> {
    const tx = this.handle.transaction(store, "readonly");
    const os = tx.objectStore(store);
    const [keys, values] = await Promise.all([req(os.getAllKeys()), req(os.getAll())]);
    return keys.map((k, i) => [bytes(k), bytes(values[i])]);
  }

  async get(store: string, key: Uint8Array): Promise<Uint8Array | undefined> {
    const v = await req(this.handle.transaction(store, "readonly").objectStore(store).get(buf(key)));
    return v === undefined ? undefined : bytes(v);
  }

  async range(store: string, from: Uint8Array, to: Uint8Array, o: { limit: number; reverse: boolean }): Promise<Array<[Uint8Array, Uint8Array]>> {
    const out: Array<[Uint8Array, Uint8Array]> = [];
    const tx = this.handle.transaction(store, "readonly");
    const cursor = tx.objectStore(store).openCursor(IDBKeyRange.bound(buf(from), buf(to)), o.reverse ? "prev" : "next");
    await new Promise<void>((resolve, reject) => {
      cursor.onerror = () => reject(cursor.error);
      cursor.onsuccess = () => {
        const c = cursor.result;
        if (!c || out.length >= o.limit) return resolve();
        out.push([bytes(c.key), bytes(c.value)]);
        c.continue();
      };
    });
    return out;
  }

  async commit(ops: StoreOp[], options?: { durable?: boolean }): Promise<void> {
    if (ops.length === 0) return;
    const names = [...new Set(ops.map((o) => o.store))];
    const tx = this.handle.transaction(names, "readwrite", { durability: options?.durable === false ? "relaxed" : "strict" });
    for (const op of ops) {
      const os = tx.objectStore(op.store);
      if (op.value) os.put(buf(op.value), buf(op.key));
      else os.delete(buf(op.key));
    }
    await done(tx);
  }

  async deviceKey(): Promise<CryptoKey> {
    const existing = await req(this.handle.transaction(KEYS, "readonly").objectStore(KEYS).get("device-key"));
    if (existing) return existing as CryptoKey;
    const key = await crypto.subtle.generateKey({ name: "AES-GCM", length: 256 }, false, ["encrypt", "decrypt"]);
    const tx = this.handle.transaction(KEYS, "readwrite");
    tx.objectStore(KEYS).put(key, "device-key");
    await done(tx);
    return key;
  }

  async close(): Promise<void> {
    this.db?.close();
    this.db = undefined;
  }
}
