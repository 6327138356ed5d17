// The Reliable Channel (LIP-173) as a user of the package sees it in Node: every
// message through a lossy transport exactly once and in order, a segmented payload
// and the encryption hook, state that survives a restart (file store), and interop
// with @waku/sds 0.0.8's MessageChannel both ways, each side detecting a message the
// other never received.
import assert from "node:assert/strict";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { Message, MessageChannel, MessageChannelEvent } from "@waku/sds";
import { connect, createMemoryHub } from "logos-chat";
import { lossy } from "./lossy.mjs";
import { until } from "./scenarios.mjs";

const TOPIC = "/reliable-test/1/lobby/proto";
const enc = new TextEncoder();
const dec = new TextDecoder();


// Re-sends: LIP-173's 5 leave a message unacknowledged with probability about
// 0.51^6 (2%) on this 30%-loss transport once acknowledgements come only from syncs
// (each try needs the message and its acknowledgement through); 12 make that 0.02%.
const FAST = { ackTimeoutMs: 300, syncDelayMs: 100, lostAfterMs: 20_000, maxRetransmissions: 12 };

test("two channels over a lossy transport: every message once, in order", { timeout: 120_000 }, async () => {
  const hub = createMemoryHub();
  const [ta, tb] = [lossy(hub.transport(), 7), lossy(hub.transport(), 8)];
  const na = await connect(ta);
  const nb = await connect(tb);
  const a = await na.reliableChannel(TOPIC, { channelId: "room", senderId: "alice", ...FAST });
  const b = await nb.reliableChannel(TOPIC, { channelId: "room", senderId: "bob", ...FAST });
  const got = { a: [], b: [] };
  a.on("message", (m) => got.a.push(dec.decode(m.payload)));
  b.on("message", (m) => got.b.push(dec.decode(m.payload)));
  const delivered = new Set();
  a.on("delivered", (e) => delivered.add(e.messageId));
  const bDelivered = new Set();
  b.on("delivered", (e) => bDelivered.add(e.messageId));
  const lip = [];
  b.addEventListener("message:received", (e) => lip.push(e.detail.messageId));
  const N = 30;
  const ids = [];
  const bIds = [];
  for (let i = 0; i < N; i++) {
    ids.push((await a.send(enc.encode(`a${i}`))).messageId);
    bIds.push((await b.send(enc.encode(`b${i}`))).messageId);
    // Pacing, not a wait: spreads the sends so that their delayed pushes interleave.
    await new Promise((r) => setTimeout(r, 20));
  }
  await until(() => got.a.length >= N && got.b.length >= N, 90_000, () => `all delivered (a ${got.a.length}, b ${got.b.length})`);
  await until(() => ids.every((id) => delivered.has(id)), 30_000, "alice's messages acknowledged");
  // "Once" means something after every copy had its chance. Acknowledged both ways, no
  // message is re-sent any more; once neither transport holds a push back, everything
  // published so far is handed over; then one more message each way, read in causal
  // order after all that came before it.
  await until(() => bIds.every((id) => bDelivered.has(id)), 30_000, "bob's messages acknowledged");
  await until(() => ta.inFlight === 0 && tb.inFlight === 0, 10_000, "the lossy transports to hand over every push they hold");
  await a.send(enc.encode("a-last"));
  await b.send(enc.encode("b-last"));
  await until(() => got.b.includes("a-last") && got.a.includes("b-last"), 30_000, () => `the last message each way (a ${got.a.at(-1)}, b ${got.b.at(-1)})`);
  assert.deepEqual(got.b, [...Array.from({ length: N }, (_, i) => `a${i}`), "a-last"], "bob: each of alice's once, in order");
  assert.deepEqual(got.a, [...Array.from({ length: N }, (_, i) => `b${i}`), "b-last"], "alice: each of bob's once, in order");
  assert.equal(lip.length, N + 1, "the LIP-173 event name fires too");
  await na.close();
  await nb.close();
});

test("a segmented payload through the encryption hook", { timeout: 60_000 }, async () => {
  const hub = createMemoryHub();
  const key = 0x5a;
  const xor = (p) => p.map((x) => x ^ key);
  const encryption = { encrypt: xor, decrypt: xor };
  const na = await connect(hub.transport());
  const nb = await connect(hub.transport());
  const wire = [];
  const spy = await na.subscribe(TOPIC, (m) => wire.push(m.payload));
  const a = await na.reliableChannel(TOPIC, { channelId: "files", senderId: "alice", encryption, ...FAST });
  const b = await nb.reliableChannel(TOPIC, { channelId: "files", senderId: "bob", encryption, ...FAST });
  const got = [];
  b.on("message", (m) => got.push(m.payload));
  const big = new Uint8Array(300_000).map((_, i) => (i * 7) % 251);
  await a.send(big);
  await until(() => got.length === 1, 30_000, "the big payload");
  assert.deepEqual(got[0], big);
  assert.ok(wire.length >= 3, "it went as several segments");
  assert.ok(wire.every((p) => p.length < 150 * 1024), "each under the network's limit");
  assert.ok(wire.every((p) => Message.decode(p) === undefined || Message.decode(p).channelId !== "files"), "only ciphertext on the wire");
  await spy.unsubscribe();
  await na.close();
  await nb.close();
});

test("state survives a restart: nothing delivered twice, a gap repaired from the store", { timeout: 60_000 }, async () => {
  const hub = createMemoryHub();
  const dir = mkdtempSync(join(tmpdir(), "logos-rc-"));
  const na = await connect(hub.transport());
  const a = await na.reliableChannel(TOPIC, { channelId: "log", senderId: "alice", ...FAST });
  const open = async () => {
    const n = await connect(hub.transport());
    const ch = await n.reliableChannel(TOPIC, { channelId: "log", senderId: "bob", store: { path: dir }, ...FAST });
    const got = [];
    ch.on("message", (m) => got.push(dec.decode(m.payload)));
    return { n, ch, got };
  };
  const acked = new Set();
  a.on("delivered", (e) => acked.add(e.messageId));
  const sent = [];
  const send = async (text) => sent.push((await a.send(enc.encode(text))).messageId);
  let bob = await open();
  await send("one");
  await send("two");
  await until(() => bob.got.length === 2, 10_000, "one, two");
  await bob.n.close();
  // While bob is away: "three" goes out and is missed live.
  await send("three");
  bob = await open();
  await send("four"); // names "three": bob reads it back from the store
  await until(() => bob.got.length === 2, 15_000, () => `three and four (got ${bob.got})`);
  // Alice re-sends what bob has not acknowledged, "one" and "two" included. Once all four
  // are acknowledged she stops; a message she sends after that reaches bob after every
  // re-send, so by the time he reads it, a second "one" or "two" would have shown.
  await until(() => sent.every((id) => acked.has(id)), 30_000, () => `alice's four acknowledged (${acked.size} of ${sent.length})`);
  await send("five");
  await until(() => bob.got.includes("five"), 15_000, () => `five (got ${bob.got})`);
  assert.deepEqual(bob.got, ["three", "four", "five"], "in order, and never one or two again");
  await bob.n.close();
  await na.close();
});

test("interop with @waku/sds 0.0.8: both ways, and each detects what it never got", { timeout: 60_000 }, async () => {
  const hub = createMemoryHub();
  const node = await connect(hub.transport());
  const ours = await node.reliableChannel(TOPIC, { channelId: "interop", senderId: "logos", ...FAST });
  const got = [];
  const missing = [];
  ours.on("message", (m) => got.push({ id: m.messageId, from: m.senderId, text: dec.decode(m.payload) }));
  ours.on("missing", (m) => missing.push(m));

  // Their side: a MessageChannel driven the way @waku/sdk's ReliableChannel drives it.
  const transport = hub.transport();
  const theirs = new MessageChannel("interop", "waku", { causalHistorySize: 2 });
  const theirGot = [];
  const theirMissing = [];
  theirs.addEventListener(MessageChannelEvent.InMessageDelivered, (e) => theirGot.push(e.detail));
  theirs.addEventListener(MessageChannelEvent.InMessageMissing, (e) => theirMissing.push(...e.detail));
  const acked = [];
  theirs.addEventListener(MessageChannelEvent.OutMessageAcknowledged, (e) => acked.push(e.detail));
  const unhex = (h) => Uint8Array.from(h.match(/../g).map((b) => parseInt(b, 16)));
  await transport.subscribe([TOPIC], async (m) => {
    const msg = Message.decode(m.payload);
    if (!msg) return;
    theirs.pushIncomingMessage(msg, unhex(m.messageHash));
    await theirs.processTasks();
    theirs.sweepIncomingBuffer();
  });
  const publish = (dropped) => async (msg) => {
    if (dropped) return { success: true, retrievalHint: new Uint8Array(32) }; // never reaches the network
    const { messageHash } = await transport.publish(TOPIC, msg.encode());
    return { success: true, retrievalHint: unhex(messageHash) };
  };

  // Ours → theirs.
  const { messageId: first } = await ours.send(enc.encode("hello from logos-chat"));
  await until(() => theirGot.includes(first), 10_000, "their channel delivers ours");
  // Theirs → ours; their history names ours, so ours counts as acknowledged.
  theirs.pushOutgoingMessage(enc.encode("hello from @waku/sds"), publish(false));
  await theirs.processTasks();
  await until(() => got.length === 1, 10_000, "ours delivers theirs");
  assert.equal(got[0].from, "waku");
  assert.equal(got[0].text, "hello from @waku/sds");
  assert.equal(got[0].id, MessageChannel.getMessageId(enc.encode("hello from @waku/sds")));

  // Theirs loses one (never published), then sends another: ours names the gap and its sender.
  const lostPayload = enc.encode("never on the wire");
  theirs.pushOutgoingMessage(lostPayload, publish(true));
  await theirs.processTasks();
  theirs.pushOutgoingMessage(enc.encode("after the gap"), publish(false));
  await theirs.processTasks();
  const gap = MessageChannel.getMessageId(lostPayload);
  await until(() => missing.some((m) => m.messageId === gap), 10_000, "ours reports the missing id");
  assert.equal(missing.find((m) => m.messageId === gap).senderId, "waku");
  // The report came from handling "after the gap": it arrived and is held, not delivered.
  assert.equal(got.length, 1, "what depends on the gap waits");
  assert.ok(ours.missing().includes(gap), "and the gap is still open");

  // Ours loses one (dropped on the way), then sends another: theirs names the gap.
  const sent = [];
  const spyTransport = {
    maxMessageSize: 150 * 1024,
    publish: async (t, p) => {
      sent.push(p);
      if (sent.length === 1) return { messageHash: "00".repeat(32) }; // swallowed
      return hub.transport().publish(t, p);
    },
    subscribe: (t, cb) => hub.transport().subscribe(t, cb),
    query: (q) => hub.transport().query(q),
    close: async () => {},
  };
  const lossyNode = await connect(spyTransport);
  const ours2 = await lossyNode.reliableChannel(TOPIC, { channelId: "interop", senderId: "logos-2", ...FAST, ackTimeoutMs: 60_000 });
  const { messageId: swallowed } = await ours2.send(enc.encode("swallowed"));
  await ours2.send(enc.encode("names the swallowed one"));
  await until(() => theirMissing.some((e) => e.messageId === swallowed), 10_000, "theirs reports our missing id");
  assert.equal(theirMissing.find((e) => e.messageId === swallowed).senderId, "logos-2");
  await ours2.close();
  await lossyNode.close();
  await node.close();
});
