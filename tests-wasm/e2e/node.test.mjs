// Runs the scenarios against the installed package in Node (ESM), as a user would.
import { createServer } from "node:http";
import { after, test } from "node:test";
import { chatStore } from "./chat-store.mjs";
import logos, { connect, createMemoryHub, LogosChatError } from "logos-chat";
import { all } from "./scenarios.mjs";

test("the package exposes the API entry points", () => {
  if (logos.connect !== connect || typeof createMemoryHub !== "function") throw new Error("exports");
  const e = new LogosChatError("PROTOCOL", "x");
  if (!(e instanceof Error) || e.code !== "PROTOCOL") throw new Error("LogosChatError");
});

// A chat-store-compatible registry on loopback for `ChatOptions.directory = { url }`.
const store = chatStore();
const registry = createServer((req, res) => {
  store.handle(req, res).then((handled) => handled || res.writeHead(404).end());
});
await new Promise((ok) => registry.listen(0, "127.0.0.1", ok));
after(() => registry.close());
const registryUrl = `http://127.0.0.1:${registry.address().port}`;

for (const [name, run] of Object.entries(all)) {
  test(name, async () => {
    await run({ connect, createMemoryHub, registryUrl });
  });
}
