/** Node entry: instantiates the wasm module from the file next to this one. */
import { readFile } from "node:fs/promises";
import { setPlatform } from "./platform.js";
import { FileStorage } from "./storage/file.js";
import { glue, setWasmLoader } from "./wasm.js";

setPlatform({ browser: false, fileStorage: (dir) => new FileStorage(dir) });

setWasmLoader(async () => {
  const bytes = await readFile(new URL("./wasm/logos_chat_bg.wasm", import.meta.url));
  glue.initSync({ module: bytes });
});

export * from "./index.js";
export { default } from "./index.js";
