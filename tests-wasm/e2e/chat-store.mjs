// A chat-store-compatible registry for the tests (the API of logos-messaging/chat-store,
// PROTOCOL.md §2.3): POST /v0/account {account_pub, payload, signature} (base64 std),
// GET /v0/account/{account_pub} → {payload, signature, updated_at}; the same for
// /v0/keypackage with device_id. Signatures are checked as the real store checks them
// (Ed25519 by the account, or by the device), a replay is 409, unknown ids are 404.
// `failNext` makes the next calls answer 503 (the SDK must retry).
import { createPublicKey, verify } from "node:crypto";

const SPKI_ED25519 = Buffer.from("302a300506032b6570032100", "hex");

function verifies(hexKey, payload, signature) {
  try {
    const key = createPublicKey({ key: Buffer.concat([SPKI_ED25519, Buffer.from(hexKey, "hex")]), format: "der", type: "spki" });
    return /^[0-9a-f]{64}$/.test(hexKey) && verify(null, payload, key, signature);
  } catch {
    return false;
  }
}

export function chatStore() {
  const accounts = new Map();
  const keyPackages = new Map();
  const state = { accounts, keyPackages, calls: [], failNext: 0 };
  const body = (req) =>
    new Promise((ok, no) => {
      const parts = [];
      req.on("data", (d) => parts.push(d));
      req.on("end", () => ok(Buffer.concat(parts).toString("utf8")));
      req.on("error", no);
    });
  /** Handles a request under /v0/; returns false for other paths. */
  state.handle = async (req, res) => {
    const path = new URL(req.url, "http://x").pathname;
    if (!path.startsWith("/v0/")) return false;
    state.calls.push(`${req.method} ${path}`);
    if (state.failNext > 0) {
      state.failNext--;
      res.writeHead(503).end();
      return true;
    }
    const m = /^\/v0\/(account|keypackage)(?:\/([0-9a-f]+))?$/.exec(path);
    if (!m) return res.writeHead(404).end(), true;
    const table = m[1] === "account" ? accounts : keyPackages;
    if (req.method === "GET" && m[2]) {
      const rec = table.get(m[2]);
      if (!rec) return res.writeHead(404).end(), true;
      res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(rec));
      return true;
    }
    if (req.method === "POST" && !m[2]) {
      let j;
      try {
        j = JSON.parse(await body(req));
      } catch {
        return res.writeHead(400).end(), true;
      }
      const id = m[1] === "account" ? j.account_pub : j.device_id;
      const payload = Buffer.from(String(j.payload ?? ""), "base64");
      const signature = Buffer.from(String(j.signature ?? ""), "base64");
      if (typeof id !== "string" || !verifies(id, payload, signature)) return res.writeHead(400).end(), true;
      const old = table.get(id);
      if (old && old.payload === j.payload) return res.writeHead(409).end(), true;
      table.set(id, { payload: j.payload, signature: j.signature, updated_at: Date.now() });
      res.writeHead(204).end();
      return true;
    }
    res.writeHead(405).end();
    return true;
  };
  return state;
}
