/**
 * The in-process network: a hub that keeps every message (as a store node does)
 * and pushes it to every subscriber, its publisher included (as a filter does).
 * Messages carry the real 14/WAKU2-MESSAGE hash and a nanosecond timestamp.
 */
import { LogosChatError } from "../errors.js";
import type { DeliveryMessage, MemoryHub, Subscription, Transport } from "../types.js";
import { ensureWasm, glue } from "../wasm.js";

/** 150 KiB, the Logos networks' limit (PROTOCOL.md §5.5). */
export const MAX_MESSAGE_SIZE = 150 * 1024;
/** The memory network's pseudo cluster for pubsub topics and hashes. */
const MEMORY_CLUSTER = 0;
const SHARDS = 8;

interface Sub {
  topics: Set<string>;
  onMessage: (m: DeliveryMessage) => void;
}

class Hub implements MemoryHub {
  readonly stored: DeliveryMessage[] = [];
  readonly byHash = new Set<string>();
  readonly subs = new Set<Sub>();
  private lastNs = 0n;

  /** `retentionMs`: how long the hub's store keeps a message (forever if unset). */
  constructor(private readonly retentionMs?: number) {}

  /** Forgets what is older than the retention, as a store node does. */
  forget(): void {
    if (this.retentionMs === undefined) return;
    const oldest = Date.now() - this.retentionMs;
    let n = 0;
    while (n < this.stored.length && this.stored[n].timestamp.getTime() < oldest) this.byHash.delete(this.stored[n++].messageHash);
    if (n > 0) this.stored.splice(0, n);
  }

  transport(): Transport {
    return new MemoryTransport(this);
  }

  /** A strictly increasing nanosecond timestamp near the wall clock. */
  stamp(): bigint {
    const now = BigInt(Date.now()) * 1_000_000n;
    this.lastNs = now > this.lastNs ? now : this.lastNs + 1n;
    return this.lastNs;
  }
}

class MemoryTransport implements Transport {
  readonly maxMessageSize = MAX_MESSAGE_SIZE;
  private closed = false;
  private readonly mine = new Set<Sub>();

  constructor(private readonly hub: Hub) {}

  private ensureOpen(): void {
    if (this.closed) throw new LogosChatError("CLOSED", "this transport is closed");
  }

  async publish(contentTopic: string, payload: Uint8Array): Promise<{ messageHash: string }> {
    this.ensureOpen();
    await ensureWasm();
    if (glue.encodedMessageSize(contentTopic, payload.length) > this.maxMessageSize) {
      throw new LogosChatError("PAYLOAD_TOO_LARGE", `message over ${this.maxMessageSize} bytes`);
    }
    this.hub.forget();
    const ts = this.hub.stamp();
    const pubsub = glue.pubsubTopic(MEMORY_CLUSTER, contentTopic, SHARDS);
    const messageHash = glue.wakuMessageHash(pubsub, payload, contentTopic, ts);
    if (this.hub.byHash.has(messageHash)) return { messageHash };
    const msg: DeliveryMessage = {
      contentTopic,
      payload: payload.slice(),
      messageHash,
      timestamp: new Date(Number(ts / 1_000_000n)),
    };
    this.hub.byHash.add(messageHash);
    this.hub.stored.push(msg);
    for (const sub of [...this.hub.subs]) {
      if (!sub.topics.has(contentTopic)) continue;
      // Delivered asynchronously (never inside publish), each subscriber its own copy.
      queueMicrotask(() => {
        if (this.hub.subs.has(sub)) sub.onMessage({ ...msg, payload: msg.payload.slice() });
      });
    }
    return { messageHash };
  }

  async subscribe(contentTopics: string[], onMessage: (m: DeliveryMessage) => void): Promise<Subscription> {
    this.ensureOpen();
    const sub: Sub = { topics: new Set(contentTopics), onMessage };
    this.hub.subs.add(sub);
    this.mine.add(sub);
    return {
      unsubscribe: async () => {
        this.hub.subs.delete(sub);
        this.mine.delete(sub);
      },
    };
  }

  async *query(q: { contentTopics: string[]; since?: Date; until?: Date; messageHashes?: string[] }): AsyncIterable<DeliveryMessage> {
    this.ensureOpen();
    const topics = new Set(q.contentTopics);
    const hashes = q.messageHashes && q.messageHashes.length > 0 ? new Set(q.messageHashes) : undefined;
    // A snapshot: what was stored when the query started, oldest first.
    this.hub.forget();
    for (const m of this.hub.stored.slice()) {
      if (hashes ? !hashes.has(m.messageHash) : !topics.has(m.contentTopic)) continue;
      if (q.since && m.timestamp < q.since) continue;
      if (q.until && m.timestamp > q.until) continue;
      yield { ...m, payload: m.payload.slice() };
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const s of this.mine) this.hub.subs.delete(s);
    this.mine.clear();
  }
}

/**
 * A new, empty in-process network. `retentionMs` makes its store forget messages older
 * than that (the public networks' stores keep about a day), to test what outlives it.
 */
export function createMemoryHub(options?: { retentionMs?: number }): MemoryHub {
  const r = options?.retentionMs;
  if (r !== undefined && !(typeof r === "number" && Number.isFinite(r) && r >= 0)) throw new LogosChatError("INVALID_ARGUMENT", "retentionMs must be a non-negative number");
  return new Hub(r);
}

let defaultHub: MemoryHub | undefined;
/** The hub `connect("memory")` uses without `options.hub`: one per process or page. */
export function sharedMemoryHub(): MemoryHub {
  defaultHub ??= createMemoryHub();
  return defaultHub;
}
