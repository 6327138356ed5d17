// Persistence in headless Chromium with IndexedDB: alice and bob chat, the page reloads,
// identity, conversations and history are back and they keep chatting; the raw database
// holds no plaintext message and no extractable key; a second tab gets STORE_LOCKED.
import assert from "node:assert/strict";
import { createServer } from "node:http";
import { readFile } from "node:fs/promises";
import { extname, join, normalize } from "node:path";
import { test } from "node:test";
import { chromium } from "playwright-core";

const types = { ".html": "text/html", ".js": "text/javascript", ".mjs": "text/javascript", ".wasm": "application/wasm" };

test("IndexedDB persistence across a reload, raw scan, and a second tab", { timeout: 180_000 }, async () => {
  const server = createServer(async (req, res) => {
    const path = normalize(decodeURIComponent(new URL(req.url, "http://x").pathname)).replace(/^\/+/, "");
    try {
      const body = await readFile(join(process.cwd(), path));
      res.writeHead(200, { "content-type": types[extname(path)] ?? "application/octet-stream" }).end(body);
    } catch {
      res.writeHead(404).end();
    }
  });
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  const base = `http://127.0.0.1:${server.address().port}/persist.html`;
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
    args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-quic"],
  });
  try {
    const context = await browser.newContext();
    const page = await context.newPage();
    const result = async (p) => {
      await p.waitForFunction(() => window.__result !== undefined, null, { timeout: 60_000 });
      const r = await p.evaluate(() => window.__result);
      assert.ok(!r.error, r.error);
      return r;
    };
    await page.goto(`${base}?phase=1`);
    const one = await result(page);

    // While the first tab holds the profiles, a second tab cannot open them.
    const tab2 = await context.newPage();
    await tab2.goto(`${base}?phase=second`);
    const second = await result(tab2);
    assert.equal(second.code, "STORE_LOCKED", JSON.stringify(second));
    await tab2.close();

    await page.goto(`${base}?phase=2`); // the reload: the first document (and its locks) goes away
    const two = await result(page);
    assert.equal(two.alice, one.alice, "alice's identity came back");
    assert.equal(two.bob, one.bob, "bob's identity came back");
    assert.deepEqual(two.conversations, [one.conversation]);
    // The list after the reload: unread and the last message's preview, as before it.
    assert.deepEqual(two.listed, [{ unread: 1, lastMessage: "answered before the reload" }]);
    assert.deepEqual(two.before, ["written before the reload", "answered before the reload"]);
    assert.deepEqual(two.after, [...two.before, "written after the reload", "answered after the reload"]);
    assert.equal(two.verifiedSender, one.alice);

    await page.goto(`${base}?phase=scan`);
    const scan = await result(page);
    assert.ok(scan.values > 20, `read ${scan.values} values`);
    assert.deepEqual(scan.found, []);
  } finally {
    await browser.close();
    server.close();
  }
});
