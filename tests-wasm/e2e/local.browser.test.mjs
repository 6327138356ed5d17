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

/** Bundles `entry` for the browser into `dir` (with the .wasm next to it) and serves it on loopback. */
async function bundleAndServe(entry, dir) {
  const out = join(process.cwd(), dir);
  mkdirSync(join(out, "wasm"), { recursive: true });
  await build({ entryPoints: [entry], bundle: true, format: "esm", platform: "browser", conditions: ["browser"], outfile: join(out, "bundle.js"), logLevel: "error" });
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
  return server;
}

const launch = () =>
  chromium.launch({
    executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
    args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-quic"],
  });

test("messaging and 1:1 chat over the dev node in headless Chromium", { timeout: 180_000 }, async () => {
  const server = await bundleAndServe("local.browser.entry.mjs", "local-bundle");
  const dev = await startDevNode({ port: 0 });
  const browser = await launch();
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

test("one account on two Chromium pages over the dev node: link, chat from both, remove", { timeout: 240_000 }, async () => {
  const server = await bundleAndServe("link.browser.entry.mjs", "link-bundle");
  const dev = await startDevNode({ port: 0 });
  const browser = await launch();
  try {
    const at = `http://127.0.0.1:${server.address().port}/?url=${encodeURIComponent(dev.multiaddrs[0])}`;
    const [laptop, phone] = [await browser.newPage(), await browser.newPage()];
    for (const p of [laptop, phone]) {
      await p.goto(at);
      await p.waitForFunction(() => window.ready === true, null, { timeout: 60_000 });
    }
    // The laptop page holds alice (IndexedDB) and bob, and a direct chat between them.
    const { code, dmId, laptopId } = await laptop.evaluate(async () => {
      const [n1, n2] = [await window.logos.connect("local", { url: window.url }), await window.logos.connect("local", { url: window.url })];
      window.alice = await n1.chat({ name: "alice-laptop" });
      window.bob = await n2.chat({ name: "bob" });
      window.dm = await window.alice.startDirect(window.bob.accountId);
      return { code: await window.alice.createLink(), dmId: window.dm.id, laptopId: window.alice.installationId };
    });
    // The phone page links with the code and joins the chat.
    const phoneInfo = await phone.evaluate(async ({ code, dmId }) => {
      const n = await window.logos.connect("local", { url: window.url });
      window.alice = await n.chat({ name: "alice-phone", link: code });
      const end = Date.now() + 60_000;
      while (!(await window.alice.conversations()).some((c) => c.id === dmId)) {
        if (Date.now() > end) throw new Error("the phone never joined the chat");
        await new Promise((r) => setTimeout(r, 50));
      }
      return { accountId: window.alice.accountId, installationId: window.alice.installationId, installations: (await window.alice.installations()).length };
    }, { code, dmId });
    assert.equal(phoneInfo.installations, 2);
    assert.notEqual(phoneInfo.installationId, laptopId);
    // Bob writes: both pages read it.
    const phoneGets = phone.evaluate(() => window.waitFor(window.alice, "message", (m) => m.text === "hi both").then((m) => ({ text: m.text, from: m.sender.accountId })));
    const laptopGot = await laptop.evaluate(async () => {
      const got = window.waitFor(window.alice, "message", (m) => m.text === "hi both");
      const d = await window.bob.conversation(window.dm.id);
      await d.send("hi both");
      const m = await got;
      return { text: m.text, from: m.sender.accountId, bob: window.bob.accountId, alice: window.alice.accountId };
    });
    const phoneGot = await phoneGets;
    assert.equal(laptopGot.text, "hi both");
    assert.deepEqual(phoneGot, { text: "hi both", from: laptopGot.bob });
    assert.equal(phoneInfo.accountId, laptopGot.alice, "one account on both pages");
    // The phone writes: bob reads it as alice's, the laptop as its own.
    const seenOnLaptop = laptop.evaluate(async () => {
      const bobGets = window.waitFor(window.bob, "message", (m) => m.text === "from the phone");
      const own = window.waitFor(window.alice, "message", (m) => m.text === "from the phone");
      const [b, o] = await Promise.all([bobGets, own]);
      return { bobSees: b.sender.accountId, verified: b.sender.verified, outgoing: o.outgoing };
    });
    await phone.evaluate(async (dmId) => (await window.alice.conversation(dmId)).send("from the phone"), dmId);
    const seen = await seenOnLaptop;
    assert.deepEqual(seen, { bobSees: laptopGot.alice, verified: true, outgoing: true });
    // The laptop removes the phone, which is told.
    const told = phone.evaluate(() => window.waitFor(window.alice, "error", (e) => e.code === "INSTALLATION_REMOVED").then((e) => e.code));
    await laptop.evaluate((id) => window.alice.removeInstallation(id), phoneInfo.installationId);
    assert.equal(await told, "INSTALLATION_REMOVED");
  } finally {
    await browser.close();
    server.close();
    await dev.stop();
  }
});
