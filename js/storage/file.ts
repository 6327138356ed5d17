/**
 * The Node StorageAdapter: one directory per profile holding an append-only log of
 * committed transactions, a key file and a lock file.
 *
 * - A transaction is one record `len u32 BE ‖ sha256(body) ‖ body`, written with one
 *   append and fsync'd before commit resolves. A record cut short at the end of the file
 *   (a crash mid-write) was never committed and is dropped; a complete record whose
 *   checksum fails is corruption: STORE_CORRUPT, never a silent reset.
 * - On open the log is replayed into memory; when it holds more than twice the live data
 *   it is compacted into a new log written to a temporary file, fsync'd and renamed.
 * - `lock` (O_EXCL, holding the pid) keeps a second process off the profile: STORE_LOCKED.
 *   A lock whose process is gone is taken over.
 * - `store.key` holds a random key-encryption key (mode 0600) when no passphrase is used.
 */
import { createHash, webcrypto } from "node:crypto";
import { closeSync, fsyncSync, openSync, writeSync } from "node:fs";
import { mkdir, open, readFile, rename, rm, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { LogosChatError } from "../errors.js";
import type { StorageAdapter, StoreOp } from "../types.js";
import { compareBytes, hex, unhex } from "./bytes.js";

const LOG = "log";
const HEADER = 4 + 32;

function encodeOps(ops: StoreOp[]): Uint8Array {
  const parts: Buffer[] = [];
  for (const op of ops) {
    const name = Buffer.from(op.store, "utf8");
    const head = Buffer.alloc(1 + name.length + 4);
    head.writeUInt8(name.length, 0);
    name.copy(head, 1);
    head.writeUInt32BE(op.key.length, 1 + name.length);
    const flag = Buffer.alloc(5);
    flag.writeUInt8(op.value ? 1 : 0, 0);
    flag.writeUInt32BE(op.value?.length ?? 0, 1);
    parts.push(head, Buffer.from(op.key), flag, Buffer.from(op.value ?? new Uint8Array()));
  }
  const body = Buffer.concat(parts);
  const rec = Buffer.alloc(HEADER);
  rec.writeUInt32BE(body.length, 0);
  createHash("sha256").update(body).digest().copy(rec, 4);
  return Buffer.concat([rec, body]);
}

function decodeOps(body: Buffer): StoreOp[] {
  const ops: StoreOp[] = [];
  let i = 0;
  const need = (n: number) => {
    if (i + n > body.length) throw new LogosChatError("STORE_CORRUPT", "a log record does not parse");
  };
  while (i < body.length) {
    need(1);
    const nl = body.readUInt8(i);
    need(1 + nl + 4);
    const store = body.subarray(i + 1, i + 1 + nl).toString("utf8");
    const kl = body.readUInt32BE(i + 1 + nl);
    i += 1 + nl + 4;
    need(kl + 5);
    const key = new Uint8Array(body.subarray(i, i + kl));
    const put = body.readUInt8(i + kl) === 1;
    const vl = body.readUInt32BE(i + kl + 1);
    i += kl + 5;
    need(vl);
    const value = put ? new Uint8Array(body.subarray(i, i + vl)) : undefined;
    i += vl;
    ops.push(value ? { store, key, value } : { store, key });
  }
  return ops;
}

export class FileStorage implements StorageAdapter {
  private readonly data = new Map<string, Map<string, Uint8Array>>();
  private sorted = new Map<string, string[] | undefined>();
  private fd: number | undefined;
  private locked = false;

  constructor(private readonly dir: string) {}

  async open(stores: string[]): Promise<void> {
    await mkdir(this.dir, { recursive: true });
    await this.lock();
    for (const s of stores) this.data.set(s, new Map());
    const path = join(this.dir, LOG);
    let log: Buffer;
    try {
      log = await readFile(path);
    } catch {
      log = Buffer.alloc(0);
    }
    let offset = 0;
    let live = 0;
    while (offset + HEADER <= log.length) {
      const len = log.readUInt32BE(offset);
      if (offset + HEADER + len > log.length) break; // torn tail: never committed
      const body = log.subarray(offset + HEADER, offset + HEADER + len);
      const sum = createHash("sha256").update(body).digest();
      if (!sum.equals(log.subarray(offset + 4, offset + HEADER))) {
        await this.unlock();
        throw new LogosChatError("STORE_CORRUPT", `the store log at ${path} fails its checksum at byte ${offset}`);
      }
      for (const op of decodeOps(body)) this.applyOp(op);
      offset += HEADER + len;
    }
    for (const m of this.data.values()) for (const [k, v] of m) live += k.length / 2 + v.length + 16;
    if (offset < log.length) {
      // Drop the torn tail so that the next append starts on a record boundary.
      await writeFile(path + ".tmp", log.subarray(0, offset));
      await this.fsyncFile(path + ".tmp");
      await rename(path + ".tmp", path);
    }
    if (offset > 1 << 20 && offset > 2 * live) await this.compact();
    this.fd = openSync(path, "a");
  }

  private applyOp(op: StoreOp): void {
    let m = this.data.get(op.store);
    if (!m) {
      m = new Map();
      this.data.set(op.store, m);
    }
    const k = hex(op.key);
    if (op.value) {
      if (!m.has(k)) this.sorted.set(op.store, undefined);
      m.set(k, op.value);
    } else if (m.delete(k)) {
      this.sorted.set(op.store, undefined);
    }
  }

  private async compact(): Promise<void> {
    const ops: StoreOp[] = [];
    for (const [store, m] of this.data) for (const [k, v] of m) ops.push({ store, key: unhex(k), value: v });
    const tmp = join(this.dir, LOG + ".tmp");
    await writeFile(tmp, encodeOps(ops));
    await this.fsyncFile(tmp);
    await rename(tmp, join(this.dir, LOG));
  }

  private async fsyncFile(path: string): Promise<void> {
    const h = await open(path, "r+");
    await h.sync();
    await h.close();
  }

  private async lock(): Promise<void> {
    const path = join(this.dir, "lock");
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        const h = await open(path, "wx");
        await h.writeFile(String(process.pid));
        await h.close();
        this.locked = true;
        return;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
        const pid = Number((await readFile(path, "utf8").catch(() => "")).trim());
        let alive = false;
        if (pid > 0) {
          try {
            process.kill(pid, 0);
            alive = true;
          } catch (err) {
            alive = (err as NodeJS.ErrnoException).code === "EPERM";
          }
        }
        if (alive) throw new LogosChatError("STORE_LOCKED", `the profile at ${this.dir} is open in process ${pid}; one writer per account`);
        await rm(path, { force: true }); // stale: its process is gone
      }
    }
    throw new LogosChatError("STORE_LOCKED", `could not lock ${this.dir}`);
  }

  private async unlock(): Promise<void> {
    if (this.locked) await rm(join(this.dir, "lock"), { force: true });
    this.locked = false;
  }

  private store(name: string): Map<string, Uint8Array> {
    const m = this.data.get(name);
    if (!m) throw new Error(`no object store ${name}`);
    return m;
  }

  async getAll(store: string): Promise<Array<[Uint8Array, Uint8Array]>> {
    return [...this.store(store)].map(([k, v]) => [unhex(k), v]);
  }

  async get(store: string, key: Uint8Array): Promise<Uint8Array | undefined> {
    return this.store(store).get(hex(key));
  }

  async range(store: string, from: Uint8Array, to: Uint8Array, o: { limit: number; reverse: boolean }): Promise<Array<[Uint8Array, Uint8Array]>> {
    const m = this.store(store);
    let keys = this.sorted.get(store);
    if (!keys) {
      keys = [...m.keys()].sort(); // hex order is byte order
      this.sorted.set(store, keys);
    }
    const lo = lowerBound(keys, hex(from));
    const hi = lowerBound(keys, hex(to) + "g"); // past every key ≤ to
    const out: Array<[Uint8Array, Uint8Array]> = [];
    if (o.reverse) for (let i = hi - 1; i >= lo && out.length < o.limit; i--) out.push([unhex(keys[i]!), m.get(keys[i]!)!]);
    else for (let i = lo; i < hi && out.length < o.limit; i++) out.push([unhex(keys[i]!), m.get(keys[i]!)!]);
    return out;
  }

  async commit(ops: StoreOp[], options?: { durable?: boolean }): Promise<void> {
    if (ops.length === 0) return;
    if (this.fd === undefined) throw new LogosChatError("CLOSED", "the store is closed");
    for (const op of ops) this.store(op.store);
    const rec = encodeOps(ops);
    writeSync(this.fd, rec);
    if (options?.durable !== false) fsyncSync(this.fd);
    for (const op of ops) this.applyOp(op);
  }

  async deviceKey(): Promise<CryptoKey> {
    const path = join(this.dir, "store.key");
    let raw: Buffer;
    try {
      raw = await readFile(path);
    } catch {
      raw = Buffer.from(webcrypto.getRandomValues(new Uint8Array(32)));
      await writeFile(path, raw, { mode: 0o600, flag: "wx" });
    }
    if (raw.length !== 32) throw new LogosChatError("STORE_CORRUPT", `${path} is not a 32-byte key`);
    return webcrypto.subtle.importKey("raw", raw, "AES-GCM", false, ["encrypt", "decrypt"]) as Promise<CryptoKey>;
  }

  async close(): Promise<void> {
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
    await this.unlock();
  }

  /** Bytes on disk (benchmarks). */
  async size(): Promise<number> {
    return (await stat(join(this.dir, LOG))).size;
  }
}

function lowerBound(a: string[], x: string): number {
  let lo = 0;
  let hi = a.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (a[mid]! < x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

export { compareBytes };
