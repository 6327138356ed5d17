// The package in headless Chromium over "local": the real js-waku client (bundled for the
// browser with esbuild) against the dev node on 127.0.0.1, over WebSocket.
import assert from "node:assert/strict";
import { copyFileSync, mkdirSync, readFileSync } from "node:fs";
import { createServer } from "node:http";
import { extname, join, normalize } from "node:path";
import { after, test } from "node:test";
import { build } from "esbuild";
import { chromium } from "playwright-core";
import { startDevNode } from "logos-chat/devnode";

after(() => setTimeout(() => process.exit(process.exitCode ?? 0), 200));

test("messaging and 1:1 chat over the dev node in headless Chromium", { timeout: 180_000 }, async () => {
  const out = join(process.cwd(), "local-bundle");
  mkdirSync(join(out, "wasm"), { recursive: true });
  await build({
    entryPoints: ["local.browser.entry.mjs"],
    bundle: true,
    format: "esm",
    platform: "browser",
    conditions: ["browser"],
    outfile: join(out, "bundle.js"),
    logLevel: "error",
  });
  // entry.browser.js fetches the module next to itself: in a bundle, next to the bundle.
  copyFileSync(join("node_modules", "logos-chat", "wasm", "logos_chat_bg.wasm"), join(out, "wasm", "logos_chat_bg.wasm"));
  const page = `<!doctype html><meta charset="utf-8"><script type="module" src="/bundle.js"></script>`;
  const types = { ".js": "text/javascript", ".wasm": "application/wasm" };
  const server = createServer((req, res) => {
    const path = normalize(new URL(req.url, "http://x").pathname).replace(/^\/+/, "");
    if (path === "" || path === "index.html") return res.writeHead(200, { "content-type": "text/html" }).end(page);
    try {
      const body = readFileSync(join(out, path));
      res.writeHead(200, { "content-type": types[extname(path)] ?? "application/octet-stream" }).end(body);
    } catch {
      res.writeHead(404).end();
    }
  });
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  const dev = await startDevNode({ port: 0 });
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
    args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-quic"],
  });
  try {
    const p = await browser.newPage();
    await p.goto(`http://127.0.0.1:${server.address().port}/?url=${encodeURIComponent(dev.multiaddrs[0])}`);
    await p.waitForFunction(() => window.__result !== undefined, null, { timeout: 120_000 });
    const r = await p.evaluate(() => window.__result);
    assert.ok(!r.error, r.error);
    assert.equal(r.tooLarge, "PAYLOAD_TOO_LARGE");
    assert.equal(r.core, "INVALID_ARGUMENT", 'mode "core" is refused in browsers');
    assert.deepEqual(r.chat.texts, ["hello bob", "hi alice"]);
  } finally {
    await browser.close();
    server.close();
    await dev.stop();
  }
});
