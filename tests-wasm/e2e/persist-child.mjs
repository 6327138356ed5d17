// One process of the persistence tests: opens a profile from disk, runs the steps it is
// given, prints one JSON line of results and exits (or is killed by the crash hook).
// Steps: startDirect, send, waitConversation, waitText (in the current conversation's
// history), waitPublished (`count` conversation messages on the network after its first
// `after` lines), ready (prints {"ready":true} with the profile open), waitFile (until `path` exists).
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { connect } from "logos-chat";
import { fsTransport } from "./fs-transport.mjs";
import { until } from "./scenarios.mjs";

const { dir, name, net, passphrase, steps } = JSON.parse(process.argv[2]);
const out = {};
const WAIT_MS = 15_000;
/** The conversation messages on the shared network after its first `after` lines (directory records aside). */
const published = (after) =>
  (existsSync(join(net, "messages.jsonl")) ? readFileSync(join(net, "messages.jsonl"), "utf8").split("\n").filter(Boolean) : [])
    .slice(after)
    .filter((l) => !/\/(store-|dir-)/.test(JSON.parse(l).t)).length;
try {
  const node = await connect(fsTransport(net));
  const chat = await node.chat({ name, store: { path: dir }, ...(passphrase ? { passphrase } : {}) });
  out.accountId = chat.accountId;
  out.installationId = chat.installationId;
  let convo;
  const current = async () => convo ?? (convo = await chat.conversation((await chat.conversations())[0]?.id ?? "00"));
  for (const step of steps) {
    if (step.op === "startDirect") convo = await chat.startDirect(step.peer);
    if (step.op === "waitConversation") await until(async () => (await chat.conversations()).length > 0, WAIT_MS, "a conversation");
    if (step.op === "send") out.sent = (await (await current()).send(step.text)).messageId;
    if (step.op === "waitText") await until(async () => (await (await current())?.history({ limit: 100 }) ?? []).some((m) => m.text === step.text), WAIT_MS, `"${step.text}" in the history`);
    if (step.op === "waitPublished") await until(() => published(step.after) >= step.count, WAIT_MS, `${step.count} conversation message(s) on the network after line ${step.after}`);
    if (step.op === "ready") console.log(JSON.stringify({ ready: true }));
    if (step.op === "waitFile") await until(() => existsSync(step.path), WAIT_MS, `${step.path} to exist`);
  }
  const c = await current();
  out.conversations = (await chat.conversations()).map((x) => ({ id: x.id, unread: x.unread }));
  out.history = c ? (await c.history({ limit: 100 })).map((m) => ({ text: m.text, outgoing: m.outgoing, from: m.sender.accountId ?? null })) : [];
  await node.close();
} catch (e) {
  out.error = { name: e?.name, code: e?.code, message: String(e?.message ?? e) };
}
console.log(JSON.stringify(out));
process.exit(0);
