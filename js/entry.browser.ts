/** Browser and bundler entry: fetches the wasm module next to this file. */
import { setPlatform } from "./platform.js";
import { glue, setWasmLoader } from "./wasm.js";

setPlatform({ browser: typeof indexedDB !== "undefined" });

setWasmLoader(async () => {
  await glue.default({ module_or_path: new URL("./wasm/logos_chat_bg.wasm", import.meta.url) });
});

export * from "./index.js";
export { default } from "./index.js";
