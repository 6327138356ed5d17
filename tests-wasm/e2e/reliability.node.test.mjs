// Reliability as a user of the package sees it in Node: a lossy Transport (30% of live
// pushes dropped, each delayed 0-200 ms, 10% duplicated) still delivers every message
// exactly once; what was sent while an account was closed reaches on("message") after
// it reopens; a stored profile opens with the network down; a throwing listener is
// reported and the others still run; a flood of crafted messages from a stranger costs
// bounded memory (memory-child.mjs).
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { connect, createMemoryHub } from "logos-chat";
import { lossy } from "./lossy.mjs";
import { until } from "./scenarios.mjs";


/** A Transport whose network is down: every call fails. */
const down = {
  maxMessageSize: 150 * 1024,
  publish: async () => { throw new Error("network down"); },
  subscribe: async () => { throw new Error("network down"); },
  query: () => ({ [Symbol.asyncIterator]: () => ({ next: async () => { throw new Error("network down"); } }) }),
  close: async () => {},
};

test("a 1:1 chat over a lossy transport gets every message through, once", { timeout: 120_000 }, async () => {
  const hub = createMemoryHub();
  const [ta, tb] = [lossy(hub.transport(), 1), lossy(hub.transport(), 2)];
  const alice = await (await connect(ta)).chat({ name: "alice", store: "memory" });
  const bob = await (await connect(tb)).chat({ name: "bob", store: "memory" });
  const got = { alice: [], bob: [] };
  alice.on("message", (m) => got.alice.push(m.id));
  bob.on("message", (m) => got.bob.push(m.id));
  const joined = new Promise((r) => bob.on("conversation", r));
  const dm = await alice.startDirect(bob.accountId);
  await joined;
  let bobDm = await bob.conversation(dm.id);
  const N = 30;
  const sent = { alice: [], bob: [] };
  for (let i = 0; i < N; i++) {
    sent.alice.push((await dm.send(`a${i}`)).messageId);
    sent.bob.push((await bobDm.send(`b${i}`)).messageId);
    // Pacing, not a wait: spreads the sends so that their delayed pushes interleave.
    await new Promise((r) => setTimeout(r, 30));
  }
  await until(() => got.bob.length >= N && got.alice.length >= sent.bob.length, 90_000, () => `delivery (${got.bob.length}/${N}, ${got.alice.length}/${sent.bob.length})`);
  // "Once" means something after every copy had its chance: once neither transport holds
  // a push back (the duplicates and the re-sends published so far are handed over), one
  // more message each way; each chat handles its input in order, so when it is read,
  // whatever came before it has been through the chat too.
  await until(() => ta.inFlight === 0 && tb.inFlight === 0, 10_000, "the lossy transports to hand over every push they hold");
  sent.alice.push((await dm.send("alice's last")).messageId);
  sent.bob.push((await bobDm.send("bob's last")).messageId);
  await until(() => got.bob.includes(sent.alice.at(-1)) && got.alice.includes(sent.bob.at(-1)), 60_000, "the last message each way");
  assert.deepEqual([...got.bob].sort(), [...sent.alice].sort(), "bob got each of alice's messages once");
  assert.deepEqual([...got.alice].sort(), [...sent.bob].sort(), "alice got each of bob's messages once");
  assert.ok(sent.bob.length > 0);
  await alice.close();
  await bob.close();
});

test("messages sent while an account is closed reach on('message') after it reopens; it opens with the network down", { timeout: 60_000 }, async () => {
  const hub = createMemoryHub();
  const dir = mkdtempSync(join(tmpdir(), "logos-chat-rel-"));
  const store = { path: dir };
  const alice = await (await connect("memory", { hub })).chat({ name: "alice", store: "memory" });
  let bob = await (await connect("memory", { hub })).chat({ name: "bob", store });
  const joined = new Promise((r) => bob.on("conversation", r));
  const dm = await alice.startDirect(bob.accountId);
  await joined;
  await bob.close();
  for (const t of ["while away 1", "while away 2", "while away 3"]) await dm.send(t);

  bob = await (await connect("memory", { hub })).chat({ name: "bob", store });
  const texts = [];
  const synced = new Promise((r) => bob.on("synced", r));
  bob.on("message", (m) => texts.push(m.text));
  await synced;
  await until(() => texts.length >= 3, 10_000, "the backlog");
  // Each once: alice's re-sends of what bob had not acknowledged come on the live path; a
  // message she sends now comes after them, and bob handles his input in order.
  await dm.send("after the backlog");
  await until(() => texts.includes("after the backlog"), 20_000, "a message sent after the backlog");
  assert.deepEqual(texts, ["while away 1", "while away 2", "while away 3", "after the backlog"]);
  await bob.close();

  // Offline: the profile opens, history reads, a send is queued.
  const errors = [];
  const offline = await (await connect(down)).chat({ name: "bob", store });
  offline.on("error", (e) => errors.push(e.code));
  const convo = await offline.conversation(dm.id);
  assert.ok(convo, "the conversation is there offline");
  const history = await convo.history();
  assert.deepEqual(history.map((m) => m.text), ["while away 1", "while away 2", "while away 3", "after the backlog"]);
  const queued = await convo.send("sent offline");
  assert.match(queued.messageId, /^[0-9a-f]{64}$/);
  await until(() => errors.includes("TRANSPORT_UNAVAILABLE"), 5_000, "a transport error event");
  assert.ok(!errors.includes("STORE_CORRUPT"));
  await offline.close();
  await alice.close();
});

test("a throwing listener is reported and the other listeners still run", { timeout: 30_000 }, async () => {
  const hub = createMemoryHub();
  const alice = await (await connect("memory", { hub })).chat({ name: "alice", store: "memory" });
  const bob = await (await connect("memory", { hub })).chat({ name: "bob", store: "memory" });
  const errors = [];
  const seen = [];
  bob.on("error", (e) => errors.push(e.code));
  bob.on("message", () => { throw new Error("app bug"); });
  bob.on("message", (m) => seen.push(m.text));
  const dm = await alice.startDirect(bob.accountId);
  await dm.send("still delivered");
  await until(() => seen.length === 1, 10_000, "the second listener");
  assert.deepEqual(seen, ["still delivered"]);
  assert.ok(errors.includes("LISTENER_FAILED"), JSON.stringify(errors));
  await alice.close();
  await bob.close();
});

test("a wasm trap closes the chat with one clear error instead of failing every later call", { timeout: 30_000 }, async () => {
  const hub = createMemoryHub();
  const node = await connect("memory", { hub });
  const chat = await node.chat({ name: "trap", store: "memory" });
  const errors = [];
  chat.on("error", (e) => errors.push(e));
  // What a Rust panic looks like from JavaScript (release builds abort on panic).
  chat.client.startDirect = () => {
    throw new WebAssembly.RuntimeError("unreachable");
  };
  await assert.rejects(chat.startDirect("ab".repeat(32)), (e) => e.code === "CLOSED" && /trapped/.test(e.message));
  assert.equal(errors.length, 1, "reported once on error");
  assert.equal(errors[0].code, "CLOSED");
  // Later calls say why, without touching the broken instance.
  await assert.rejects(chat.createGroup({ name: "g", members: [] }), (e) => e.code === "CLOSED" && /trapped/.test(e.message));
  // The first report was there when its call settled; a second would be there by now too.
  assert.equal(errors.length, 1, "and not reported again");
  // The profile opens again.
  const again = await node.chat({ name: "trap2", store: "memory" });
  assert.ok(again.accountId);
  await node.close();
});

test("1,000 crafted messages from a stranger to an inbox and a group topic grow wasm memory by less than 64 MiB, and chat still flows both ways", { timeout: 120_000 }, () => {
  const r = spawnSync(process.execPath, ["--expose-gc", "memory-child.mjs"], { encoding: "utf8", timeout: 100_000 });
  const line = r.stdout.trim().split("\n").pop() ?? "";
  assert.ok(line.startsWith("{"), `the child printed no result: ${r.stderr}`);
  const out = JSON.parse(line);
  console.log(`memory: ${JSON.stringify(out)}`);
  assert.equal(out.sent, 1000);
  assert.equal(out.targets, 2);
  assert.equal(out.memories, 1, "the package's wasm memory was found");
  assert.ok(out.wasmGrownMiB < 64, `wasm memory grew by ${out.wasmGrownMiB} MiB`);
  assert.ok(out.heapGrownMiB < 64, `the JS heap grew by ${out.heapGrownMiB} MiB`);
  assert.ok(out.errors.bob > 0, "bad input from the network is reported on error");
});
