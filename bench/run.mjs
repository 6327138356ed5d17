#!/usr/bin/env node
// `npm run bench`: measures the SDK natively (criterion), as wasm in Node and as wasm in
// headless Chromium, in one run. Prints a Markdown table per area, writes
// bench/results.json, and with `--compare` prints ratios against bench/baseline.json.
// `--quick` is the CI smoke: small counts, short criterion runs.
import { execFileSync } from "node:child_process";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import { cpus, totalmem } from "node:os";
import { dirname, extname, join, normalize } from "node:path";
import { performance } from "node:perf_hooks";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { apiLoop, coreLoop, devnodeGroupLoop, devnodeLoop, groupLoop, identityLoop, storageLoop } from "./loops.mjs";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const args = process.argv.slice(2);
const quick = args.includes("--quick");
const compare = args.includes("--compare");
const N = quick ? 50 : 1000;
const f = (n, d = 1) => (typeof n === "number" ? n.toFixed(d) : "–");

// Compile the Rust benches first, so that the run's own time (reported, and under 2
// minutes for --quick on the 2-core CI machine) does not count the build.
execFileSync("cargo", ["bench", "--no-run", "--bench", "core", "--bench", "groups"], { cwd: root, stdio: ["ignore", "ignore", "inherit"] });
if (!quick) execFileSync("cargo", ["test", "--profile", "bench", "--lib", "--no-run"], { cwd: root, stdio: ["ignore", "ignore", "inherit"] });
// The group profile compiled to wasm (tests-wasm/bench.rs, release profile as shipped).
execFileSync("cargo", ["build", "--tests", "--release", "--target", "wasm32-unknown-unknown", "--test", "wasm-bench"], { cwd: root, stdio: ["ignore", "ignore", "inherit"] });
const runStart = performance.now();
// Seconds per section, reported with the results (which parts a full run spends its time on).
const sections = {};
let lapAt = runStart;
const lap = (name) => {
  const t = performance.now();
  sections[name] = (t - lapAt) / 1000;
  lapAt = t;
};

// ── package ──
const t0 = performance.now();
const logos = await import(join(root, "pkg", "entry.node.js"));
await logos.connect("memory", { hub: logos.createMemoryHub() });
const instantiateMs = performance.now() - t0;
const glue = await import(join(root, "pkg", "wasm", "logos_chat.js"));
const wasm = readFileSync(join(root, "pkg", "wasm", "logos_chat_bg.wasm"));
const pkg = { wasmRaw: wasm.length, wasmGzip: gzipSync(wasm, { level: 9 }).length, glueRaw: readFileSync(join(root, "pkg", "wasm", "logos_chat.js")).length, instantiateMsNode: instantiateMs };
lap("package");

// ── native (criterion) ──
const crit = quick ? ["--warm-up-time", "0.2", "--measurement-time", "0.5"] : ["--warm-up-time", "1", "--measurement-time", "5"];
execFileSync("cargo", ["bench", "--bench", "core", "--", ...crit], { cwd: root, stdio: ["ignore", "ignore", "inherit"] });
const estimate = (name) => {
  const p = join(root, "target", "criterion", "direct", name, "new", "estimates.json");
  return existsSync(p) ? JSON.parse(readFileSync(p, "utf8")).mean.point_estimate / 1e6 : undefined;
};
const native = { perMessageMs: estimate("send_receive_1KiB"), createAccountMs: estimate("create_account"), startDirectMs: estimate("start_direct") };
native.perSecond = native.perMessageMs ? 1000 / native.perMessageMs : undefined;
lap("1:1 native (criterion)");

// ── groups, native: MLS cost per operation under our profile (benches/groups.rs) ──
const groupsNative = execFileSync("cargo", ["bench", "--bench", "groups", "--", ...(quick ? ["--quick"] : [])], { cwd: root, stdio: ["ignore", "pipe", "inherit"] })
  .toString()
  .split("\n")
  .filter((l) => l.startsWith("{"))
  .map((l) => JSON.parse(l));
lap("groups native");

// ── groups, wasm in Node: the same profile, the shipped release profile ──
const groupsWasm = execFileSync("wasm-pack", ["test", "--node", "--release", "--", "--test", "wasm-bench", "--", "--nocapture", quick ? "groups_quick" : "groups_full"], { cwd: root, stdio: ["ignore", "pipe", "inherit"], maxBuffer: 16 << 20 })
  .toString()
  .split("\n")
  .filter((l) => l.startsWith('{"suite"'))
  .map((l) => JSON.parse(l));
lap("groups wasm in Node");

// ── groups, native: our engine (Client) at 1,000 and 10,000 members in the simulated network ──
// The core's tests in the bench profile (opt-level 3, the dependencies `cargo bench` built, so
// only our crate compiles again, and faster than the test build would run); only a
// sample of joiners runs, see src/core/tests/big_group.rs.
const engineTests = ["core::tests::big_group::exactly_one_transport_publish_per_group_message_at_1000_members", "core::tests::big_group::a_10000_member_group_is_created_and_chats_in_one_publish_per_message"];
const groupsEngine = quick
  ? []
  : execFileSync("cargo", ["test", "--profile", "bench", "--lib", "--", "--include-ignored", "--nocapture", "--test-threads", "1", "--exact", ...engineTests], { cwd: root, stdio: ["ignore", "pipe", "inherit"], maxBuffer: 64 << 20 })
      .toString()
      .split("\n")
      .map((l) => l.match(/\{"engine".*\}/)?.[0])
      .filter(Boolean)
      .map((l) => JSON.parse(l));
lap("groups engine");

// ── reliability under loss: the core on the lossy simulator (virtual clock), 5 seeds each ──
// The chat (1:1 and a 10-member group) and the Reliable Channel (2 and 10 participants):
// delivered share, time from the last send until everything arrived, wire cost per message.
const reliabilityTests = ["core::tests::reliability::bench_reliability_under_loss", "core::tests::reliable_channel::bench_reliable_channel_under_loss"];
const reliability = execFileSync("cargo", ["test", ...(quick ? [] : ["--profile", "bench"]), "--lib", "--", "--include-ignored", "--nocapture", "--test-threads", "1", "--exact", ...reliabilityTests], { cwd: root, stdio: ["ignore", "pipe", "inherit"], maxBuffer: 16 << 20 })
  .toString()
  .split("\n")
  .map((l) => l.match(/\{"reliability".*\}/)?.[0])
  .filter(Boolean)
  .map((l) => JSON.parse(l).reliability);
if (reliability.length !== 5) throw new Error("the reliability bench printed " + reliability.length + " of 5 rows");
lap("reliability");

// ── wasm in Node ──
const node = { core: await coreLoop(glue, N), api: await apiLoop(logos, N) };
lap("1:1 Node");
const { startDevNode } = await import(join(root, "pkg", "devnode", "index.js"));
const delivery = { node: await devnodeLoop(logos, startDevNode, N), relay: await devnodeLoop(logos, startDevNode, N, "core") };
lap("delivery");
// A 201-member group over the dev node: 201 accounts on 4 light nodes in this one process.
delivery.group = await devnodeGroupLoop(logos, startDevNode, quick ? { n: 3, messages: 3, nodes: 2, waitMs: 10_000 } : { n: 201, messages: 10, nodes: 4, waitMs: 60_000 });
lap("group over the dev node");
const groupsNode = [];
for (const n of quick ? [3] : [10, 50, 100]) groupsNode.push(await groupLoop(logos, n, quick ? 5 : 50));
lap("groups API Node");
const identity = await identityLoop(logos, quick ? 3 : 100);
lap("identity Node");
const storageShape = quick ? { conversations: 3, perConversation: 60 } : { conversations: 100, perConversation: 100 };
const storeDir = mkdtempSync(join(tmpdir(), "logos-chat-bench-"));
const nodeStorage = await storageLoop(logos, { ...storageShape, store: { path: storeDir }, name: "bench" });
rmSync(storeDir, { recursive: true, force: true });
lap("storage Node");

// ── wasm in headless Chromium ──
async function chromiumRun() {
  const { chromium } = await import("playwright-core");
  const types = { ".html": "text/html", ".js": "text/javascript", ".mjs": "text/javascript", ".wasm": "application/wasm" };
  const server = createServer((req, res) => {
    const path = normalize(decodeURIComponent(new URL(req.url, "http://x").pathname)).replace(/^\/+/, "");
    if (path.startsWith("..") || !/^(pkg|bench)\//.test(path)) return res.writeHead(404).end();
    try {
      res.writeHead(200, { "content-type": types[extname(path)] ?? "application/octet-stream" }).end(readFileSync(join(root, path)));
    } catch {
      res.writeHead(404).end();
    }
  });
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
    args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-quic"],
  });
  try {
    const page = await browser.newPage();
    await page.goto(`http://127.0.0.1:${server.address().port}/bench/page.html?n=${N}&c=${storageShape.conversations}&m=${storageShape.perConversation}&g=${quick ? "3" : "10,50"}&gm=${quick ? 5 : 50}`);
    await page.waitForFunction(() => window.__result !== undefined, null, { timeout: 600_000 });
    const r = await page.evaluate(() => window.__result);
    if (r.error) throw new Error(r.error);
    // Cold start: a new page load restores the profile the storage loop left in IndexedDB.
    await page.goto(`http://127.0.0.1:${server.address().port}/bench/cold.html?name=${encodeURIComponent(r.profile)}`);
    await page.waitForFunction(() => window.__result !== undefined, null, { timeout: 600_000 });
    const cold = await page.evaluate(() => window.__result);
    if (cold.error) throw new Error(cold.error);
    return { ...r, cold };
  } finally {
    await browser.close();
    server.close();
  }
}
const chrome = await chromiumRun();
lap("Chromium");

// ── report ──
const runSeconds = (performance.now() - runStart) / 1000;
const results = {
  date: new Date().toISOString(),
  quick,
  runSeconds,
  sections,
  machine: { cpus: cpus().length, cpu: cpus()[0]?.model, memGiB: Math.round(totalmem() / 2 ** 30), node: process.version, platform: process.platform },
  package: { ...pkg, instantiateMsChromium: chrome.instantiateMs, coldStartMsChromium: chrome.cold.coldStartMs },
  direct: { native, node, chromium: { core: chrome.core, api: chrome.api } },
  storage: { node: nodeStorage, chromium: chrome.storage },
  delivery,
  reliability,
  identity,
  groups: { native: groupsNative, wasmNode: groupsWasm, engine: groupsEngine, node: groupsNode, chromium: chrome.groups },
};
console.log(`\n### package\n\n| .wasm raw | .wasm gzip | JS glue | instantiate (Node) | instantiate (Chromium) | cold start (Chromium: page load → profile of ${storageShape.conversations} conversations restored) |\n|---|---|---|---|---|---|`);
console.log(`| ${f(pkg.wasmRaw / 1024)} KiB | ${f(pkg.wasmGzip / 1024)} KiB | ${f(pkg.glueRaw / 1024)} KiB | ${f(instantiateMs)} ms | ${f(chrome.instantiateMs)} ms | ${f(chrome.cold.coldStartMs)} ms |`);
console.log(`\n### 1:1 (DirectV1, X-Wing), 1 KiB messages, ${N} per run\n`);
console.log("| where | encrypt+decrypt msgs/s | wasm/native time | create account | startDirect | API round trip msgs/s | API p50 | API p95 |\n|---|---|---|---|---|---|---|---|");
const ratio = (ms) => (native.perMessageMs && ms ? `${f(ms / native.perMessageMs, 2)}×` : "–");
console.log(`| native | ${f(native.perSecond, 0)} | 1.00× | ${f(native.createAccountMs, 2)} ms | ${f(native.startDirectMs)} ms | – | – | – |`);
for (const [where, r] of [["Node wasm", node], ["Chromium wasm", chrome]]) {
  console.log(`| ${where} | ${f(r.core.perSecond, 0)} | ${ratio(r.core.perMessageMs)} | ${f(r.core.createAccountMs, 2)} ms | ${f(r.core.startDirectMs)} ms | ${f(r.api.perSecond, 0)} | ${f(r.api.p50Ms, 2)} ms | ${f(r.api.p95Ms, 2)} ms |`);
}
console.log(`\n### delivery over the local dev node, ${N} messages of 1 KiB, Node, to a js-waku light client (filter)\n`);
console.log("| sender | messages/s (one at a time) | send → receive p50 | p95 |\n|---|---|---|---|");
for (const [who, r] of [["edge (lightpush)", delivery.node], ["core (relay)", delivery.relay]]) {
  console.log(`| ${who} | ${f(r.perSecond, 0)} | ${f(r.p50Ms, 2)} ms | ${f(r.p95Ms, 2)} ms |`);
}
{
  const g = delivery.group;
  console.log(`\n### a ${g.members}-member group over the local dev node (${g.messages} messages of 1 KiB from one member; all members in one Node process)\n`);
  console.log("| delivered / expected | ratio | all joined | send → receive p50 | p95 | members missing each message (in send order) |\n|---|---|---|---|---|---|");
  console.log(`| ${g.delivered} / ${g.expected} | ${f(g.ratio, 3)} | ${f(g.joinedMs / 1000, 1)} s | ${f(g.p50Ms)} ms | ${f(g.p95Ms)} ms | ${g.missedPerMessage.join(" ")} |`);
}
console.log(`\n### reliability under 30% loss, reordering and 10% duplication (the core on the lossy simulator, virtual clock, ${reliability[0]?.seeds} seeds each)\n`);
console.log("| what | members | messages | delivered | settled after the last send | publishes per message | bytes on the wire per message | payload bytes |\n|---|---|---|---|---|---|---|---|");
for (const r of reliability) console.log(`| ${r.kind} | ${r.members} | ${r.messages} | ${f(r.deliveredRatio * 100, 1)}% | ${f(r.settleMs / 1000, 1)} s | ${f(r.publishesPerMessage, 2)} | ${r.bytesPerMessage} | ${r.payloadBytesPerMessage ?? "–"} |`);
const kib = (b) => `${f(b / 1024)} KiB${b > 150 * 1024 ? " (over 150 KiB)" : ""}`;
console.log(`\n### groups, native: MLS cost per operation (the founder creates with N − 1 in one commit; add-50 is a steward's commit of 50 more; one of them joins, one member is removed; a joiner's Welcome is its own entry, the tree travels once per commit)\n`);
console.log("| suite | N | create | add-50 | join | remove | send 1 KiB | receive | Welcome (per joiner) | tree (once) | add commit | remove commit |\n|---|---|---|---|---|---|---|---|---|---|---|---|");
for (const g of groupsNative) {
  console.log(`| ${g.suite} | ${g.n} | ${f(g.createMs)} ms | ${f(g.add50Ms)} ms | ${f(g.joinMs)} ms | ${f(g.removeMs)} ms | ${f(g.sendMs, 3)} ms | ${f(g.receiveMs, 3)} ms | ${kib(g.welcomeBytes)} | ${kib(g.treeBytes)} | ${kib(g.addCommitBytes)} | ${kib(g.removeCommitBytes)} |`);
}
{
  const base = new Map(groupsNative.map((g) => [`${g.suite}/${g.n}`, g]));
  const x = (g, k) => {
    const b = base.get(`${g.suite}/${g.n}`)?.[k];
    return b && g[k] ? ` (${f(g[k] / b)}×)` : "";
  };
  console.log(`\n### groups, wasm in Node: the same profile compiled to wasm32 (release profile, as the package ships; in brackets: wasm time / native time)\n`);
  console.log("| suite | N | create | add-50 | join | remove | send 1 KiB | receive |\n|---|---|---|---|---|---|---|---|");
  for (const g of groupsWasm) {
    console.log(`| ${g.suite} | ${g.n} | ${f(g.createMs)} ms${x(g, "createMs")} | ${f(g.add50Ms)} ms${x(g, "add50Ms")} | ${f(g.joinMs)} ms${x(g, "joinMs")} | ${f(g.removeMs)} ms${x(g, "removeMs")} | ${f(g.sendMs, 3)} ms${x(g, "sendMs")} | ${f(g.receiveMs, 3)} ms${x(g, "receiveMs")} |`);
  }
  if (!groupsWasm.length) throw new Error("the wasm group bench printed nothing");
}
if (groupsEngine.length) {
  console.log(`\n### groups, native: the whole engine (X-Wing, de-MLS, simulated network; the founder creates, a sample of joiners runs)\n`);
  console.log("| N | createGroup (founder) | bytes published by the creation | largest Welcome | joiners run | join each (Welcome → tree → joined) | send | publishes per message (P1) |\n|---|---|---|---|---|---|---|---|");
  for (const g of groupsEngine) console.log(`| ${g.n} | ${f(g.createMs / 1000, 2)} s | ${f(g.createdBytes / 2 ** 20, 1)} MiB | ${kib(g.welcomeBytes)} | ${g.onlineJoiners} | ${f(g.joinEachMs)} ms | ${f(g.sendMs, 2)} ms | ${g.publishesPerMessage} |`);
}
console.log(`\n### groups through the API, wasm, memory hub (X-Wing, de-MLS; every member in the one process)\n`);
console.log("| where | N | createGroup | all joined | message to all p50 | p95 | publishes per message (P1) |\n|---|---|---|---|---|---|---|");
for (const [where, list] of [["Node", groupsNode], ["Chromium", chrome.groups]]) {
  for (const g of list) console.log(`| ${where} | ${g.n} | ${f(g.createMs)} ms | ${f(g.joinedMs)} ms | ${f(g.p50Ms, 2)} ms | ${f(g.p95Ms, 2)} ms | ${g.publishesPerMessage} |`);
}
if ([...groupsEngine, ...groupsNode, ...chrome.groups].some((g) => g.publishesPerMessage !== 1)) throw new Error("P1: a group message took more than one publish");
console.log(`\n### identity: link a second device to an account in ${identity.conversations} direct chats, then remove it (Node wasm, memory hub)\n`);
console.log("| chats | link: code → granted | → in every chat | → archived history in | removeInstallation call | → removed device told |\n|---|---|---|---|---|---|");
console.log(`| ${identity.conversations} | ${f(identity.grantedMs)} ms | ${f(identity.joinedMs)} ms | ${f(identity.linkMs)} ms | ${f(identity.removeCallMs)} ms | ${f(identity.removeMs)} ms |`);
console.log(`\n### storage: ${nodeStorage.conversations} conversations, ${nodeStorage.messages} messages (encrypted at rest)\n`);
console.log("| where | per-message write (send + commit) | open + restore | page 50 (newest) | page 50 (older) |\n|---|---|---|---|---|");
for (const [where, r] of [["Node, file store", nodeStorage], ["Chromium, IndexedDB", chrome.storage]]) {
  console.log(`| ${where} | ${f(r.writeMs, 2)} ms | ${f(r.openMs)} ms | ${f(r.pageMs, 2)} ms | ${f(r.olderPageMs, 2)} ms |`);
}
writeFileSync(join(root, "bench", "results.json"), JSON.stringify(results, null, 2) + "\n");
console.log(`\nthe run took ${f(runSeconds)} s after the build${quick ? " (--quick: the CI smoke, meant to stay under 120 s)" : ""}`);
console.log(`(${Object.entries(sections).map(([k, v]) => `${k} ${f(v, 0)} s`).join(", ")})`);
console.log("written: bench/results.json");
// js-waku leaves timers behind after stop(): end here.
if (!compare) process.exit(0);

if (compare) {
  const base = JSON.parse(readFileSync(join(root, "bench", "baseline.json"), "utf8"));
  const flat = (o, p = "") => Object.entries(o).flatMap(([k, v]) => (v && typeof v === "object" ? flat(v, `${p}${k}.`) : typeof v === "number" ? [[`${p}${k}`, v]] : []));
  const b = new Map(flat({ package: base.package, direct: base.direct, storage: base.storage ?? {}, delivery: base.delivery ?? {} }));
  console.log(`\n### against bench/baseline.json (${base.date ?? "?"}; ratio = now / baseline; for msgs/s higher is better, for ms and bytes lower is better)\n\n| figure | baseline | now | ratio |\n|---|---|---|---|`);
  for (const [k, v] of flat({ package: results.package, direct: results.direct, storage: results.storage, delivery: results.delivery })) {
    if (b.has(k)) console.log(`| ${k} | ${f(b.get(k), 2)} | ${f(v, 2)} | ${f(v / b.get(k), 2)} |`);
  }
}
process.exit(0);
