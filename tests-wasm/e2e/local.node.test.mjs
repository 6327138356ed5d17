// The Messaging and Chat APIs over "local": the real js-waku light client (@waku/sdk)
// against the package's own dev node on 127.0.0.1, in Node.
import assert from "node:assert/strict";
import { after, test } from "node:test";
import { connect } from "logos-chat";
import { startDevNode } from "logos-chat/devnode";
import { all, until } from "./scenarios.mjs";

/**
 * Waits for `pred`, calling `send` now and again every `everyMs` while it does not hold:
 * for a path that comes up in its own time (a relay mesh forming, a filter subscription
 * renewed after a restart) with no signal but a message that gets through. The interval
 * paces the re-sends; the wait ends as soon as one arrives.
 */
const sendUntil = async (send, pred, everyMs, ms, what) => {
  let last = 0;
  await until(async () => {
    if (await pred()) return true;
    if (Date.now() - last >= everyMs) {
      last = Date.now();
      await send();
    }
    return false;
  }, ms, what);
};
const topic = "/my-app/1/lobby/proto";

// js-waku 0.0.36 leaves timers running after `stop()` (its connection limiter and health
// checks), which keep a test process alive: end it once every test has reported.
after(() => setTimeout(() => process.exit(process.exitCode ?? 0), 200));

test("send → subscribe, the size limit, and store recovery after a subscriber's disconnect", { timeout: 120_000 }, async () => {
  const dev = await startDevNode({ port: 0 });
  const url = dev.multiaddrs[0];
  assert.match(url, /^\/ip4\/127\.0\.0\.1\/tcp\/\d+\/ws\/p2p\//, "the WebSocket address comes first");
  const a = await connect("local", { url });
  const b = await connect("local", { url });
  try {
    assert.equal(a.network, "local");
    assert.notEqual(a.health, "disconnected");
    const got = [];
    // Resolves once the dev node has accepted the filter subscription.
    await b.subscribe(topic, (m) => got.push(m));
    const { messageHash } = await a.send(topic, new Uint8Array([1, 2, 3]));
    await until(() => got.length === 1, 10_000, "delivery");
    assert.equal(got[0].messageHash, messageHash, "the hash the sender got is the one delivered");
    assert.deepEqual([...got[0].payload], [1, 2, 3]);

    const before = dev.storedCount();
    await assert.rejects(a.send(topic, new Uint8Array(150 * 1024)), (e) => e.code === "PAYLOAD_TOO_LARGE");
    // Nothing was sent: a message sent after the refused one is stored and delivered, and
    // is the only one that was.
    const next = await a.send(topic, new Uint8Array([4]));
    await until(() => got.length >= 2, 10_000, "the message sent after the refused one");
    assert.equal(dev.storedCount(), before + 1, "nothing was sent: only the next message was stored");
    assert.deepEqual(got.map((m) => m.payload.length), [3, 1], "and only it was delivered");
    assert.equal(got[1].messageHash, next.messageHash);

    // The subscriber's connection drops; a message goes out meanwhile; when it is back
    // the node reads the store for what it missed.
    const healths = [];
    b.on("health", (h) => healths.push(h));
    assert.equal(await dev.dropSubscribers(topic), 1);
    // A health event, not the value now: a quick reconnect can end the blip between polls.
    await until(() => healths.includes("disconnected") || b.health === "disconnected", 20_000, "b to notice");
    await a.send(topic, new TextEncoder().encode("while you were away"));
    await until(() => got.some((m) => new TextDecoder().decode(m.payload) === "while you were away"), 30_000, "recovery");
    assert.ok(healths.includes("disconnected") && healths.at(-1) !== "disconnected", `health went ${healths}`);
    assert.equal(new Set(got.map((m) => m.messageHash)).size, got.length, "each message once");
  } finally {
    await a.close();
    await b.close();
    await dev.stop();
  }
});

test("the dev node restarts mid-stream: health goes disconnected → connected and sending resumes", { timeout: 120_000 }, async () => {
  let dev = await startDevNode({ port: 0 });
  const url = dev.multiaddrs[0];
  const port = Number(/tcp\/(\d+)\/ws/.exec(url)[1]);
  const a = await connect("local", { url });
  const b = await connect("local", { url });
  try {
    const got = [];
    // Resolves once the dev node has accepted the filter subscription.
    await b.subscribe(topic, (m) => got.push(new TextDecoder().decode(m.payload)));
    await a.send(topic, new TextEncoder().encode("before the restart"));
    await until(() => got.includes("before the restart"), 10_000, "first delivery");
    const seen = [];
    a.on("health", (h) => seen.push(h));
    await dev.stop();
    await until(() => a.health === "disconnected", 15_000, "a to see the node go");
    dev = await startDevNode({ port });
    await until(() => a.health !== "disconnected" && b.health !== "disconnected", 30_000, "reconnect");
    assert.deepEqual([seen[0], seen.at(-1) === "disconnected"], ["disconnected", false], `health went ${seen}`);
    // No app code: the same nodes send and receive again (js-waku re-subscribes the filter,
    // in its own time and without telling: sent again every 500 ms until one gets through).
    const again = () => a.send(topic, new TextEncoder().encode("after the restart")).catch(() => undefined);
    await sendUntil(again, () => got.includes("after the restart"), 500, 40_000, "delivery after the restart");
  } finally {
    await a.close();
    await b.close();
    await dev.stop();
  }
});

test("the walking skeleton's 1:1 chat passes unchanged over local", { timeout: 120_000 }, async () => {
  const dev = await startDevNode({ port: 0 });
  const url = dev.multiaddrs[0];
  try {
    // The same scenario as over memory, with "memory" swapped for a local connection.
    const local = { createMemoryHub: () => ({}), connect: (_net, o) => connect("local", { ...o, hub: undefined, url }) };
    await all.twoAccountsChatBothWays(local);
  } finally {
    await dev.stop();
  }
});

test("presets carry the cluster, shards, size limit and entry nodes of PROTOCOL.md §5.1", async () => {
  const { TESTNET, DEVNET, LOCAL } = await import(new URL("./node_modules/logos-chat/networks.js", import.meta.url));
  assert.deepEqual([TESTNET.clusterId, TESTNET.shards, TESTNET.maxMessageSize], [2, 8, 153600]);
  assert.deepEqual([DEVNET.clusterId, DEVNET.shards, DEVNET.maxMessageSize], [3, 8, 153600]);
  assert.equal(LOCAL.clusterId, 2);
  assert.equal(TESTNET.entryNodes.length, 6);
  assert.equal(DEVNET.entryNodes.length, 6);
  assert.ok(TESTNET.entryNodes.includes("/dns4/node-01.do-ams3.logos.test.status.im/tcp/30303/p2p/16Uiu2HAmQ9X2xDfPG3uL77V9piYDhjq14JhKCtcmNYsTMKNqrKCj"));
  assert.ok(TESTNET.entryNodes.includes("/dns4/node-02.ac-cn-hongkong-c.logos.test.status.im/tcp/30303/p2p/16Uiu2HAm28CoBZjpyxsanC8tQpbvZ7bZJnVYuB1EgFzb571qpWsV"));
  assert.ok(DEVNET.entryNodes.includes("/dns4/delivery-02.gc-us-central1-a.logos.dev.status.im/tcp/30303/p2p/16Uiu2HAm8Y9kgBNtjxvCnf1X6gnZJW5EGE4UwwCL3CCm55TwqBiH"));
  assert.ok([...TESTNET.entryNodes, ...DEVNET.entryNodes].every((m) => /^\/dns4\/[a-z0-9.-]+\/tcp\/30303\/p2p\/16Uiu2HA[A-Za-z0-9]+$/.test(m)));
});

test("a core (relay) node and an edge node on the same dev node exchange messages", { timeout: 120_000 }, async () => {
  const dev = await startDevNode({ port: 0 });
  const [ws, tcp] = dev.multiaddrs;
  assert.match(tcp, /^\/ip4\/127\.0\.0\.1\/tcp\/\d+\/p2p\//, "the TCP address comes second");
  const core = await connect("local", { url: tcp, mode: "core" });
  const edge = await connect("local", { url: ws });
  try {
    assert.equal(core.mode, "core");
    assert.notEqual(core.health, "disconnected");
    const atCore = [];
    const atEdge = [];
    await core.subscribe(topic, (m) => atCore.push(m));
    await edge.subscribe(topic, (m) => atEdge.push(m));
    // The dev node relays to the core node once gossipsub has told it of the core's
    // subscription, which nothing signals: probes from the edge until one reaches the core.
    const probe = new TextEncoder().encode("probe");
    await sendUntil(() => edge.send(topic, probe), () => atCore.length > 0, 250, 15_000, "the relay path from the dev node to the core node");
    const base = dev.storedCount();
    const fromEdge = await edge.send(topic, new TextEncoder().encode("edge → core"));
    await until(() => atCore.some((m) => m.messageHash === fromEdge.messageHash), 15_000, "relay delivery of a lightpushed message");
    const fromCore = await core.send(topic, new TextEncoder().encode("core → edge"));
    await until(() => atEdge.some((m) => m.messageHash === fromCore.messageHash), 15_000, "filter delivery of a relayed message");
    assert.equal(new TextDecoder().decode(atEdge.find((m) => m.messageHash === fromCore.messageHash).payload), "core → edge");
    assert.equal(dev.storedCount(), base + 2, "the dev node stored both, once each");
    await assert.rejects(core.send(topic, new Uint8Array(150 * 1024)), (e) => e.code === "PAYLOAD_TOO_LARGE");
  } finally {
    await core.close();
    await edge.close();
  }
  try {
    // The 1:1 chat with one account on relay and the other on a light node: directory
    // lookups and catch-up read the store from the core node too.
    let n = 0;
    const mixed = { createMemoryHub: () => ({}), connect: (_net, o) => connect("local", { ...o, hub: undefined, ...(n++ % 2 === 0 ? { url: tcp, mode: "core" } : { url: ws }) }) };
    await all.twoAccountsChatBothWays(mixed);
  } finally {
    await dev.stop();
  }
});
