/** Node entry: instantiates the wasm module from the file next to this one. */
import "./polyfill.js";
import { readFile } from "node:fs/promises";
import { setPlatform } from "./platform.js";
import { FileStorage } from "./storage/file.js";
import { glue, setWasmLoader } from "./wasm.js";

setPlatform({
  browser: false,
  fileStorage: (dir) => new FileStorage(dir),
  libp2pTransports: async () => {
    const [{ webSockets }, filters, { tcp }] = await Promise.all([
      import("@libp2p/websockets"),
      import("@libp2p/websockets/filters"),
      import("@libp2p/tcp"),
    ]);
    return [webSockets({ filter: filters.all }), tcp()];
  },
});

setWasmLoader(async () => {
  const bytes = await readFile(new URL("./wasm/logos_chat_bg.wasm", import.meta.url));
  glue.initSync({ module: bytes });
});

export * from "./index.js";
export { default } from "./index.js";
