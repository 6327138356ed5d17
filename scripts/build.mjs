#!/usr/bin/env node
// Builds the publishable npm package into pkg/:
//   cargo (release, wasm32) via wasm-pack --target web → wasm-opt -Oz (npm binaryen)
//   → tsc (js/ → pkg/) → glue and .wasm into pkg/wasm/ → package.json from pkg-template/.
// Prints the raw and gzipped .wasm size. `--if-stale` skips the build when pkg/ is
// newer than every source file.
import { execFileSync } from "node:child_process";
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const pkg = join(root, "pkg");
const wasmOut = join(root, "target", "wasm-pkg");
const run = (cmd, args, opts = {}) => execFileSync(cmd, args, { cwd: root, stdio: "inherit", ...opts });

function newest(path) {
  if (!existsSync(path)) return 0;
  const st = statSync(path);
  if (!st.isDirectory()) return st.mtimeMs;
  let m = 0;
  for (const e of readdirSync(path)) if (e !== "wasm" && e !== "node_modules") m = Math.max(m, newest(join(path, e)));
  return m;
}

if (process.argv.includes("--if-stale")) {
  const built = existsSync(join(pkg, "wasm", "logos_chat_bg.wasm")) ? statSync(join(pkg, "package.json")).mtimeMs : 0;
  const sources = Math.max(...["src", "js", "pkg-template", "Cargo.toml", "Cargo.lock", "scripts/build.mjs"].map((p) => newest(join(root, p))));
  if (built > sources) {
    console.log("[build] pkg/ is up to date");
    process.exit(0);
  }
}

// 1. Rust → wasm + wasm-bindgen glue (ESM, web target: one glue for browsers,
//    bundlers and Node, which instantiates it from the file).
run("wasm-pack", ["build", "--release", "--target", "web", "--out-dir", wasmOut, "--out-name", "logos_chat", "--no-pack"]);

// 2. Size optimisation with npm's binaryen (never Debian's 108: its output does not load).
const wasmFile = join(wasmOut, "logos_chat_bg.wasm");
const before = statSync(wasmFile).size;
run(join(root, "node_modules", ".bin", "wasm-opt"), ["-Oz", "--enable-bulk-memory", "--enable-nontrapping-float-to-int", "--enable-sign-ext", "--enable-mutable-globals", "--enable-reference-types", "--enable-multivalue", wasmFile, "-o", wasmFile]);

// 3. TypeScript → pkg/ (the glue's .d.ts types the wrapper).
rmSync(pkg, { recursive: true, force: true });
rmSync(join(root, "js", "wasm"), { recursive: true, force: true });
mkdirSync(join(root, "js", "wasm"), { recursive: true });
for (const f of ["logos_chat.js", "logos_chat.d.ts"]) cpSync(join(wasmOut, f), join(root, "js", "wasm", f));
run(join(root, "node_modules", ".bin", "tsc"), ["-p", "tsconfig.json"]);

// 4. The glue and the module next to the compiled wrapper.
mkdirSync(join(pkg, "wasm"), { recursive: true });
for (const f of ["logos_chat.js", "logos_chat.d.ts", "logos_chat_bg.wasm", "logos_chat_bg.wasm.d.ts"]) {
  if (existsSync(join(wasmOut, f))) cpSync(join(wasmOut, f), join(pkg, "wasm", f));
}

// 5. package.json and README from the template.
const template = JSON.parse(readFileSync(join(root, "pkg-template", "package.json"), "utf8"));
const crateVersion = /^version = "([^"]+)"/m.exec(readFileSync(join(root, "Cargo.toml"), "utf8"))?.[1];
template.version = crateVersion ?? template.version;
writeFileSync(join(pkg, "package.json"), JSON.stringify(template, null, 2) + "\n");
cpSync(join(root, "pkg-template", "README.md"), join(pkg, "README.md"));

const raw = statSync(join(pkg, "wasm", "logos_chat_bg.wasm")).size;
const gz = gzipSync(readFileSync(join(pkg, "wasm", "logos_chat_bg.wasm")), { level: 9 }).length;
const kb = (n) => `${(n / 1024).toFixed(1)} KiB`;
console.log(`[build] logos_chat_bg.wasm: ${kb(raw)} raw (${kb(before)} before wasm-opt), ${kb(gz)} gzip`);
writeFileSync(join(root, "target", "wasm-size.json"), JSON.stringify({ raw, gzip: gz, beforeWasmOpt: before }) + "\n");
