#!/usr/bin/env node
/** `npx logos-chat devnode [--port N] [--host H]`: runs a local dev node until interrupted. */
import { DEFAULT_PORT, startDevNode } from "./index.js";

const args = process.argv.slice(2);
if (args[0] === "devnode") args.shift();
if (args.includes("--help") || args.includes("-h")) {
  console.log(`usage: logos-chat devnode [--port N] [--host H]

A local Logos Delivery-compatible node for development and tests: lightpush v3, filter v2,
store v3, metadata and relay (gossipsub, bridged to the light protocols) over WebSocket
(port N) and TCP (port N+1) on loopback, cluster 2 with 8 shards, 150 KiB messages. It is a development node, not a production relay: it keeps
everything in memory and forgets it when it stops. Default port ${DEFAULT_PORT}.`);
  process.exit(0);
}
const arg = (name: string) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
};
const port = arg("--port") !== undefined ? Number(arg("--port")) : DEFAULT_PORT;
if (!Number.isInteger(port) || port < 0 || port > 65534) {
  console.error("--port must be an integer from 0 to 65534");
  process.exit(2);
}
const node = await startDevNode({ port, host: arg("--host") ?? "127.0.0.1" });
for (const m of node.multiaddrs) console.log(`listening ${m}`);
const stop = async () => {
  await node.stop();
  process.exit(0);
};
process.on("SIGINT", stop);
process.on("SIGTERM", stop);
