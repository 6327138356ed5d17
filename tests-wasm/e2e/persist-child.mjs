// One process of the persistence tests: opens a profile from disk, runs the steps it is
// given, prints one JSON line of results and exits (or is killed by the crash hook).
import { connect } from "logos-chat";
import { fsTransport } from "./fs-transport.mjs";

const { dir, name, net, passphrase, steps } = JSON.parse(process.argv[2]);
const out = {};
const until = async (pred, ms = 15_000) => {
  const end = Date.now() + ms;
  while (!(await pred())) {
    if (Date.now() > end) throw new Error("timed out");
    await new Promise((r) => setTimeout(r, 25));
  }
};
try {
  const node = await connect(fsTransport(net));
  const chat = await node.chat({ name, store: { path: dir }, ...(passphrase ? { passphrase } : {}) });
  out.accountId = chat.accountId;
  out.installationId = chat.installationId;
  let convo;
  const current = async () => convo ?? (convo = await chat.conversation((await chat.conversations())[0]?.id ?? "00"));
  for (const step of steps) {
    if (step.op === "startDirect") convo = await chat.startDirect(step.peer);
    if (step.op === "waitConversation") await until(async () => (await chat.conversations()).length > 0);
    if (step.op === "send") out.sent = (await (await current()).send(step.text)).messageId;
    if (step.op === "waitText") await until(async () => (await (await current())?.history({ limit: 100 }) ?? []).some((m) => m.text === step.text));
    if (step.op === "sleep") await new Promise((r) => setTimeout(r, step.ms));
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
