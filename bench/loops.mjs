// Benchmark loops shared by Node and the Chromium page. `glue` is the package's wasm
// module (pkg/wasm/logos_chat.js) once instantiated; `logos` is the public API.
const now = () => performance.now();

/** Core-level 1:1: send + receive of 1 KiB through WasmClient, comparable to the native criterion bench. */
export async function coreLoop(glue, n) {
  const t0 = now();
  const key = () => crypto.getRandomValues(new Uint8Array(32));
  const alice = glue.WasmClient.create(Date.now(), key());
  const createAccountMs = now() - t0;
  const bob = glue.WasmClient.create(Date.now(), key());
  const records = [...alice.takeStartupEffects().publish, ...bob.takeStartupEffects().publish];
  // Each looks the other up as the driver does: the list first, then its key packages.
  for (const [c, peer] of [[alice, bob], [bob, alice]]) {
    for (let pass = 0; pass < 2; pass++) {
      c.lookupTopics([peer.accountId]);
      for (const o of records) {
        try {
          c.ingestDirectory(o.contentTopic, o.payload);
        } catch {
          /* a record of a topic not named yet */
        }
      }
    }
  }
  const t1 = now();
  const started = alice.startDirect(bob.accountId, Date.now());
  const startDirectMs = now() - t1;
  for (const o of started.effects.publish) bob.receive(o.contentTopic, o.payload, Date.now(), Date.now());
  const content = new Uint8Array(1024).fill(120);
  const t2 = now();
  for (let i = 0; i < n; i++) {
    const sent = alice.send(started.conversationId, content, Date.now());
    const o = sent.effects.publish[0];
    const fx = bob.receive(o.contentTopic, o.payload, Date.now(), Date.now());
    if (fx.events.length === 0) throw new Error("message not delivered");
  }
  const perMessageMs = (now() - t2) / n;
  alice.free();
  bob.free();
  return { perSecond: 1000 / perMessageMs, perMessageMs, createAccountMs, startDirectMs };
}

/** API-level 1:1 over the memory hub: send → decrypted at the peer, one at a time. */
export async function apiLoop(logos, n) {
  const hub = logos.createMemoryHub();
  const aliceNode = await logos.connect("memory", { hub });
  const bobNode = await logos.connect("memory", { hub });
  const alice = await aliceNode.chat({ name: "alice", store: "memory" });
  const bob = await bobNode.chat({ name: "bob", store: "memory" });
  const dm = await alice.startDirect(bob.accountId);
  let resolveNext;
  bob.on("message", () => resolveNext?.());
  await new Promise((r) => ((resolveNext = r), dm.send("warm-up")));
  const latencies = [];
  const payload = "x".repeat(1024);
  const t0 = now();
  for (let i = 0; i < n; i++) {
    const t = now();
    await new Promise((r) => ((resolveNext = r), dm.send(payload)));
    latencies.push(now() - t);
  }
  const total = now() - t0;
  latencies.sort((a, b) => a - b);
  const pct = (p) => latencies[Math.min(latencies.length - 1, Math.floor((p / 100) * latencies.length))];
  await aliceNode.close();
  await bobNode.close();
  return { perSecond: (n / total) * 1000, p50Ms: pct(50), p95Ms: pct(95) };
}

/**
 * Storage: one account with `conversations` direct chats and `perConversation` messages
 * each, written through the API (per-message write = send, including its commit), then
 * closed and reopened (open + restore), then a page of 50 messages read twice.
 */
export async function storageLoop(logos, { conversations, perConversation, store, name }) {
  const hub = logos.createMemoryHub();
  const node = await logos.connect("memory", { hub });
  let alice = await node.chat({ name, store });
  const dms = [];
  for (let i = 0; i < conversations; i++) {
    const peer = await (await logos.connect("memory", { hub })).chat({ name: `peer-${i}`, store: "memory" });
    dms.push(await alice.startDirect(peer.accountId));
  }
  const t0 = now();
  for (const dm of dms) for (let j = 0; j < perConversation; j++) await dm.send(`message ${j} of a stored conversation`);
  const writeMs = (now() - t0) / (conversations * perConversation);
  await alice.close();
  const t1 = now();
  alice = await (await logos.connect("memory", { hub })).chat({ name, store });
  const list = await alice.conversations();
  const openMs = now() - t1;
  if (list.length !== conversations) throw new Error(`restored ${list.length} conversations`);
  const dm = await alice.conversation(list[0].id);
  const t2 = now();
  const page = await dm.history({ limit: 50 });
  const pageMs = now() - t2;
  const t3 = now();
  const older = await dm.history({ limit: 50, before: page[0].id });
  const olderPageMs = now() - t3;
  if (page.length !== Math.min(50, perConversation)) throw new Error(`paged ${page.length}`);
  if (perConversation > 50 && older.length === 0) throw new Error("no older page");
  await alice.close();
  return { conversations, messages: conversations * perConversation, writeMs, openMs, pageMs, olderPageMs };
}

/** Messaging API over the local dev node: send → receive latency of 1 KiB messages. */
/** Send → receive over the dev node; the sender is a light node, or a relay node with `senderMode: "core"`. */
export async function devnodeLoop(logos, startDevNode, n, senderMode = "edge") {
  const dev = await startDevNode({ port: 0 });
  const url = dev.multiaddrs[0];
  const a = await logos.connect("local", senderMode === "core" ? { url: dev.multiaddrs[1], mode: "core" } : { url });
  const b = await logos.connect("local", { url });
  const topic = "/bench/1/latency/proto";
  let resolveNext;
  await b.subscribe(topic, () => resolveNext?.());
  await new Promise((r) => setTimeout(r, 300));
  const payload = new Uint8Array(1024).fill(7);
  const once = () => new Promise((r) => ((resolveNext = r), a.send(topic, payload)));
  await once();
  const latencies = [];
  const t0 = now();
  for (let i = 0; i < n; i++) {
    const t = now();
    await once();
    latencies.push(now() - t);
  }
  const total = now() - t0;
  latencies.sort((x, y) => x - y);
  const pct = (p) => latencies[Math.min(latencies.length - 1, Math.floor((p / 100) * latencies.length))];
  await a.close();
  await b.close();
  await dev.stop();
  return { messages: n, perSecond: (n / total) * 1000, p50Ms: pct(50), p95Ms: pct(95) };
}

/**
 * API-level group over the memory hub: `n` accounts, one creates the group with the
 * others; then `messages` messages of 1 KiB, each timed from send until every member has
 * it, and the transport publishes each one costs the sender (P1: must be 1).
 */
export async function groupLoop(logos, n, messages) {
  const hub = logos.createMemoryHub();
  let publishes = 0;
  const counting = () => {
    const t = hub.transport();
    return { maxMessageSize: t.maxMessageSize, subscribe: (...a) => t.subscribe(...a), query: (q) => t.query(q), close: () => t.close(), publish: (...a) => (publishes++, t.publish(...a)) };
  };
  const chats = [];
  for (let i = 0; i < n; i++) chats.push(await (await logos.connect(i === 0 ? counting() : "memory", { hub })).chat({ name: `m${i}`, store: "memory" }));
  const [creator, ...rest] = chats;
  const joined = Promise.all(rest.map((c) => new Promise((r) => { const off = c.on("conversation", (info) => info.kind === "group" && (off(), r())); })));
  const t0 = now();
  const group = await creator.createGroup({ name: "bench", members: rest.map((c) => c.accountId) });
  const createMs = now() - t0;
  await joined;
  const joinedMs = now() - t0;
  let pending = 0;
  let done;
  for (const c of rest) c.on("message", () => --pending === 0 && done?.());
  const payload = "x".repeat(1024);
  const latencies = [];
  let perMessagePublishes = 0;
  for (let i = 0; i < messages; i++) {
    pending = rest.length;
    const before = publishes;
    const t = now();
    await new Promise((r) => ((done = r), group.send(payload)));
    latencies.push(now() - t);
    perMessagePublishes = Math.max(perMessagePublishes, publishes - before);
  }
  latencies.sort((a, b) => a - b);
  const pct = (p) => latencies[Math.min(latencies.length - 1, Math.floor((p / 100) * latencies.length))];
  for (const c of chats) await c.close();
  return { n, createMs, joinedMs, p50Ms: pct(50), p95Ms: pct(95), publishesPerMessage: perMessagePublishes };
}

/**
 * A group over the local dev node (js-waku light clients, lightpush → filter, store for the
 * directory and catch-up): `n` accounts spread over `nodes` light nodes; the creator sends
 * `messages` messages of 1 KiB, and the delivery ratio is what every other member received
 * (within `waitMs` after the last send) over what it should have.
 */
export async function devnodeGroupLoop(logos, startDevNode, { n, messages, nodes, waitMs }) {
  const dev = await startDevNode({ port: 0 });
  const url = dev.multiaddrs[0];
  const lights = [];
  for (let i = 0; i < nodes; i++) lights.push(await logos.connect("local", { url }));
  const chats = [];
  for (let i = 0; i < n; i++) chats.push(await lights[i % nodes].chat({ name: `g${i}`, store: "memory" }));
  const [creator, ...rest] = chats;
  const joined = Promise.all(rest.map((c) => new Promise((r) => { const off = c.on("conversation", (info) => info.kind === "group" && (off(), r())); })));
  const t0 = now();
  const group = await creator.createGroup({ name: "delivery", members: rest.map((c) => c.accountId) });
  await joined;
  const joinedMs = now() - t0;
  const got = new Map();
  const sentAt = new Map();
  const latencies = [];
  const perIndex = new Map();
  for (const c of rest) {
    c.on("message", (m) => {
      if (m.conversationId !== group.id) return;
      got.set(m.id, (got.get(m.id) ?? 0) + 1);
      perIndex.set(m.text.split(":")[0], (perIndex.get(m.text.split(":")[0]) ?? 0) + 1);
      if (sentAt.has(m.id)) latencies.push(now() - sentAt.get(m.id));
    });
  }
  for (let i = 0; i < messages; i++) {
    const t = now();
    const { messageId } = await group.send(`${i}:` + "x".repeat(1024));
    sentAt.set(messageId, t);
  }
  const expected = messages * rest.length;
  const end = now() + waitMs;
  const delivered = () => [...got.values()].reduce((a, b) => a + b, 0);
  while (delivered() < expected && now() < end) await new Promise((r) => setTimeout(r, 100));
  latencies.sort((a, b) => a - b);
  const pct = (p) => latencies[Math.min(latencies.length - 1, Math.floor((p / 100) * latencies.length))];
  for (const c of chats) await c.close();
  for (const l of lights) await l.close();
  await dev.stop();
  // Deliveries short of the member count, per message in send order (where losses fall).
  const missedPerMessage = Array.from({ length: messages }, (_, i) => rest.length - (perIndex.get(String(i)) ?? 0));
  return { members: n, messages, expected, delivered: delivered(), ratio: delivered() / expected, joinedMs, p50Ms: pct(50), p95Ms: pct(95), missedPerMessage };
}

/**
 * Identity (issue 13): an account in `conversations` direct chats links a second device
 * (createLink → chat({ link }) → the new device holds every chat and its archived
 * history), then removes it (removeInstallation → the removed device is told).
 */
export async function identityLoop(logos, conversations) {
  const hub = logos.createMemoryHub();
  const aliceNode = await logos.connect("memory", { hub });
  const alice = await aliceNode.chat({ name: "alice", store: "memory" });
  const wait = async (pred, what) => {
    const end = Date.now() + 600_000;
    while (!(await pred())) {
      if (Date.now() > end) throw new Error(`identity bench: timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 5));
    }
  };
  const peers = [];
  for (let i = 0; i < conversations; i++) {
    const node = await logos.connect("memory", { hub });
    const chat = await node.chat({ name: `peer${i}`, store: "memory" });
    peers.push({ node, chat });
    const dm = await alice.startDirect(chat.accountId);
    await dm.send(`hello ${i}`);
  }

  // Everything the set-up sent has arrived (and been acked) before the clock starts.
  for (const p of peers) await wait(async () => (await p.chat.conversations())[0]?.unread === 1, "the peers' first messages");
  await new Promise((r) => setTimeout(r, 200));
  const phoneNode = await logos.connect("memory", { hub });
  const t0 = now();
  const code = await alice.createLink();
  const phone = await phoneNode.chat({ name: "phone", store: "memory", link: code });
  const grantedMs = now() - t0;
  await wait(async () => (await phone.conversations()).length === conversations, "the phone in every chat");
  const joinedMs = now() - t0;
  const last = (await phone.conversations()).map((c) => c.id);
  await wait(async () => (await (await phone.conversation(last[last.length - 1])).history()).length > 0, "the archive");
  const linkMs = now() - t0;
  let removed = false;
  phone.on("error", (e) => {
    if (e.code === "INSTALLATION_REMOVED") removed = true;
  });
  const t1 = now();
  await alice.removeInstallation(phone.installationId);
  const removeCallMs = now() - t1;
  await wait(() => removed, "the phone told it was removed");
  const removeMs = now() - t1;
  await Promise.all([aliceNode, phoneNode, ...peers.map((p) => p.node)].map((n) => n.close()));
  return { conversations, grantedMs, joinedMs, linkMs, removeCallMs, removeMs };
}
