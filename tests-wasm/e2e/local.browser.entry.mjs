// Bundled (esbuild, browser conditions) into the page of local.browser.test.mjs: the
// Messaging and Chat APIs in Chromium over the real js-waku light client and the dev node.
import logos, { createMemoryHub } from "logos-chat";
import { all } from "./scenarios.mjs";

async function run() {
  const url = new URLSearchParams(location.search).get("url");
  const a = await logos.connect("local", { url });
  const b = await logos.connect("local", { url });
  const topic = "/my-app/1/lobby/proto";
  let arrived;
  const got = new Promise((resolve) => (arrived = resolve));
  await b.subscribe(topic, arrived); // resolves once the dev node has accepted the filter subscription
  const { messageHash } = await a.send(topic, new Uint8Array([4, 5, 6]));
  const m = await got;
  if (m.messageHash !== messageHash) throw new Error("hash mismatch");
  let tooLarge;
  try {
    await a.send(topic, new Uint8Array(150 * 1024));
  } catch (e) {
    tooLarge = e.code;
  }
  let core;
  try {
    await logos.connect("local", { url, mode: "core" });
  } catch (e) {
    core = e.code;
  }
  await a.close();
  await b.close();
  const local = { createMemoryHub, connect: (_net, o) => logos.connect("local", { ...o, hub: undefined, url }) };
  const chat = await all.twoAccountsChatBothWays(local);
  return { health: a.health, tooLarge, core, chat };
}
run().then((r) => (window.__result = r), (e) => (window.__result = { error: String(e && e.stack || e) }));
