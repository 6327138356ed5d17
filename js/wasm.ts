/**
 * Loads the wasm module once. Each entry point (Node, browser) installs the loader
 * that fits its platform; every API call awaits `ensureWasm()` before it touches the core.
 */
import * as glue from "./wasm/logos_chat.js";

export { glue };

let loader: (() => Promise<void>) | undefined;
let ready: Promise<void> | undefined;

/** Installed by the entry point. */
export function setWasmLoader(load: () => Promise<void>): void {
  loader = load;
}

/** Resolves once the module is instantiated (the first call instantiates it). */
export function ensureWasm(): Promise<void> {
  if (!ready) {
    if (!loader) return Promise.reject(new Error("logos-chat: no wasm loader; import the package entry point"));
    ready = loader().catch((e) => {
      ready = undefined;
      throw e;
    });
  }
  return ready;
}
