// The user stories the e2e suites check, written against the public API only.
// The same file runs in Node (node.test.mjs) and in a Chromium page (browser.test.mjs).

function assert(cond, message) {
  if (!cond) throw new Error(`assertion failed: ${message}`);
}

export function waitFor(chat, event, pred = () => true, ms = 10_000) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      off();
      reject(new Error(`timed out waiting for ${event}`));
    }, ms);
    const off = chat.on(event, (v) => {
      if (!pred(v)) return;
      clearTimeout(timer);
      off();
      resolve(v);
    });
  });
}

/**
 * Polls `pred` (sync or async) every 25 ms until it holds; past `ms`, fails naming what
 * was awaited (`what`, or `what()` for a description of the state at the deadline).
 * Shared by the Node suites: wait on the condition, never a fixed sleep.
 */
export async function until(pred, ms, what) {
  const end = Date.now() + ms;
  while (!(await pred())) {
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${typeof what === "function" ? what() : what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

async function rejectsWith(promise, code) {
  try {
    await promise;
  } catch (e) {
    assert(e && e.name === "LogosChatError", `expected a LogosChatError, got ${e}`);
    assert(e.code === code, `expected ${code}, got ${e.code}: ${e.message}`);
    return e;
  }
  throw new Error(`expected a rejection with ${code}`);
}

/** Two accounts on one memory hub chat 1:1 both ways. */
export async function twoAccountsChatBothWays(logos) {
  const hub = logos.createMemoryHub();
  const aliceNode = await logos.connect("memory", { hub });
  const bobNode = await logos.connect("memory", { hub });
  const alice = await aliceNode.chat({ name: "alice", store: "memory" });
  const bob = await bobNode.chat({ name: "bob", store: "memory" });
  assert(/^[0-9a-f]{64}$/.test(alice.accountId), "account id is 64 hex chars");
  assert(alice.accountId !== bob.accountId, "two accounts");

  const bobJoined = waitFor(bob, "conversation");
  const bobGets = waitFor(bob, "message");
  const dm = await alice.startDirect(bob.accountId);
  assert(dm.kind === "direct", "a direct conversation");
  const sent = await dm.send("hello bob");
  const joined = await bobJoined;
  assert(joined.id === dm.id, "bob joined the same conversation");
  const m1 = await bobGets;
  assert(m1.text === "hello bob", `bob got ${m1.text}`);
  assert(m1.id === sent.messageId, "message ids agree");
  assert(m1.sender.accountId === alice.accountId, "bob sees alice's verified account");
  assert(m1.conversationId === dm.id && !m1.outgoing, "incoming, in the conversation");
  assert(m1.sentAt instanceof Date && m1.content instanceof Uint8Array, "types");

  const iter = alice.messages()[Symbol.asyncIterator]();
  const bobDm = await bob.conversation(dm.id);
  assert(bobDm && bobDm.id === dm.id, "bob finds the conversation by id");
  await bobDm.send(new TextEncoder().encode("hi alice"), { contentType: "text/plain" });
  const m2 = (await iter.next()).value;
  assert(m2.text === "hi alice" && m2.sender.accountId === bob.accountId, "alice got bob's reply");
  await iter.return();

  const h = await dm.history();
  assert(h.map((m) => m.text).join("|") === "hello bob|hi alice", `alice's history: ${h.map((m) => m.text)}`);
  assert(h[0].outgoing && !h[1].outgoing && h[1].sender.accountId === bob.accountId, "history directions");
  const older = await dm.history({ before: h[1].id, limit: 10 });
  assert(older.length === 1 && older[0].id === h[0].id, "paging with before");
  const [ca, cb] = [await alice.conversations(), await bob.conversations()];
  assert(ca.length === 1 && cb.length === 1 && ca[0].id === cb[0].id, "one shared conversation each");
  assert(cb[0].unread === 1 && ca[0].unread === 1 && ca[0].lastMessageAt instanceof Date, "unread and last activity");
  await bobDm.markRead(m1.id);
  assert((await bob.conversations())[0].unread === 0, "markRead clears unread");
  assert((await alice.startDirect(bob.accountId)).id === dm.id, "startDirect again returns the same conversation");
  await aliceNode.close();
  await bobNode.close();
  await rejectsWith(alice.conversations(), "CLOSED");
  return { conversationId: dm.id, texts: [m1.text, m2.text] };
}

/** startDirect with a malformed or unknown account id rejects with a code. */
export async function startDirectRejectsBadAccounts(logos) {
  await rejectsWith(logos.connect("memory", { hub: {} }), "INVALID_ARGUMENT");
  const node = await logos.connect("memory", { hub: logos.createMemoryHub() });
  const chat = await node.chat({ store: "memory" });
  await rejectsWith(chat.startDirect("not an account"), "INVALID_ARGUMENT");
  await rejectsWith(chat.startDirect("ab".repeat(31)), "INVALID_ARGUMENT");
  await rejectsWith(chat.startDirect(42), "INVALID_ARGUMENT");
  await rejectsWith(chat.startDirect("ab".repeat(32)), "UNKNOWN_ACCOUNT");
  await rejectsWith(chat.startDirect(chat.accountId), "INVALID_ARGUMENT");
  assert((await chat.conversations()).length === 0, "nothing was created");
  await node.close();
  return { ok: true };
}

/** The Messaging API alone: send, subscribe, the size limit. */
export async function messagingApi(logos) {
  const hub = logos.createMemoryHub();
  const a = await logos.connect("memory", { hub });
  const b = await logos.connect("memory", { hub });
  assert(a.health === "connected" && a.mode === "edge" && a.network === "memory", "node facts");
  let arrived;
  const got = new Promise((resolve) => (arrived = resolve));
  await b.subscribe("/my-app/1/lobby/proto", arrived); // resolves once the subscription is in place
  const { messageHash } = await a.send("/my-app/1/lobby/proto", new Uint8Array([1, 2, 3]));
  const m = await got;
  assert(m.messageHash === messageHash && /^[0-9a-f]{64}$/.test(messageHash), "hash");
  assert(m.payload.length === 3 && m.payload[2] === 3, "payload");
  await rejectsWith(a.send("/my-app/1/lobby/proto", new Uint8Array(150 * 1024)), "PAYLOAD_TOO_LARGE");
  await rejectsWith(a.send("not-a-topic", new Uint8Array(1)), "INVALID_ARGUMENT");
  await rejectsWith(logos.connect("nowhere"), "INVALID_ARGUMENT");
  await a.close();
  await b.close();
  await rejectsWith(a.send("/my-app/1/lobby/proto", new Uint8Array(1)), "CLOSED");
  return { ok: true };
}

/** A custom Transport: the SDK runs over whatever the app brings. */
export async function bringYourOwnTransport(logos) {
  const hub = logos.createMemoryHub();
  let published = 0;
  const wrap = (t) => ({
    maxMessageSize: t.maxMessageSize,
    publish: (topic, payload) => {
      published++;
      return t.publish(topic, payload);
    },
    subscribe: (topics, cb) => t.subscribe(topics, cb),
    query: (q) => t.query(q),
    close: () => t.close(),
  });
  const a = await (await logos.connect(wrap(hub.transport()))).chat({ name: "a", store: "memory" });
  const b = await (await logos.connect(wrap(hub.transport()))).chat({ name: "b", store: "memory" });
  const got = waitFor(b, "message");
  await (await a.startDirect(b.accountId)).send("over a custom transport");
  assert((await got).text === "over a custom transport", "delivered");
  assert(published > 0, "the custom transport carried it");
  await a.close();
  await b.close();
  return { published };
}

/**
 * A push lost on the way (the message is in the store, the subscriber never saw it): the
 * next message's causal history names it, and the receiver reads it back from the store,
 * trying again when the store is busy.
 */
export async function aLostPushIsRepairedFromTheStore(logos) {
  const hub = logos.createMemoryHub();
  const inner = hub.transport();
  let drop = false;
  let dropped = 0;
  let refused = 0;
  const lossy = {
    maxMessageSize: inner.maxMessageSize,
    publish: (topic, payload) => inner.publish(topic, payload),
    subscribe: (topics, cb) =>
      inner.subscribe(topics, (m) => {
        if (drop && dropped === 0) {
          dropped++;
          return;
        }
        cb(m);
      }),
    // The store is busy for the first read of the conversation after the loss: the repair
    // tries again (the core reports a missing message once).
    query: (q) => {
      if (drop && refused === 0 && !q.contentTopics.some((t) => /\/(store-|dir-)/.test(t))) {
        refused++;
        return (async function* () {
          throw new Error("store busy");
        })();
      }
      return inner.query(q);
    },
    close: () => inner.close(),
  };
  const a = await (await logos.connect("memory", { hub })).chat({ name: "repair-a", store: "memory" });
  const b = await (await logos.connect(lossy)).chat({ name: "repair-b", store: "memory" });
  const dm = await a.startDirect(b.accountId);
  await waitFor(b, "conversation");
  const texts = [];
  b.on("message", (m) => texts.push(m.text));
  drop = true;
  await dm.send("lost on the way");
  const second = waitFor(b, "message", (m) => m.text === "lost on the way", 10_000);
  await dm.send("names the lost one");
  await second;
  assert(dropped === 1 && refused === 1 && texts.includes("names the lost one"), `texts ${texts}, refused ${refused}`);
  const history = (await (await b.conversation(dm.id)).history({ limit: 10 })).map((m) => m.text);
  assert(history.includes("lost on the way") && history.includes("names the lost one"), `history ${history}`);
  await a.close();
  await b.close();
  return { dropped, refused };
}

/** A transport that fails its first publishes: the outbox retries without app code. */
export async function outboxRetriesTransientFailures(logos) {
  const hub = logos.createMemoryHub();
  const inner = hub.transport();
  let failures = 0;
  let failing = false;
  const flaky = {
    maxMessageSize: inner.maxMessageSize,
    publish: (topic, payload) => {
      if (failing && failures < 2) {
        failures++;
        return Promise.reject(new Error("transient network failure"));
      }
      return inner.publish(topic, payload);
    },
    subscribe: (t, cb) => inner.subscribe(t, cb),
    query: (q) => inner.query(q),
    close: () => inner.close(),
  };
  const a = await (await logos.connect(flaky)).chat({ name: "flaky-a", store: "memory" });
  const b = await (await logos.connect("memory", { hub })).chat({ name: "flaky-b", store: "memory" });
  const dm = await a.startDirect(b.accountId);
  await waitFor(b, "conversation");
  const errors = [];
  a.on("error", (e) => errors.push(e.code));
  failing = true;
  const got = waitFor(b, "message", (m) => m.text === "despite a flaky network", 15_000);
  await dm.send("despite a flaky network");
  assert((await got).text === "despite a flaky network", "delivered after retries");
  assert(failures === 2 && errors.every((c) => c === "TRANSPORT_UNAVAILABLE") && errors.length >= 1, `errors ${errors}`);
  await a.close();
  await b.close();
  return { failures };
}

/**
 * Three accounts create a named group and chat; a fourth is added; one leaves, one is
 * removed, and the rest keep chatting. Short de-MLS timers keep the story quick.
 */
export async function groupLifecycle(logos) {
  const hub = logos.createMemoryHub();
  const timing = { commitWindowMs: 200, freezeMs: 1500, voteTimeoutMs: 1500, retryMs: 300 };
  const chats = [];
  for (const name of ["alice", "bob", "carol", "dave"]) chats.push(await (await logos.connect("memory", { hub })).chat({ name, store: "memory" }));
  const [alice, bob, carol, dave] = chats;
  const bobJoined = waitFor(bob, "conversation", (c) => c.kind === "group");
  const carolJoined = waitFor(carol, "conversation", (c) => c.kind === "group");
  const group = await alice.createGroup({ name: "team", description: "the team", members: [bob.accountId, carol.accountId], timing });
  assert(group.kind === "group" && group.name === "team" && group.description === "the team", "a named group");
  const joined = await bobJoined;
  await carolJoined;
  assert(joined.id === group.id && joined.name === "team", "bob joined the named group");
  const members = await group.members();
  assert(members.length === 3 && members.some((m) => m.accountId === bob.accountId), "three members");
  assert((await group.stewards()).length === 2, "two stewards");

  const bobGets = waitFor(bob, "message", (m) => m.conversationId === group.id);
  await group.send("hello team");
  assert((await bobGets).text === "hello team", "bob reads the group");

  // Bob adds dave; the stewards commit after the window and dave gets a Welcome.
  const daveJoined = waitFor(dave, "conversation", (c) => c.id === group.id, 20_000);
  const four = waitFor(alice, "members", (e) => e.conversationId === group.id && e.members.length === 4, 20_000);
  const bobGroup = await bob.conversation(group.id);
  assert(bobGroup && bobGroup.kind === "group", "bob's handle is a group");
  await bobGroup.addMembers([dave.accountId]);
  await daveJoined;
  await four;
  assert((await group.members()).length === 4, "four members");

  // Carol leaves; alice removes dave.
  const carolGroup = await carol.conversation(group.id);
  const three = waitFor(alice, "members", (e) => e.conversationId === group.id && e.members.length === 3, 20_000);
  await carolGroup.leave();
  await three;
  const two = waitFor(alice, "members", (e) => e.conversationId === group.id && e.members.length === 2, 20_000);
  // Bob sends next: until he has merged the removal himself, his messages are still in
  // the epoch dave holds (MLS), so the check waits for bob's own view too.
  const bobTwo = waitFor(bob, "members", (e) => e.conversationId === group.id && e.members.length === 2, 20_000);
  await group.removeMembers([dave.accountId]);
  await two;
  await bobTwo;
  const left = (await group.members()).map((m) => m.accountId).sort();
  assert(left.join() === [alice.accountId, bob.accountId].sort().join(), "alice and bob remain");

  const daveSaw = [];
  dave.on("message", (m) => daveSaw.push(m.text));
  const aliceGets = waitFor(alice, "message", (m) => m.text === "still here");
  await bobGroup.send("still here");
  await aliceGets;
  await rejectsWith(carolGroup.send("can I?"), "NOT_A_MEMBER");
  // What dave does not read means something only once he has handled what bob published
  // after it: a direct message bob sends him next. A chat handles its input one at a time,
  // in the order the network hands it over, so when dave reads that, "still here" has been
  // through his client too.
  const daveGetsLater = waitFor(dave, "message", (m) => m.text === "after the group message", 20_000);
  await (await bob.startDirect(dave.accountId)).send("after the group message");
  await daveGetsLater;
  assert(!daveSaw.includes("still here"), `a removed member reads nothing new (dave read ${daveSaw})`);
  for (const chat of chats) await chat.close();
  return { members: left.length };
}

/**
 * Group permissions set at creation (only stewards add and rename: a member's call is
 * PERMISSION_DENIED), and the app's vote hook: two members of four vote NO on an add,
 * which never commits, while a rename they approve does.
 */
export async function groupPermissionsAndVotes(logos) {
  const hub = logos.createMemoryHub();
  const timing = { commitWindowMs: 200, freezeMs: 1500, voteTimeoutMs: 1500, retryMs: 300 };
  const asked = [];
  const hook = (name) => async (request) => {
    asked.push({ name, ...request });
    return request.kind !== "add";
  };
  const open = async (name, onVote) => (await logos.connect("memory", { hub })).chat({ name, store: "memory", onVote });
  const [alice, bob, carol, dave, erin] = [await open("alice"), await open("bob"), await open("carol", hook("carol")), await open("dave", hook("dave")), await open("erin")];
  const chats = [alice, bob, carol, dave, erin];
  await rejectsWith(alice.createGroup({ name: "x", members: [bob.accountId], permissions: { add: "admins" } }), "INVALID_ARGUMENT");

  // Only stewards may add or rename.
  const joined = [bob, carol].map((c) => waitFor(c, "conversation", (x) => x.kind === "group" && x.name === "strict"));
  const strict = await alice.createGroup({ name: "strict", members: [bob.accountId, carol.accountId], timing, permissions: { add: "stewards", rename: "stewards" } });
  await Promise.all(joined);
  const stewards = await strict.stewards();
  const member = [alice, bob, carol].find((c) => !stewards.includes(c.accountId));
  assert(member, "one of three is not a steward");
  const handle = await member.conversation(strict.id);
  await rejectsWith(handle.addMembers([erin.accountId]), "PERMISSION_DENIED");
  await rejectsWith(handle.setName("mine"), "PERMISSION_DENIED");

  // The vote hook: carol and dave vote NO on adds, YES on renames.
  const all4 = [bob, carol, dave].map((c) => waitFor(c, "conversation", (x) => x.kind === "group" && x.name === "open"));
  const group = await alice.createGroup({ name: "open", members: [bob.accountId, carol.accountId, dave.accountId], timing });
  await Promise.all(all4);
  const bobGroup = await bob.conversation(group.id);
  await bobGroup.addMembers([erin.accountId]);
  const renamed = [alice, bob, carol, dave].map((c) => waitFor(c, "conversation", (x) => x.id === group.id && x.name === "renamed", 20_000));
  await bobGroup.setName("renamed");
  await Promise.all(renamed);
  const adds = asked.filter((a) => a.kind === "add" && a.conversationId === group.id);
  assert(adds.length === 2 && adds.every((a) => a.by === bob.accountId && a.accounts.join() === erin.accountId), `carol and dave were asked about erin: ${JSON.stringify(adds)}`);
  assert(asked.some((a) => a.kind === "rename" && a.name === "renamed"), "and about the rename");
  // Alice has merged the rename, so every commit before it too: an add that had committed
  // would show in her member list now.
  const members = (await group.members()).map((m) => m.accountId);
  assert(members.length === 4 && !members.includes(erin.accountId), "the add two of four voted down did not commit");
  // An invitation erin would have been sent went out before the rename committed; a direct
  // chat alice opens with her now comes after it, and erin handles her input in order.
  const erinJoined = waitFor(erin, "conversation", (c) => c.kind === "direct", 20_000);
  await alice.startDirect(erin.accountId);
  await erinJoined;
  const erinHas = await erin.conversations();
  assert(erinHas.length === 1 && erinHas[0].kind === "direct", `erin was never invited to the group: ${JSON.stringify(erinHas.map((c) => c.kind))}`);
  for (const chat of chats) await chat.close();
  return { members: members.length };
}

/**
 * One account on two devices (issue 13): a link code makes a second installation, which
 * joins the existing chat; both read bob, each sees the other's sends as outgoing; the
 * first removes the second, which stops; bad and used codes are INVALID_LINK.
 */
export async function twoInstallationsOfOneAccount(logos) {
  const hub = logos.createMemoryHub();
  const [laptopNode, phoneNode, bobNode, otherNode] = await Promise.all([1, 2, 3, 4].map(() => logos.connect("memory", { hub })));
  const laptop = await laptopNode.chat({ name: "alice-laptop", store: "memory" });
  const bob = await bobNode.chat({ name: "bob", store: "memory" });
  const dm = await laptop.startDirect(bob.accountId);
  const timing = { commitWindowMs: 200, freezeMs: 1500, voteTimeoutMs: 1500, retryMs: 300 };
  const team = await laptop.createGroup({ name: "team", members: [bob.accountId], timing });
  const bobDm = await until(() => bob.conversation(dm.id), 10_000, "bob joins").then(() => bob.conversation(dm.id));
  const laptopHeard = waitFor(laptop, "message", (m) => m.text === "before the link");
  await bobDm.send("before the link");
  await laptopHeard;

  const code = await laptop.createLink();
  assert(/^logos_link_[a-z2-7]{26}$/.test(code), `a short code: ${code}`);
  await rejectsWith(phoneNode.chat({ name: "typo", store: "memory", link: "logos_link_nonsense" }), "INVALID_LINK");
  const phone = await phoneNode.chat({ name: "alice-phone", store: "memory", link: code });
  assert(phone.accountId === laptop.accountId, "the phone is the same account");
  assert(phone.installationId !== laptop.installationId, "as another installation");
  const mine = await laptop.installations();
  assert(mine.length === 2 && mine.filter((i) => i.current).length === 1 && mine[0].addedAt instanceof Date, `installations: ${JSON.stringify(mine)}`);
  await until(async () => (await phone.conversations()).some((c) => c.id === dm.id), 10_000, "the phone joins the existing chat");
  await until(async () => (await phone.conversations()).some((c) => c.id === team.id), 20_000, "the phone joins the group (a self-service add)");
  const teamMembers = await team.members();
  assert(teamMembers.find((m) => m.accountId === laptop.accountId)?.installations.length === 2, `alice with both devices in the group: ${JSON.stringify(teamMembers)}`);
  await rejectsWith(otherNode.chat({ name: "thief", store: "memory", link: code }), "INVALID_LINK");
  assert((await laptop.installations()).length === 2, "a used code adds nobody");

  const [laptopGets, phoneGets] = [waitFor(laptop, "message", (m) => m.text === "hi both"), waitFor(phone, "message", (m) => m.text === "hi both")];
  await bobDm.send("hi both");
  const [l1, p1] = await Promise.all([laptopGets, phoneGets]);
  assert(!l1.outgoing && !p1.outgoing && p1.sender.accountId === bob.accountId && p1.sender.verified, "both devices read bob, verified");
  const phoneDm = await phone.conversation(dm.id);
  const [bobGets, laptopSees] = [waitFor(bob, "message", (m) => m.text === "from the phone"), waitFor(laptop, "message", (m) => m.text === "from the phone")];
  await phoneDm.send("from the phone");
  const [b1, l2] = await Promise.all([bobGets, laptopSees]);
  assert(b1.sender.accountId === laptop.accountId && b1.sender.verified, "bob verifies the phone as alice");
  const seen = await bobDm.members();
  assert(seen.length === 2 && seen.every((m) => m.verified), `members are verified: ${JSON.stringify(seen)}`);
  assert(seen.find((m) => m.accountId === laptop.accountId).installations.length === 2, "alice with both devices");
  assert(l2.outgoing, "the laptop shows the phone's send as its own");
  assert((await laptop.conversations()).find((c) => c.id === dm.id).unread === 2, "own sends are not unread");
  const bobTeamGets = waitFor(bob, "message", (m) => m.text === "group, from the phone");
  await (await phone.conversation(team.id)).send("group, from the phone");
  const g1 = await bobTeamGets;
  assert(g1.sender.accountId === laptop.accountId && g1.sender.verified, "bob verifies the phone in the group");
  const phoneHistory = (await phoneDm.history()).map((m) => `${m.outgoing ? ">" : "<"}${m.text}`);
  assert(phoneHistory.join("|") === "<before the link|<hi both|>from the phone", `the phone shows history from before it joined: ${phoneHistory}`);

  const removed = waitFor(phone, "error", (e) => e.code === "INSTALLATION_REMOVED");
  await laptop.removeInstallation(phone.installationId);
  await removed;
  assert((await laptop.installations()).length === 1, "one installation left");
  await until(async () => (await (await bob.conversation(team.id)).members()).find((m) => m.accountId === laptop.accountId)?.installations.length === 1, 20_000, "the group takes the removed phone out");
  const laptopGets2 = waitFor(laptop, "message", (m) => m.text === "after");
  let phoneHeard = false;
  phone.on("message", (m) => {
    if (m.text === "after") phoneHeard = true;
  });
  await bobDm.send("after");
  await laptopGets2;
  await rejectsWith(phoneDm.send("still here?"), "INSTALLATION_REMOVED");
  assert(!phoneHeard, "the removed phone reads nothing new");
  await Promise.all([laptopNode, phoneNode, bobNode, otherNode].map((n) => n.close()));
  return { ok: true };
}

/**
 * Keys rotate without breaking a chat; when every device is lost, a passphrase-wrapped
 * recovery secret restores the account on a new one, which revokes the lost device and
 * is found by bob's next startDirect (issue 13).
 */
export async function rotateThenRecoverAfterLosingEveryDevice(logos) {
  const hub = logos.createMemoryHub();
  const [aliceNode, bobNode, newNode] = await Promise.all([1, 2, 3].map(() => logos.connect("memory", { hub })));
  const alice = await aliceNode.chat({ name: "alice", store: "memory" });
  const bob = await bobNode.chat({ name: "bob", store: "memory" });
  const dm = await alice.startDirect(bob.accountId);
  await until(async () => (await bob.conversation(dm.id)) !== undefined, 10_000, "bob joins");
  const bobDm = await bob.conversation(dm.id);

  await alice.rotateKeys();
  const aliceGets = waitFor(alice, "message", (m) => m.text === "after the rotation");
  await bobDm.send("after the rotation");
  await aliceGets;
  const bobGets = waitFor(bob, "message", (m) => m.text === "rotated");
  await dm.send("rotated");
  await bobGets;

  const secret = await alice.exportRecovery({ passphrase: "correct horse" });
  assert(secret.startsWith("logos_recovery_pw_") && !secret.includes(alice.accountId), "a wrapped secret");
  const lost = alice.installationId;
  await aliceNode.close();
  await rejectsWith(newNode.chat({ name: "x", store: "memory", recover: secret, recoverPassphrase: "wrong" }), "WRONG_PASSPHRASE");
  await rejectsWith(newNode.chat({ name: "y", store: "memory", recover: "logos_recovery_nothex" }), "INVALID_ARGUMENT");
  const restored = await newNode.chat({ name: "alice-new", store: "memory", recover: secret, recoverPassphrase: "correct horse" });
  assert(restored.accountId === alice.accountId && restored.installationId !== lost, "the same account on a new installation");
  assert((await restored.installations()).length === 2, "the lost device is still listed");
  await restored.removeInstallation(lost);
  assert((await restored.installations()).map((i) => i.installationId).join() === restored.installationId, "only the new one is left");

  const joined = waitFor(restored, "conversation");
  const again = await bob.startDirect(restored.accountId);
  assert(again.id !== dm.id, "bob's chat with the revoked device is not reused");
  assert((await joined).id === again.id, "the restored device joins the new chat");
  const restoredGets = waitFor(restored, "message", (m) => m.text === "welcome back");
  await again.send("welcome back");
  const m = await restoredGets;
  assert(m.sender.accountId === bob.accountId && m.sender.verified, "from bob, verified");
  const old = (await bob.conversations()).find((c) => c.id === dm.id);
  assert(old && !old.verified, "the old chat shows as unverified");
  await Promise.all([bobNode, newNode].map((n) => n.close()));
  return { ok: true };
}

/**
 * PRIV2: what an installation publishes while registering, chatting and linking a device
 * names nobody in clear (no account address, no installation key, as hex or as bytes),
 * yet whoever knows the address still finds the account. With `publicRecords` the
 * plain libchat records go as well, and they do name the account.
 */
export async function registeringAndLinkingPublishNothingInClear(logos) {
  const hub = logos.createMemoryHub();
  const published = [];
  const wrap = (t) => ({
    maxMessageSize: t.maxMessageSize,
    publish: (topic, payload) => {
      published.push({ topic, payload: new Uint8Array(payload) });
      return t.publish(topic, payload);
    },
    subscribe: (topics, cb) => t.subscribe(topics, cb),
    query: (q) => t.query(q),
    close: () => t.close(),
  });
  const node = () => logos.connect(wrap(hub.transport()));
  const laptop = await (await node()).chat({ name: "priv-laptop", store: "memory" });
  const bob = await (await node()).chat({ name: "priv-bob", store: "memory" });
  const dm = await laptop.startDirect(bob.accountId);
  await until(() => bob.conversation(dm.id), 10_000, "bob joins");
  const phone = await (await node()).chat({ name: "priv-phone", store: "memory", link: await laptop.createLink() });
  await until(async () => (await phone.conversations()).some((c) => c.id === dm.id), 10_000, "the phone joins the chat");
  const heard = waitFor(bob, "message", (m) => m.text === "sealed all the way");
  await (await phone.conversation(dm.id)).send("sealed all the way");
  assert((await heard).sender.verified, "bob found and verified the phone");

  const enc = new TextEncoder();
  const hexBytes = (h) => Uint8Array.from(h.match(/../g).map((b) => parseInt(b, 16)));
  const ids = [laptop.accountId, bob.accountId, laptop.installationId, phone.installationId, bob.installationId];
  const needles = ids.flatMap((h) => [enc.encode(h), hexBytes(h)]);
  const contains = (hay, needle) => {
    outer: for (let i = 0; i + needle.length <= hay.length; i++) {
      for (let j = 0; j < needle.length; j++) if (hay[i + j] !== needle[j]) continue outer;
      return true;
    }
    return false;
  };
  assert(published.length > 10, `traffic was seen: ${published.length}`);
  for (const { topic, payload } of published) {
    assert(!topic.includes("/store-"), `no plain registry record by default: ${topic}`);
    for (const n of needles) assert(!contains(payload, n) && !contains(enc.encode(topic), n), `an identifier in clear on ${topic}`);
  }

  const before = published.length;
  const open = await (await node()).chat({ name: "priv-open", store: "memory", publicRecords: true });
  const plain = published.slice(before).filter((p) => p.topic.includes("/store-account-"));
  assert(plain.some((p) => contains(p.payload, hexBytes(open.accountId))), "publicRecords publishes libchat's plain list");
  const fromOpen = await open.startDirect(bob.accountId);
  await until(() => bob.conversation(fromOpen.id), 10_000, "a public account still chats");
  await rejectsWith(node().then((n) => n.chat({ name: "bad", store: "memory", publicRecords: "yes" })), "INVALID_ARGUMENT");
  for (const c of [laptop, bob, phone, open]) await c.close();
  return { published: published.length };
}

/** A transport on which directory records vanish as they are published (a store that keeps none). */
function noDirectory(t) {
  return {
    maxMessageSize: t.maxMessageSize,
    publish: (topic, payload) => (/\/(store-|dir-)/.test(topic) ? Promise.resolve({ messageHash: "00" }) : t.publish(topic, payload)),
    subscribe: (topics, cb) => t.subscribe(topics, cb),
    query: (q) => t.query(q),
    close: () => t.close(),
  };
}

/**
 * Contacts (issue 14): a card alone starts a chat on a network that carries no directory;
 * a changed card is INVALID_CARD; a blocked account gets no invite through, no group
 * message, and `startDirect` to it is BLOCKED; a non-contact's chat is a request.
 */
export async function contactsCardsBlockingAndRequests(logos) {
  const hub = logos.createMemoryHub();
  // Directory records published here vanish: only cards find anyone.
  const node = () => logos.connect(noDirectory(hub.transport()));
  const alice = await (await node()).chat({ name: "c-alice", store: "memory" });
  const bob = await (await node()).chat({ name: "c-bob", store: "memory" });
  const mallory = await (await node()).chat({ name: "c-mallory", store: "memory" });
  await rejectsWith(bob.startDirect(alice.accountId), "UNKNOWN_ACCOUNT");
  const card = await alice.contactCard();
  const compact = await alice.contactCard({ compact: true });
  assert(card.startsWith("logos_chatcard_") && compact.length < 600 && compact.length < card.length, `card sizes ${card.length} / ${compact.length}`);
  const flipped = card.slice(0, 40) + (card[40] === "A" ? "B" : "A") + card.slice(41);
  await rejectsWith(bob.addContact(flipped), "INVALID_CARD");
  await rejectsWith(bob.addContact("logos_chatcard_nonsense"), "INVALID_CARD");
  const contact = await bob.addContact(card, { nickname: "Alice" });
  assert(contact.accountId === alice.accountId && contact.nickname === "Alice" && !contact.blocked, JSON.stringify(contact));
  const dm = await bob.startDirect(alice.accountId);
  await until(() => alice.conversation(dm.id), 10_000, "alice joins the chat bob started from her card");
  const info = (await alice.conversations()).find((c) => c.id === dm.id);
  assert(info.request, "bob is not alice's contact: a request");
  await alice.acceptRequest(dm.id);
  assert(!(await alice.conversations()).find((c) => c.id === dm.id).request, "accepted");
  const heard = waitFor(bob, "message", (m) => m.text === "hi from the card");
  await (await alice.conversation(dm.id)).send("hi from the card");
  assert((await heard).sender.accountId === alice.accountId, "bob reads alice");

  // Blocking: mallory (found by her card) can neither start a chat with bob nor reach him in a group.
  await bob.addContact(await mallory.contactCard());
  await alice.addContact(await mallory.contactCard());
  await mallory.addContact(await bob.contactCard());
  await bob.block(mallory.accountId);
  assert((await bob.contacts()).some((c) => c.accountId === mallory.accountId && c.blocked), "listed as blocked");
  await rejectsWith(bob.startDirect(mallory.accountId), "BLOCKED");
  const fromMallory = await mallory.startDirect(bob.accountId);
  await alice.addContact(await bob.contactCard());
  const timing = { commitWindowMs: 200, freezeMs: 1500, voteTimeoutMs: 1500, retryMs: 300 };
  const team = await alice.createGroup({ name: "team", members: [bob.accountId, mallory.accountId], timing });
  await until(async () => (await bob.conversation(team.id)) && (await mallory.conversation(team.id)), 20_000, "both join the group");
  const got = [];
  bob.on("message", (m) => got.push(m.text));
  await (await mallory.conversation(team.id)).send("spam");
  const heardAlice = waitFor(bob, "message", (m) => m.text === "from alice");
  await team.send("from alice");
  await heardAlice;
  await (await mallory.conversation(fromMallory.id)).send("direct spam");
  await new Promise((r) => setTimeout(r, 300));
  assert(!(await bob.conversation(fromMallory.id)), "mallory's invite made no conversation");
  assert(!got.includes("spam") && !got.includes("direct spam"), `nothing of mallory's: ${JSON.stringify(got)}`);
  // Mallory's own group with alice and bob: alice joins it, bob never hears of it.
  await mallory.addContact(card);
  const hers = await mallory.createGroup({ name: "hers", members: [alice.accountId, bob.accountId], timing });
  await until(() => alice.conversation(hers.id), 20_000, "alice joins mallory's group");
  await new Promise((r) => setTimeout(r, 300));
  assert(!(await bob.conversation(hers.id)), "mallory's group invite made no conversation");
  await bob.unblock(mallory.accountId);
  await bob.startDirect(mallory.accountId);
  await rejectsWith(bob.addContact("not an account"), "INVALID_ARGUMENT");
  for (const c of [alice, bob, mallory]) await c.close();
  return { card: card.length, compact: compact.length };
}

/** Decodes libchat's `AccountSubmissionV1` / `KeyPackageSubmissionV1` (fields 1, 2, 3: bytes). */
function submissionFields(bytes) {
  const out = {};
  let i = 0;
  const varint = () => {
    let v = 0;
    for (let shift = 0; ; shift += 7) {
      const b = bytes[i++];
      v += (b & 0x7f) * 2 ** shift;
      if (b < 0x80) return v;
    }
  };
  while (i < bytes.length) {
    const tag = varint();
    if ((tag & 7) !== 2) throw new Error("not a submission");
    const len = varint();
    out[tag >> 3] = bytes.subarray(i, i + len);
    i += len;
  }
  return { id: out[1], payload: out[2], signature: out[3] };
}

const hex = (b) => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
const b64 = (b) => btoa(String.fromCharCode(...b));
const unb64 = (s) => Uint8Array.from(atob(s), (c) => c.charCodeAt(0));

/**
 * `ChatOptions.directory` (issue 14): accounts found through a chat-store registry with
 * nothing on the delivery topics; what we publish is in the chat-store's format; records
 * a libchat client posts are found; the app's own flaky Directory object works through
 * the SDK's retries; a registry that never answers ends in UNKNOWN_ACCOUNT and an error.
 */
export async function registryDirectories(logos) {
  const url = logos.registryUrl;
  assert(typeof url === "string", "the runner serves a chat-store registry");
  const hub = logos.createMemoryHub();
  // What is published on the directory topics vanishes: only the registry finds anyone.
  const node = () => logos.connect(noDirectory(hub.transport()));
  const registered = async (accountId, installationId) => {
    await until(async () => (await fetch(`${url}/v0/account/${accountId}`)).status === 200, 10_000, "the list is in the registry");
    await until(async () => (await fetch(`${url}/v0/keypackage/${installationId}`)).status === 200, 10_000, "the key package is in the registry");
  };
  const alice = await (await node()).chat({ name: "r-alice", store: "memory", directory: { url } });
  const bob = await (await node()).chat({ name: "r-bob", store: "memory", directory: { url: url + "/" } });
  await registered(bob.accountId, bob.installationId);
  const dm = await alice.startDirect(bob.accountId);
  await until(() => bob.conversation(dm.id), 10_000, "bob joins the chat alice found him for in the registry");
  const heard = waitFor(bob, "message", (m) => m.text === "via the registry");
  await dm.send("via the registry");
  assert((await heard).sender.accountId === alice.accountId, "bob reads alice, verified");
  // What we published is the chat-store's format: the key package is `ts_ms u64 LE ‖ KeyPackage`.
  const acct = await (await fetch(`${url}/v0/account/${bob.accountId}`)).json();
  assert(typeof acct.payload === "string" && unb64(acct.signature).length === 64 && typeof acct.updated_at === "number", JSON.stringify(acct).slice(0, 200));
  const kp = await (await fetch(`${url}/v0/keypackage/${bob.installationId}`)).json();
  const kpPayload = unb64(kp.payload);
  const ts = Number(new DataView(kpPayload.buffer).getBigUint64(0, true));
  assert(Math.abs(ts - Date.now()) < 120_000 && kpPayload.length > 1000, `key package ts ${ts}`);

  // A libchat client posts its own records: carol's SDK wrote libchat's submissions on the
  // topics (publicRecords); posted byte for byte in the chat-store's JSON, alice finds her.
  const carol = await (await logos.connect(hub.transport())).chat({ name: "r-carol", store: "memory", publicRecords: true });
  let posted = 0;
  const shared = ["/logos-chat/1/store-account-v0/proto", "/logos-chat/1/store-keypackage-v0/proto"];
  for await (const m of hub.transport().query({ contentTopics: shared })) {
    const f = submissionFields(m.payload);
    const id = hex(f.id);
    if (id !== carol.accountId && id !== carol.installationId) continue;
    const account = m.contentTopic === shared[0];
    const body = account ? { account_pub: id, payload: b64(f.payload), signature: b64(f.signature) } : { device_id: id, payload: b64(f.payload), signature: b64(f.signature) };
    const res = await fetch(`${url}/v0/${account ? "account" : "keypackage"}`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
    assert(res.status === 204 || res.status === 409, `posted: ${res.status}`);
    posted++;
  }
  assert(posted >= 2, `carol's list and key package posted (${posted})`);
  const toCarol = await alice.startDirect(carol.accountId);
  await until(() => carol.conversation(toCarol.id), 10_000, "carol joins: found from records posted in libchat's format");

  // The app's own Directory: every third call fails, and the SDK tries again.
  const held = new Map();
  let calls = 0;
  const flaky = async (f) => {
    if (++calls % 3 === 1) throw new Error("flaky registry");
    return f();
  };
  const own = {
    putAccount: (id, r) => flaky(() => void held.set(`a${id}`, r)),
    getAccount: (id) => flaky(() => held.get(`a${id}`)),
    putKeyPackage: (id, r) => flaky(() => void held.set(`k${id}`, r)),
    getKeyPackage: (id) => flaky(() => held.get(`k${id}`)),
  };
  const dave = await (await node()).chat({ name: "r-dave", store: "memory", directory: own });
  const erin = await (await node()).chat({ name: "r-erin", store: "memory", directory: own });
  await until(() => held.has(`a${erin.accountId}`) && held.has(`k${erin.installationId}`), 10_000, "erin's records in the app's directory");
  const toErin = await dave.startDirect(erin.accountId);
  await until(() => erin.conversation(toErin.id), 10_000, "erin joins: found in the app's directory");
  assert(calls > 6, `calls ${calls}`);

  // A store that forgets within 300 ms: an account on the delivery topics is not found
  // once its records are forgotten; one in the registry still is.
  const brief = logos.createMemoryHub({ retentionMs: 300 });
  const onBrief = (name, options) => logos.connect(brief.transport()).then((n) => n.chat({ name, store: "memory", ...options }));
  const kept = await onBrief("r-kept", { directory: { url } });
  const topical = await onBrief("r-topical", {});
  await registered(kept.accountId, kept.installationId);
  await new Promise((r) => setTimeout(r, 400));
  const finder = await onBrief("r-finder", { directory: { url } });
  const seeker = await onBrief("r-seeker", {});
  await rejectsWith(seeker.startDirect(topical.accountId), "UNKNOWN_ACCOUNT");
  const late = await finder.startDirect(kept.accountId);
  await until(() => kept.conversation(late.id), 10_000, "found in the registry after the store forgot");

  // Bad options, and a registry nobody answers.
  for (const directory of [{ url: 5 }, "nope", { url: "ftp://127.0.0.1/" }, { putAccount() {} }]) {
    await rejectsWith(node().then((n) => n.chat({ name: "r-bad", store: "memory", directory })), "INVALID_ARGUMENT");
  }
  const lone = await (await node()).chat({ name: "r-lone", store: "memory", directory: { url: "http://127.0.0.1:9/" } });
  await rejectsWith(lone.startDirect(bob.accountId), "TRANSPORT_UNAVAILABLE");
  for (const c of [alice, bob, carol, dave, erin, lone, kept, topical, finder, seeker]) await c.close();
  return { posted, calls };
}

/**
 * Content types (issue 15): JSON, Markdown, an app's own type and bytes arrive as sent; a
 * reply and a reaction reference the right message; history keeps them; plain text is text.
 */
export async function contentTypesRepliesAndReactions(logos) {
  const hub = logos.createMemoryHub();
  const alice = await (await logos.connect(hub.transport())).chat({ name: "ct-alice", store: "memory" });
  const bob = await (await logos.connect(hub.transport())).chat({ name: "ct-bob", store: "memory" });
  const dm = await alice.startDirect(bob.accountId);
  await until(() => bob.conversation(dm.id), 10_000, "bob joins");
  const got = [];
  bob.on("message", (m) => got.push(m));
  const json = await dm.send(JSON.stringify({ n: 1 }), { contentType: "application/json" });
  await dm.send("**bold**", { contentType: "text/markdown" });
  await dm.send(new Uint8Array([0, 1, 255]), { contentType: "com.example.poll" });
  await dm.send(new Uint8Array([104, 105]));
  const last = await dm.send("plain");
  await until(() => got.length >= 5, 10_000, () => `five messages (${got.length})`);
  const byType = Object.fromEntries(got.map((m) => [m.contentType, m]));
  assert(JSON.parse(byType["application/json"].text).n === 1 && byType["application/json"].id === json.messageId, "JSON arrives as application/json");
  assert(byType["text/markdown"].text === "**bold**", "markdown");
  assert(Array.from(byType["com.example.poll"].content).join() === "0,1,255" && byType["com.example.poll"].text === undefined, "an app's type, bytes");
  assert(byType["application/octet-stream"] && Array.from(byType["application/octet-stream"].content).join() === "104,105", "bytes stay bytes even when they read as UTF-8");
  assert(byType["text/plain"].text === "plain", "plain text");
  const bobDm = await bob.conversation(dm.id);
  const heard = [];
  alice.on("message", (m) => heard.push(m));
  // Acks name the newest message a member has of ours (what came before is implied).
  const delivered = waitFor(alice, "receipt", (r) => r.messageId === last.messageId && r.state === "delivered");
  const reply = await bobDm.reply(json.messageId, "got it");
  await bobDm.react(json.messageId, "👍");
  await bobDm.react(json.messageId, "👍", { remove: true });
  await until(() => heard.length >= 3, 10_000, "the reply and reactions");
  assert(heard[0].id === reply.messageId && heard[0].replyTo === json.messageId && heard[0].text === "got it", JSON.stringify(heard[0]));
  assert(heard[1].contentType === "application/vnd.logos.reaction" && heard[1].text === "👍" && heard[1].replyTo === json.messageId && !heard[1].remove, "a reaction");
  assert(heard[2].remove === true, "taken back");
  const receipt = await delivered;
  assert(receipt.by.installationId === bob.installationId && receipt.conversationId === dm.id, "bob's installation has alice's messages");
  // The list puts the newest activity first, with a preview of the last message.
  const carol = await (await logos.connect(hub.transport())).chat({ name: "ct-carol", store: "memory" });
  const other = await alice.startDirect(carol.accountId);
  assert((await alice.conversations())[0].id === other.id, "a new chat goes first");
  await dm.send("the newest line");
  const listed = await alice.conversations();
  assert(listed[0].id === dm.id && listed[0].lastMessage === "the newest line", JSON.stringify(listed[0]));
  const history = await alice.conversation(dm.id).then((c) => c.history());
  assert(history.find((m) => m.id === json.messageId).contentType === "application/json", "history keeps the type");
  assert(history.find((m) => m.id === reply.messageId).replyTo === json.messageId, "and the reference");
  await rejectsWith(dm.send("x", { contentType: "" }), "INVALID_ARGUMENT");
  await rejectsWith(dm.send("x", { contentType: 5 }), "INVALID_ARGUMENT");
  await rejectsWith(dm.send(new Uint8Array([255]), { contentType: "text/plain" }), "INVALID_ARGUMENT");
  await rejectsWith(bobDm.react(json.messageId, ""), "INVALID_ARGUMENT");
  await rejectsWith(bobDm.reply("not an id!", "x"), "INVALID_ARGUMENT");
  for (const c of [alice, bob, carol]) await c.close();
  return { types: Object.keys(byType).length };
}

/**
 * Typing and read receipts (issue 15): they reach the other side as events, are never
 * stored or counted unread, and `signals: false` sends neither.
 */
export async function typingAndReadReceipts(logos) {
  const hub = logos.createMemoryHub();
  const alice = await (await logos.connect(hub.transport())).chat({ name: "ty-alice", store: "memory" });
  const bob = await (await logos.connect(hub.transport())).chat({ name: "ty-bob", store: "memory" });
  const quiet = await (await logos.connect(hub.transport())).chat({ name: "ty-quiet", store: "memory", signals: false });
  const dm = await alice.startDirect(bob.accountId);
  await until(() => bob.conversation(dm.id), 10_000, "bob joins");
  const typingOn = waitFor(bob, "typing", (t) => t.conversationId === dm.id && t.typing);
  await dm.setTyping(true);
  const on = await typingOn;
  assert(on.by.installationId === alice.installationId, "alice is typing");
  const typingOff = waitFor(bob, "typing", (t) => !t.typing);
  await dm.setTyping(false);
  await typingOff;
  const heard = waitFor(bob, "message", (m) => m.text === "read this");
  const sent = await dm.send("read this");
  const m = await heard;
  const read = waitFor(alice, "receipt", (r) => r.state === "read" && r.messageId === sent.messageId);
  const bobDm = await bob.conversation(dm.id);
  await bobDm.markRead(m.id);
  const r = await read;
  assert(r.by.installationId === bob.installationId && r.conversationId === dm.id, "bob read it");
  assert((await bob.conversations()).find((c) => c.id === dm.id).unread === 0, "unread cleared");
  assert((await alice.conversations()).find((c) => c.id === dm.id).unread === 0, "signals are never unread");
  assert((await dm.history()).length === 1 && (await bobDm.history()).length === 1, "nor stored");
  // signals: false sends no typing and no receipt.
  const toQuiet = await alice.startDirect(quiet.accountId);
  await until(() => quiet.conversation(toQuiet.id), 10_000, "quiet joins");
  let noise = 0;
  alice.on("typing", () => noise++);
  alice.on("receipt", (e) => e.state === "read" && noise++);
  const qDm = await quiet.conversation(toQuiet.id);
  const q = await toQuiet.send("to quiet");
  await until(async () => (await qDm.history()).length === 1, 10_000, "quiet has it");
  await qDm.setTyping(true);
  await qDm.markRead(q.messageId);
  await new Promise((res) => setTimeout(res, 300));
  assert(noise === 0, `quiet sent signals (${noise})`);
  await rejectsWith(dm.setTyping("yes"), "INVALID_ARGUMENT");
  for (const c of [alice, bob, quiet]) await c.close();
  return { ok: true };
}

export const all = { typingAndReadReceipts, contentTypesRepliesAndReactions, registryDirectories, twoInstallationsOfOneAccount, registeringAndLinkingPublishNothingInClear, contactsCardsBlockingAndRequests, rotateThenRecoverAfterLosingEveryDevice, groupLifecycle, groupPermissionsAndVotes, twoAccountsChatBothWays, startDirectRejectsBadAccounts, messagingApi, bringYourOwnTransport, outboxRetriesTransientFailures, aLostPushIsRepairedFromTheStore };
