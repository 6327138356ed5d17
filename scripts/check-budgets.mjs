#!/usr/bin/env node
// Budgets are code: fails when the built .wasm passes its size limits, or when the wasm32
// build gains a duplicate crate version that budgets.json does not justify.
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const budgets = JSON.parse(readFileSync(join(root, "budgets.json"), "utf8"));
const wasm = readFileSync(join(root, "pkg", "wasm", "logos_chat_bg.wasm"));
const raw = wasm.length;
const gzip = gzipSync(wasm, { level: 9 }).length;
const problems = [];
if (raw > budgets.wasm.rawMaxBytes) problems.push(`.wasm is ${raw} B raw, over the budget of ${budgets.wasm.rawMaxBytes} B`);
if (gzip > budgets.wasm.gzipMaxBytes) problems.push(`.wasm is ${gzip} B gzip, over the budget of ${budgets.wasm.gzipMaxBytes} B`);
console.log(`[budgets] .wasm ${raw} B raw (budget ${budgets.wasm.rawMaxBytes}), ${gzip} B gzip (budget ${budgets.wasm.gzipMaxBytes})`);

const tree = execFileSync("cargo", ["tree", "-d", "--target", "wasm32-unknown-unknown", "-e", "normal", "--depth", "0"], { cwd: root, encoding: "utf8" });
const dups = [...new Set(tree.split("\n").map((l) => /^([A-Za-z0-9_-]+) v/.exec(l)?.[1]).filter(Boolean))].sort();
const allowed = budgets.duplicateCrates.allowed;
for (const d of dups) {
  console.log(`[budgets] duplicate crate ${d}: ${allowed[d] ?? "NOT JUSTIFIED"}`);
  if (!allowed[d]) problems.push(`duplicate crate ${d} in the wasm32 build is not justified in budgets.json`);
}
if (problems.length) {
  for (const p of problems) console.error(`[budgets] FAIL: ${p}`);
  process.exit(1);
}
console.log("[budgets] ok");
