// Runs the scenarios against the installed package in Node (ESM), as a user would.
import { test } from "node:test";
import logos, { connect, createMemoryHub, LogosChatError } from "logos-chat";
import { all } from "./scenarios.mjs";

test("the package exposes the API entry points", () => {
  if (logos.connect !== connect || typeof createMemoryHub !== "function") throw new Error("exports");
  const e = new LogosChatError("PROTOCOL", "x");
  if (!(e instanceof Error) || e.code !== "PROTOCOL") throw new Error("LogosChatError");
});

for (const [name, run] of Object.entries(all)) {
  test(name, async () => {
    await run({ connect, createMemoryHub });
  });
}
