// Persistence in Node with `store: { path }`, across real process restarts: identity,
// conversations and history come back; a crash between persist and publish sends the
// message exactly once; corruption, a wrong passphrase and a second writer are refused.
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { cpSync, mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";

const root = mkdtempSync(join(tmpdir(), "logos-chat-persist-"));
const net = join(root, "net");

function run(name, steps = [], extra = {}) {
  const args = JSON.stringify({ dir: join(root, "stores"), name, net, steps, ...extra });
  const r = spawnSync(process.execPath, ["persist-child.mjs", args], { encoding: "utf8", env: { ...process.env, ...(extra.env ?? {}) }, timeout: 60_000 });
  const line = r.stdout.trim().split("\n").pop() ?? "";
  return { ...(line ? JSON.parse(line) : {}), signal: r.signal, status: r.status, stderr: r.stderr };
}

test("alice and bob chat across process restarts; a crash between persist and publish sends once", { timeout: 240_000 }, () => {
  const a0 = run("alice");
  const b0 = run("bob");
  assert.ok(!a0.error && !b0.error, JSON.stringify([a0.error, b0.error]));

  const a1 = run("alice", [{ op: "startDirect", peer: b0.accountId }, { op: "send", text: "first message from disk" }]);
  assert.equal(a1.accountId, a0.accountId, "alice's identity came back");
  assert.ok(!a1.error, JSON.stringify(a1.error));

  const b1 = run("bob", [{ op: "waitText", text: "first message from disk" }, { op: "send", text: "reply from a new process" }]);
  assert.equal(b1.accountId, b0.accountId);
  assert.deepEqual(b1.history.map((m) => m.text), ["first message from disk", "reply from a new process"]);
  assert.equal(b1.history[0].from, a0.accountId, "sender verified after restart");

  const a2 = run("alice", [{ op: "waitText", text: "reply from a new process" }]);
  assert.deepEqual(a2.history.map((m) => m.text), ["first message from disk", "reply from a new process"]);
  assert.equal(a2.conversations.length, 1);

  // Crash: the process dies after committing, before publishing.
  const crashed = run("alice", [{ op: "send", text: "sent across a crash" }], { env: { LOGOS_CHAT_TEST_CRASH_AFTER_PERSIST: "1" } });
  assert.equal(crashed.signal, "SIGKILL", "the test hook killed the process");
  const netLines = () => readFileSync(join(net, "messages.jsonl"), "utf8").split("\n").filter(Boolean);
  const netBefore = netLines().length;
  const convoSince = (n) => netLines().slice(n).map((l) => JSON.parse(l)).filter((m) => !/\/(store-|dir-)/.test(m.t)).length;
  // Restarted, alice re-publishes what the crash left in the outbox: wait until it is out.
  const a3 = run("alice", [{ op: "waitPublished", after: netBefore, count: 1 }]);
  assert.ok(!a3.error, JSON.stringify(a3.error));
  assert.equal(a3.history.filter((m) => m.text === "sent across a crash").length, 1, "stored once");
  assert.equal(convoSince(netBefore), 1, "the first restart re-sent it");
  // Restarted again, she must not re-send it: a new message she sends is published after
  // anything her start would have re-sent, so once it is out the count says it all.
  const a4 = run("alice", [{ op: "send", text: "sent after two restarts" }, { op: "waitPublished", after: netBefore, count: 2 }]);
  assert.ok(!a4.error, JSON.stringify(a4.error));
  // Restarted twice, alice re-published the outbox once (plus her directory records each start).
  assert.equal(convoSince(netBefore), 2, `the outbox re-sent the message exactly once: ${convoSince(netBefore) - 1}`);
  // Bob reads the crash's message once: by the time he has alice's next one, a second copy would be there.
  const b2 = run("bob", [{ op: "waitText", text: "sent after two restarts" }]);
  assert.deepEqual(b2.history.map((m) => m.text), ["first message from disk", "reply from a new process", "sent across a crash", "sent after two restarts"]);
});

test("the store on disk holds no plaintext message and no key material", () => {
  const dir = join(root, "stores", "alice");
  for (const f of readdirSync(dir)) {
    const bytes = readFileSync(join(dir, f));
    for (const needle of ["first message from disk", "reply from a new process", "sent across a crash", "sent after two restarts"]) {
      assert.equal(bytes.includes(Buffer.from(needle)), false, `${f} contains "${needle}"`);
    }
  }
  assert.equal(statSync(join(dir, "store.key")).mode & 0o077, 0, "the key file is private");
});

test("a corrupted log is STORE_CORRUPT, never a silent reset", () => {
  const copy = join(root, "corrupt");
  cpSync(join(root, "stores", "alice"), join(copy, "alice"), { recursive: true });
  const log = join(copy, "alice", "log");
  const bytes = readFileSync(log);
  bytes[Math.floor(bytes.length / 2)] ^= 0x40;
  writeFileSync(log, bytes);
  const r = spawnSync(process.execPath, ["persist-child.mjs", JSON.stringify({ dir: copy, name: "alice", net, steps: [] })], { encoding: "utf8" });
  const out = JSON.parse(r.stdout.trim().split("\n").pop());
  assert.equal(out.error?.code, "STORE_CORRUPT", JSON.stringify(out));
  assert.deepEqual(readFileSync(log), bytes, "the corrupted store was left as it was");
});

test("a wrong passphrase is WRONG_PASSPHRASE and changes nothing", () => {
  const first = run("carol", [], { passphrase: "correct horse" });
  assert.ok(!first.error, JSON.stringify(first.error));
  const log = readFileSync(join(root, "stores", "carol", "log"));
  const wrong = run("carol", [], { passphrase: "battery staple" });
  assert.equal(wrong.error?.code, "WRONG_PASSPHRASE");
  const none = run("carol");
  assert.equal(none.error?.code, "WRONG_PASSPHRASE");
  assert.deepEqual(readFileSync(join(root, "stores", "carol", "log")), log);
  const again = run("carol", [], { passphrase: "correct horse" });
  assert.equal(again.accountId, first.accountId);
  // A passphrase for a store made without one is refused, not silently ignored.
  const plain = run("dora");
  assert.ok(!plain.error, JSON.stringify(plain.error));
  const given = run("dora", [], { passphrase: "not the key of anything" });
  assert.equal(given.error?.code, "WRONG_PASSPHRASE");
  assert.equal(run("dora").accountId, plain.accountId);
});

test("a second process on the same profile gets STORE_LOCKED", async () => {
  // The holder says when it has the profile open, and keeps it until told to let go.
  const release = join(root, "release-bob");
  const args = JSON.stringify({ dir: join(root, "stores"), name: "bob", net, steps: [{ op: "ready" }, { op: "waitFile", path: release }] });
  const holder = spawn(process.execPath, ["persist-child.mjs", args], { stdio: ["ignore", "pipe", "inherit"] });
  const exited = new Promise((r) => holder.on("exit", r));
  let held = "";
  const ready = new Promise((resolve, reject) => {
    holder.stdout.on("data", (d) => {
      held += d;
      if (held.includes('{"ready":true}')) resolve();
    });
    exited.then(() => reject(new Error(`the holder exited before it had the profile open: ${held}`)));
  });
  await ready;
  const second = run("bob");
  assert.equal(second.error?.code, "STORE_LOCKED", JSON.stringify(second));
  writeFileSync(release, "");
  await exited;
  assert.ok(!JSON.parse(held.trim().split("\n").pop()).error, "the first writer was undisturbed");
  assert.ok(!run("bob").error, "the lock is released on close");
});

test("a store written at schema version 1 opens with its identity and history, and its MLS state still encrypts", () => {
  const dir = join(root, "fixture");
  cpSync(join(process.cwd(), "..", "fixtures", "store-v1"), dir, { recursive: true });
  const open = (steps) => {
    const args = JSON.stringify({ dir, name: "alice", net: join(root, "fixture-net"), passphrase: "fixture passphrase", steps });
    const r = spawnSync(process.execPath, ["persist-child.mjs", args], { encoding: "utf8" });
    return JSON.parse(r.stdout.trim().split("\n").pop());
  };
  // Schema 1 kept openmls's state in JSON; it migrates as it is read, and a send uses it.
  const out = open([{ op: "send", text: "after the migration" }]);
  assert.ok(!out.error, JSON.stringify(out.error));
  assert.equal(out.accountId, "38327400a0a82f78bbdc11af5d0b4871aa185625ac726f46708e244235d55890");
  assert.deepEqual(out.conversations.map((c) => c.id), ["2dd672a322c1d0f63f8fbf14a5575058"]);
  assert.deepEqual(out.history.map((m) => [m.text, m.outgoing]), [["stored by schema version 1", true], ["and its reply", false], ["after the migration", true]]);
  // Opened again: the entries it rewrote and those it did not both read back.
  const again = open([{ op: "send", text: "and again" }]);
  assert.ok(!again.error, JSON.stringify(again.error));
  assert.equal(again.history.length, 4);
});
