// The demo: two accounts on the in-process network find each other through the
// delivery directory and chat both ways, end-to-end encrypted with MLS (X-Wing).
// Run it with `npm run demo` (it builds the package first if needed).
import logos, { createMemoryHub } from "../../pkg/entry.node.js";

const hub = createMemoryHub();
const [aliceNode, bobNode] = await Promise.all([logos.connect("memory", { hub }), logos.connect("memory", { hub })]);
const alice = await aliceNode.chat({ name: "alice" });
const bob = await bobNode.chat({ name: "bob" });
const short = (id) => `${id.slice(0, 8)}…`;
const names = { [alice.accountId]: "alice", [bob.accountId]: "bob" };

console.log(`alice is ${short(alice.accountId)} (installation ${short(alice.installationId)})`);
console.log(`bob   is ${short(bob.accountId)} (installation ${short(bob.installationId)})\n`);

function nextMessage(chat) {
  return new Promise((resolve) => {
    const off = chat.on("message", (m) => {
      off();
      resolve(m);
    });
  });
}
const print = (m) => console.log(`  ${(names[m.sender.accountId] ?? "unverified").padEnd(5)} → ${m.text}`);

bob.on("conversation", (c) => console.log(`bob joined conversation ${short(c.id)} (${c.kind})\n`));

const script = [
  [alice, "hi bob! this is end-to-end encrypted with MLS over the memory network"],
  [bob, "hi alice, got it. the directory found your key package"],
  [alice, "see you on the testnet"],
  [bob, "👋"],
];

const dm = await alice.startDirect(bob.accountId);
console.log(`alice started a direct chat ${short(dm.id)} with bob`);
const conversations = new Map([[alice, dm]]);
for (const [from, text] of script) {
  const to = from === alice ? bob : alice;
  const arrival = nextMessage(to);
  const convo = conversations.get(from) ?? (await from.conversation(dm.id));
  conversations.set(from, convo);
  await convo.send(text);
  print(await arrival);
}

const [a, b] = [await alice.conversations(), await bob.conversations()];
console.log(`\nalice has ${a.length} conversation, bob has ${b.length}; same id: ${a[0]?.id === b[0]?.id}`);
await Promise.all([aliceNode.close(), bobNode.close()]);
