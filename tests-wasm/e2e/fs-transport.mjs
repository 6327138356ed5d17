// A Transport shared by processes through a directory (tests only): the public
// "bring your own Transport" interface, so that restarts and crashes of separate
// Node processes can be tested without a network. Messages are JSON lines appended
// to one file; subscribers poll it.
import { createHash } from "node:crypto";
import { appendFileSync, existsSync, mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";

export function fsTransport(dir) {
  mkdirSync(dir, { recursive: true });
  const file = join(dir, "messages.jsonl");
  const read = () =>
    existsSync(file)
      ? readFileSync(file, "utf8").split("\n").filter(Boolean).map((l) => {
          const m = JSON.parse(l);
          return { contentTopic: m.t, payload: Buffer.from(m.p, "base64"), messageHash: m.h, timestamp: new Date(m.ts) };
        })
      : [];
  const timers = new Set();
  return {
    maxMessageSize: 150 * 1024,
    async publish(contentTopic, payload) {
      const ts = Date.now();
      const messageHash = createHash("sha256").update(contentTopic).update(payload).update(String(ts)).digest("hex");
      appendFileSync(file, JSON.stringify({ t: contentTopic, p: Buffer.from(payload).toString("base64"), h: messageHash, ts }) + "\n");
      return { messageHash };
    },
    async subscribe(topics, onMessage) {
      const want = new Set(topics);
      let seen = read().length;
      const timer = setInterval(() => {
        const all = read();
        for (const m of all.slice(seen)) if (want.has(m.contentTopic)) onMessage({ ...m, payload: new Uint8Array(m.payload) });
        seen = all.length;
      }, 25);
      timers.add(timer);
      return { unsubscribe: async () => (clearInterval(timer), timers.delete(timer)) };
    },
    async *query(q) {
      const topics = new Set(q.contentTopics);
      for (const m of read()) if (topics.has(m.contentTopic)) yield { ...m, payload: new Uint8Array(m.payload) };
    },
    async close() {
      for (const t of timers) clearInterval(t);
      timers.clear();
    },
  };
}
