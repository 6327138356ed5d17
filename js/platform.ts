/** What the entry point (Node or browser) provides to the shared code. */
import type { StorageAdapter } from "./types.js";

export interface Platform {
  /** `store: { path }`: a directory store (Node). */
  fileStorage?: (dir: string) => StorageAdapter;
  /** True in browsers and workers: the default store is IndexedDB. */
  browser: boolean;
  /** libp2p transports for the light node (Node: WebSocket and TCP). */
  libp2pTransports?: () => Promise<unknown[]>;
}

let platform: Platform = { browser: typeof indexedDB !== "undefined" };

export function setPlatform(p: Platform): void {
  platform = p;
}

export function getPlatform(): Platform {
  return platform;
}
