/** The in-memory StorageAdapter: the same model as the persistent ones, lost on close. */
import type { StorageAdapter, StoreOp } from "../types.js";
import { compareBytes, hex, unhex } from "./bytes.js";

export class MemoryStorage implements StorageAdapter {
  private readonly stores = new Map<string, Map<string, Uint8Array>>();

  async open(stores: string[]): Promise<void> {
    for (const s of stores) if (!this.stores.has(s)) this.stores.set(s, new Map());
  }

  private store(name: string): Map<string, Uint8Array> {
    const s = this.stores.get(name);
    if (!s) throw new Error(`no object store ${name}`);
    return s;
  }

  async getAll(store: string): Promise<Array<[Uint8Array, Uint8Array]>> {
    return [...this.store(store)].map(([k, v]) => [unhex(k), v]);
  }

  async get(store: string, key: Uint8Array): Promise<Uint8Array | undefined> {
    return this.store(store).get(hex(key));
  }

  async range(store: string, from: Uint8Array, to: Uint8Array, o: { limit: number; reverse: boolean }): Promise<Array<[Uint8Array, Uint8Array]>> {
    const rows = [...this.store(store)]
      .map(([k, v]) => [unhex(k), v] as [Uint8Array, Uint8Array])
      .filter(([k]) => compareBytes(k, from) >= 0 && compareBytes(k, to) <= 0)
      .sort((a, b) => compareBytes(a[0], b[0]));
    if (o.reverse) rows.reverse();
    return rows.slice(0, o.limit);
  }

  async commit(ops: StoreOp[]): Promise<void> {
    for (const op of ops) this.store(op.store); // all or nothing: check first
    for (const op of ops) {
      if (op.value) this.store(op.store).set(hex(op.key), op.value.slice());
      else this.store(op.store).delete(hex(op.key));
    }
  }

  async close(): Promise<void> {}
}
