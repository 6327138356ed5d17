#!/usr/bin/env node
// `npm run bench`: measures the built package in Node (wasm). Prints Markdown tables and
// writes bench/results.json. The full harness (native criterion, Chromium, groups, the dev
// node, storage) grows with each capability; `--quick` runs a smoke-sized pass.
import { readFileSync, writeFileSync } from "node:fs";
import { cpus, totalmem } from "node:os";
import { dirname, join } from "node:path";
import { performance } from "node:perf_hooks";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const quick = process.argv.includes("--quick");
const N = quick ? 50 : 1000;

const t0 = performance.now();
const logos = await import(join(root, "pkg", "entry.node.js"));
const hub = logos.createMemoryHub();
const aliceNode = await logos.connect("memory", { hub });
const instantiateMs = performance.now() - t0;

const wasm = readFileSync(join(root, "pkg", "wasm", "logos_chat_bg.wasm"));
const glue = readFileSync(join(root, "pkg", "wasm", "logos_chat.js"));
const pkgTable = { wasmRaw: wasm.length, wasmGzip: gzipSync(wasm, { level: 9 }).length, glueRaw: glue.length, instantiateMs };

const tAccount = performance.now();
const alice = await aliceNode.chat();
const bob = await (await logos.connect("memory", { hub })).chat();
const accountMs = (performance.now() - tAccount) / 2;
const tStart = performance.now();
const dm = await alice.startDirect(bob.accountId);
const startDirectMs = performance.now() - tStart;

const latencies = [];
const payload = "x".repeat(1024);
let resolveNext;
bob.on("message", () => resolveNext?.());
// Warm-up: the Welcome is processed and the first message arrives.
await new Promise((r) => ((resolveNext = r), dm.send("warm-up")));
const tAll = performance.now();
for (let i = 0; i < N; i++) {
  const t = performance.now();
  await new Promise((r) => ((resolveNext = r), dm.send(payload)));
  latencies.push(performance.now() - t);
}
const totalMs = performance.now() - tAll;
latencies.sort((a, b) => a - b);
const pct = (p) => latencies[Math.min(latencies.length - 1, Math.floor((p / 100) * latencies.length))];
const direct = { messages: N, bytes: 1024, perSecond: (N / totalMs) * 1000, p50Ms: pct(50), p95Ms: pct(95), accountMs, startDirectMs };
await aliceNode.close();

const f = (n, d = 1) => n.toFixed(d);
console.log(`\n### package (Node ${process.version})\n`);
console.log("| .wasm raw | .wasm gzip | JS glue | instantiate + connect |\n|---|---|---|---|");
console.log(`| ${f(pkgTable.wasmRaw / 1024)} KiB | ${f(pkgTable.wasmGzip / 1024)} KiB | ${f(pkgTable.glueRaw / 1024)} KiB | ${f(instantiateMs)} ms |`);
console.log(`\n### 1:1 over the memory hub, wasm in Node (${N} messages of 1 KiB, send → decrypted at the peer)\n`);
console.log("| messages/s | p50 | p95 | create account | startDirect |\n|---|---|---|---|---|");
console.log(`| ${f(direct.perSecond, 0)} | ${f(direct.p50Ms, 2)} ms | ${f(direct.p95Ms, 2)} ms | ${f(accountMs)} ms | ${f(startDirectMs)} ms |`);

const machine = { cpus: cpus().length, cpu: cpus()[0]?.model, memGiB: Math.round(totalmem() / 2 ** 30), node: process.version, platform: process.platform };
writeFileSync(join(root, "bench", "results.json"), JSON.stringify({ date: new Date().toISOString(), quick, machine, package: pkgTable, direct }, null, 2) + "\n");
console.log("\nwritten: bench/results.json");
