/** Where a chat profile lives: its storage adapter, its lock, and the crash test hook. */
import { check, LogosChatError } from "./errors.js";
import { getPlatform } from "./platform.js";
import { IndexedDbStorage } from "./storage/indexeddb.js";
import { MemoryStorage } from "./storage/memory.js";
import type { ChatOptions, StorageAdapter } from "./types.js";

/** A test hook (Node only): kill the process after a message's commit, before it is published. */
export function crashAfterPersist(): boolean {
  const env = (globalThis as { process?: { env?: Record<string, string | undefined> } }).process?.env;
  return env?.LOGOS_CHAT_TEST_CRASH_AFTER_PERSIST === "1";
}

/** Holds a Web Lock on the profile for as long as the chat is open (browsers). */
export async function webLock(name: string): Promise<(() => void) | undefined> {
  const locks = (globalThis as { navigator?: { locks?: LockManager } }).navigator?.locks;
  if (!locks) return undefined;
  return new Promise((resolve, reject) => {
    locks
      .request(`logos-chat/${name}`, { ifAvailable: true }, (lock) => {
        if (!lock) {
          reject(new LogosChatError("STORE_LOCKED", `the profile "${name}" is open in another tab or worker; one writer per account`));
          return undefined;
        }
        return new Promise<void>((release) => resolve(release));
      })
      .catch(reject);
  });
}

export function storageFor(options: ChatOptions, name: string): { adapter: StorageAdapter; persistent: boolean; lockName?: string } {
  const store = options.store ?? (getPlatform().browser ? "indexeddb" : "memory");
  if (store === "memory") return { adapter: new MemoryStorage(), persistent: false };
  if (store === "indexeddb") return { adapter: new IndexedDbStorage(`logos-chat/${name}`), persistent: true, lockName: name };
  if (typeof store === "object" && store !== null && "path" in store) {
    check(typeof store.path === "string" && store.path.length > 0, "store.path must be a directory path");
    const file = getPlatform().fileStorage;
    if (!file) throw new LogosChatError("INVALID_ARGUMENT", 'store: { path } needs Node; browsers use "indexeddb"');
    return { adapter: file(`${store.path.replace(/\/+$/, "")}/${encodeURIComponent(name)}`), persistent: true };
  }
  const a = store as StorageAdapter;
  check(typeof a === "object" && a !== null && typeof a.open === "function" && typeof a.commit === "function" && typeof a.range === "function", 'store must be "indexeddb", "memory", { path } or a StorageAdapter');
  return { adapter: a, persistent: true };
}

