// Issue 12's memory test through the package, in a process of its own (run with
// --expose-gc by reliability.node.test.mjs): a stranger on the network sends 1,000
// crafted messages (length fields that claim up to 2 GiB, MLS vectors that claim 1 GiB,
// real envelopes with such claims spliced in, protobuf nested 200 deep) to an inbox and
// to a group topic; the package's wasm memory must grow by less than 64 MiB, and the
// members' direct chat and group must still carry messages both ways. Prints one JSON
// line (the process's RSS growth too, which also counts the memory hub's copy of the
// flood: 100 KB messages are part of it).
// The package's wasm memories, caught as it instantiates its module (wasm memory never
// shrinks: its size is the most the heap ever held).
const memories = [];
const keep = (r) => {
  const instance = r instanceof WebAssembly.Instance ? r : r.instance;
  if (instance?.exports?.memory) memories.push(instance.exports.memory);
  return r;
};
for (const name of ["instantiate", "instantiateStreaming"]) {
  const original = WebAssembly[name];
  if (original) WebAssembly[name] = (...args) => original.apply(WebAssembly, args).then(keep);
}
WebAssembly.Instance = new Proxy(WebAssembly.Instance, {
  construct(target, args) {
    return keep(Reflect.construct(target, args));
  },
});
const wasmBytes = () => memories.reduce((n, m) => n + m.buffer.byteLength, 0);
const { default: logos } = await import("logos-chat");

const MIB = 1024 * 1024;
const hub = logos.createMemoryHub();

/** A transport that remembers what its chat subscribes to and publishes. */
function spy(inner) {
  const seen = { topics: new Set(), published: [] };
  const t = {
    maxMessageSize: inner.maxMessageSize,
    publish: (topic, payload) => {
      seen.published.push({ topic, payload });
      return inner.publish(topic, payload);
    },
    subscribe: (topics, cb) => {
      for (const x of topics) seen.topics.add(x);
      return inner.subscribe(topics, cb);
    },
    query: (q) => inner.query(q),
    close: () => inner.close(),
  };
  return { t, seen };
}

function waitFor(chat, pred, ms = 20_000) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("timed out")), ms);
    const off = chat.on("message", (m) => {
      if (!pred(m)) return;
      clearTimeout(timer);
      off();
      resolve(m);
    });
  });
}

// Protobuf pieces: a varint, a length-delimited field.
const varint = (n) => {
  const out = [];
  while (n >= 0x80) {
    out.push((n % 0x80) | 0x80);
    n = Math.floor(n / 0x80);
  }
  out.push(n);
  return out;
};
const field = (tag, bytes) => [(tag << 3) | 2, ...varint(bytes.length), ...bytes];
const utf8 = (s) => [...new TextEncoder().encode(s)];
const junk = (n, seed) => Array.from({ length: n }, (_, i) => (i * 31 + seed) & 0xff);

/** The crafted messages for a topic whose real traffic is `real` and hint `hint`. */
function crafted(i, hint, real) {
  const kind = i % 5;
  const envelope = (payload) => new Uint8Array([...field(1, utf8(hint)), ...field(5, payload)]);
  const plaintext = (mls) => field(1, field(1, mls)); // EncryptedPayload { plaintext { payload } }
  if (kind === 0) {
    // A payload field that claims 2 GiB, on a real hint.
    return new Uint8Array([...field(1, utf8(hint)), (5 << 3) | 2, ...varint(2 ** 31), ...junk(1000, i)]);
  }
  if (kind === 1) {
    // An MLS message (wire formats 2-5 in turn) whose first vector claims 1 GiB - 1.
    return envelope(plaintext([0, 1, 0, 2 + (i % 4), 0xbf, 0xff, 0xff, 0xff, ...junk(1000, i)]));
  }
  if (kind === 2 && real.length) {
    // A real envelope of this topic with a 1 GiB claim spliced in.
    const r = real[i % real.length];
    const at = 40 + (i * 7) % Math.max(1, r.length - 40);
    return new Uint8Array([...r.slice(0, at), 0xbf, 0xff, 0xff, 0xff, ...r.slice(at + 4)]);
  }
  if (kind === 3) {
    // Protobuf nested 200 deep.
    let inner = junk(64, i);
    for (let d = 0; d < 200; d++) inner = field(1, inner);
    return envelope(inner);
  }
  // A 100 KB envelope of noise on the hint.
  return envelope(junk(100_000, i));
}

const gc = globalThis.gc ?? (() => {});
const rss = () => {
  gc();
  gc();
  return process.memoryUsage().rss;
};

const a = spy(hub.transport());
const b = spy(hub.transport());
const alice = await (await logos.connect(a.t)).chat({ name: "alice", store: "memory" });
const bob = await (await logos.connect(b.t)).chat({ name: "bob", store: "memory" });
const mallory = await logos.connect("memory", { hub });
const errors = { alice: 0, bob: 0 };
alice.on("error", () => errors.alice++);
bob.on("error", () => errors.bob++);

const timing = { commitWindowMs: 200, freezeMs: 1500, voteTimeoutMs: 1500, retryMs: 300 };
const bobJoined = new Promise((resolve) => bob.on("conversation", (c) => c.kind === "group" && resolve(c)));
const dm = await alice.startDirect(bob.accountId);
const group = await alice.createGroup({ name: "team", members: [bob.accountId], timing });
await bobJoined;
const rounds = async (tag) => {
  for (const [from, to, convo] of [[alice, bob, dm.id], [bob, alice, dm.id], [alice, bob, group.id], [bob, alice, group.id]]) {
    const text = `${tag} ${from === alice ? "a→b" : "b→a"} ${convo === dm.id ? "dm" : "group"}`;
    const got = waitFor(to, (m) => m.text === text);
    await (await from.conversation(convo)).send(text);
    await got;
  }
};
await rounds("warm-up");
for (let i = 0; i < 5; i++) await rounds(`warm-up ${i}`);

// The targets, as anyone reading the network learns them: the group's topic (where
// alice's group message went) and bob's inbox (the one topic bob follows and alice not).
const mark = a.seen.published.length;
await rounds("mark");
const sinceMark = a.seen.published.slice(mark).map((p) => p.topic);
const groupTopic = sinceMark.find((t) => t !== sinceMark[0]); // alice sent on the direct chat first
const inbox = [...b.seen.topics].find((t) => !a.seen.topics.has(t));
const hintOf = (topic) => {
  const p = [...a.seen.published, ...b.seen.published].find((x) => x.topic === topic && x.payload[0] === 0x0a);
  return p ? new TextDecoder().decode(p.payload.slice(2, 2 + p.payload[1])) : "";
};
const targets = [inbox, groupTopic];
const before = rss();
const wasmBefore = wasmBytes();
const usageBefore = process.memoryUsage();
let sent = 0;
for (const topic of targets) {
  const real = [...a.seen.published, ...b.seen.published].filter((p) => p.topic === topic).map((p) => [...p.payload]);
  const hint = hintOf(topic) || "0000000000";
  for (let i = 0; i < 500; i++) {
    await mallory.send(topic, crafted(i, hint, real));
    sent++;
  }
}
// Each chat handles its input in order: once these arrive, the flood was handled.
await rounds("after");
const after = rss();
console.log(JSON.stringify({ sent, targets: targets.length, memories: memories.length, wasmMiB: wasmBefore / MIB, wasmGrownMiB: (wasmBytes() - wasmBefore) / MIB, rssGrownMiB: (after - before) / MIB, heapGrownMiB: (process.memoryUsage().heapUsed - usageBefore.heapUsed) / MIB, arrayBuffersGrownMiB: (process.memoryUsage().arrayBuffers - usageBefore.arrayBuffers) / MIB, errors }));
for (const c of [alice, bob]) await c.close();
await mallory.close();
process.exit(0);
