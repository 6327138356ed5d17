// Runs the scenarios in a real headless Chromium (Playwright, system Chromium),
// importing the installed package from a page served on 127.0.0.1.
import { createServer } from "node:http";
import { readFile } from "node:fs/promises";
import { extname, join, normalize } from "node:path";
import { test } from "node:test";
import { chromium } from "playwright-core";
import { chatStore } from "./chat-store.mjs";

const root = process.cwd();
const types = { ".html": "text/html", ".js": "text/javascript", ".mjs": "text/javascript", ".wasm": "application/wasm", ".json": "application/json" };

function serve() {
  // The page's origin also serves a chat-store-compatible registry (`/v0/…`).
  const store = chatStore();
  const server = createServer(async (req, res) => {
    if (await store.handle(req, res)) return;
    const path = normalize(decodeURIComponent(new URL(req.url, "http://x").pathname)).replace(/^\/+/, "");
    if (path.startsWith("..")) return res.writeHead(403).end();
    try {
      const body = await readFile(join(root, path === "" ? "index.html" : path));
      res.writeHead(200, { "content-type": types[extname(path)] ?? "application/octet-stream" }).end(body);
    } catch {
      res.writeHead(404).end();
    }
  });
  return new Promise((resolve) => server.listen(0, "127.0.0.1", () => resolve(server)));
}

test("scenarios pass in headless Chromium", { timeout: 120_000 }, async () => {
  const server = await serve();
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
    args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-quic"],
  });
  try {
    const page = await browser.newPage();
    const errors = [];
    page.on("pageerror", (e) => errors.push(String(e)));
    await page.goto(`http://127.0.0.1:${server.address().port}/index.html`);
    await page.waitForFunction(() => window.__done === true, null, { timeout: 90_000 });
    const results = await page.evaluate(() => window.__results);
    const failed = Object.entries(results).filter(([, r]) => !r.ok);
    if (failed.length || errors.length) throw new Error(JSON.stringify({ failed, errors }, null, 2));
    console.log(`chromium: ${Object.keys(results).length} scenarios passed`);
  } finally {
    await browser.close();
    server.close();
  }
});
