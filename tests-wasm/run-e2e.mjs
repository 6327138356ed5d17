#!/usr/bin/env node
// End-to-end: pack the built pkg/, install it into a scratch project with npm (as a
// user would), then run the scenarios in Node and in headless Chromium.
import { execFileSync } from "node:child_process";
import { cpSync, existsSync, mkdirSync, readdirSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, "..");
const scratch = join(here, ".scratch");
rmSync(scratch, { recursive: true, force: true });
mkdirSync(scratch, { recursive: true });
const quiet = { stdio: ["ignore", "pipe", "inherit"] };

execFileSync("npm", ["pack", join(root, "pkg"), "--pack-destination", scratch, "--silent"], { cwd: scratch, ...quiet });
const tarball = readdirSync(scratch).find((f) => f.endsWith(".tgz"));
writeFileSync(join(scratch, "package.json"), JSON.stringify({ name: "scratch", private: true, type: "module" }, null, 2));
execFileSync("npm", ["install", "--no-audit", "--no-fund", "--prefer-offline", `./${tarball}`], { cwd: scratch, ...quiet });
for (const f of ["scenarios.mjs", "node.test.mjs", "browser.test.mjs", "index.html", "fs-transport.mjs", "persist-child.mjs", "persist.node.test.mjs", "persist.html", "persist.browser.test.mjs", "local.node.test.mjs", "local.browser.test.mjs", "local.browser.entry.mjs", "link.browser.entry.mjs", "reliability.node.test.mjs", "reliable-channel.node.test.mjs", "lossy.mjs", "memory-child.mjs", "chat-store.mjs"]) cpSync(join(here, "e2e", f), join(scratch, f));
// The browser runners need playwright-core and esbuild: reuse the workspace's copies.
for (const dep of ["playwright-core", "esbuild", "@esbuild"]) symlinkSync(join(root, "node_modules", dep), join(scratch, "node_modules", dep), "dir");
// The Reliable Channel interop test drives @waku/sds's own MessageChannel.
mkdirSync(join(scratch, "node_modules", "@waku"), { recursive: true });
if (!existsSync(join(scratch, "node_modules", "@waku", "sds"))) symlinkSync(join(root, "node_modules", "@waku", "sds"), join(scratch, "node_modules", "@waku", "sds"), "dir");

const only = process.argv.slice(2);
const suites = only.length ? only : ["node", "persist.node", "reliability.node", "reliable-channel.node", "local.node", "browser", "persist.browser", "local.browser"];
for (const s of suites) {
  console.log(`[e2e] ${s}`);
  execFileSync(process.execPath, ["--test", "--test-reporter=spec", `${s}.test.mjs`], { cwd: scratch, stdio: "inherit", timeout: 600_000 });
}
