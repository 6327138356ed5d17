/**
 * The Logos Delivery transport in `mode: "core"` (Node only): a js-libp2p node that runs
 * Waku relay (gossipsub, see relay-pubsub.ts) itself instead of asking a service node.
 *
 * - publish: a WakuMessage (timestamp always set) published on the content topic's shard
 *   by autosharding; no peer on the shard is a transient failure (the outbox retries).
 * - subscribe: the shard's gossipsub topic, filtered by content topic, fanned out.
 * - query: store v3 against a connected peer that serves it (the entry nodes do).
 * - health: no relay peer → disconnected, one → partially-connected, more → connected; while
 *   disconnected the entry nodes are dialled again every second, and on the way back every
 *   subscribed topic is caught up from the store.
 */
import "../polyfill.js";
import { noise } from "@chainsafe/libp2p-noise";
import { identify } from "@libp2p/identify";
import { mplex } from "@libp2p/mplex";
import { ping } from "@libp2p/ping";
import { multiaddr } from "@multiformats/multiaddr";
import { StoreCodec } from "@waku/core";
import { proto_message, proto_store } from "@waku/proto";
import * as lp from "it-length-prefixed";
import { pipe } from "it-pipe";
import { createLibp2p, type Libp2p } from "libp2p";
import { LogosChatError } from "../errors.js";
import type { NetworkPreset } from "../networks.js";
import type { DeliveryMessage, Subscription } from "../types.js";
import { glue } from "../wasm.js";
import { wakuRelay } from "./relay-pubsub.js";
import { type Health, HealthState, TopicFanout } from "./topics.js";
import type { HealthTransport, WakuOptions } from "./waku.js";

interface Pubsub {
  subscribe(topic: string): void;
  unsubscribe(topic: string): void;
  publish(topic: string, data: Uint8Array): Promise<{ recipients: unknown[] }>;
  getPeers(): unknown[];
  addEventListener(type: "message", cb: (e: CustomEvent<{ topic: string; data: Uint8Array }>) => void): void;
}

/** How often the entry nodes are dialled again while no peer is connected. */
const REDIAL_MS = 1_000;
/** js-waku's store page size; the store protocol's maximum is 100. */
const STORE_PAGE = 100;

const toHex = (b: Uint8Array) => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
const fromHex = (h: string) => Uint8Array.from(h.match(/../g) ?? [], (x) => parseInt(x, 16));

export async function createRelayTransport(preset: NetworkPreset, o: WakuOptions, transports: unknown[]): Promise<HealthTransport> {
  let node: Libp2p<{ pubsub: Pubsub }>;
  try {
    node = (await createLibp2p({
      transports: transports as never,
      connectionEncrypters: [noise()],
      streamMuxers: [mplex()],
      connectionGater: o.local ? { denyDialMultiaddr: () => false } : undefined,
      services: { identify: identify(), ping: ping(), pubsub: wakuRelay() as never },
    })) as unknown as Libp2p<{ pubsub: Pubsub }>;
    await node.start();
  } catch (e) {
    throw new LogosChatError("TRANSPORT_UNAVAILABLE", `could not start a relay node: ${(e as Error).message}`, { cause: e });
  }
  const t = new RelayTransport(node, preset, o.entryNodes);
  await t.waitForPeers(o.waitMs ?? 15_000, o.signal);
  return t;
}

class RelayTransport implements HealthTransport {
  readonly maxMessageSize: number;
  private readonly fanout = new TopicFanout();
  private readonly state = new HealthState();
  /** Subscribed content topics per shard topic (a shard is left when none remains). */
  private readonly shards = new Map<string, Set<string>>();
  private readonly redial: ReturnType<typeof setInterval>;
  private closed = false;

  constructor(private readonly node: Libp2p<{ pubsub: Pubsub }>, private readonly preset: NetworkPreset, private readonly entryNodes: string[]) {
    this.maxMessageSize = preset.maxMessageSize;
    node.services.pubsub.addEventListener("message", (e) => this.onRelayMessage(e.detail.topic, e.detail.data));
    const update = () => this.updateHealth();
    node.addEventListener("peer:identify", update);
    node.addEventListener("peer:disconnect", update);
    // gossipsub learns a peer's topics a moment after the connection: re-check then.
    node.services.pubsub.addEventListener("subscription-change" as "message", update as never);
    this.redial = setInterval(() => {
      if (this.node.getPeers().length === 0) void this.dialEntryNodes();
    }, REDIAL_MS);
    (this.redial as { unref?: () => void }).unref?.();
    void this.dialEntryNodes();
  }

  get health(): Health {
    return this.state.current;
  }

  onHealth(cb: (h: Health) => void): () => void {
    return this.state.on(cb);
  }

  private updateHealth(): void {
    if (this.closed) return;
    const peers = this.node.services.pubsub.getPeers().length;
    const back = this.state.set(peers === 0 ? "disconnected" : peers === 1 ? "partially-connected" : "connected");
    if (back) void this.fanout.catchUp((q) => this.query(q));
  }

  private async dialEntryNodes(): Promise<void> {
    await Promise.all(this.entryNodes.map((a) => this.node.dial(multiaddr(a)).catch(() => undefined)));
  }

  /** Resolves when a relay peer is connected, or after `ms`. */
  async waitForPeers(ms: number, signal?: AbortSignal): Promise<void> {
    const end = Date.now() + ms;
    while (Date.now() < end && !signal?.aborted) {
      this.updateHealth();
      if (this.state.current !== "disconnected") return;
      await new Promise((r) => setTimeout(r, 100));
    }
    if (signal?.aborted) throw new LogosChatError("TRANSPORT_UNAVAILABLE", "connect was aborted");
  }

  private ensureOpen(): void {
    if (this.closed) throw new LogosChatError("CLOSED", "this transport is closed");
  }

  private shardOf(contentTopic: string): string {
    try {
      return glue.pubsubTopic(this.preset.clusterId, contentTopic, this.preset.shards);
    } catch (e) {
      throw new LogosChatError("INVALID_ARGUMENT", `bad content topic ${contentTopic}: ${String((e as { message?: string }).message ?? e)}`);
    }
  }

  private toDelivery(pubsubTopic: string, m: proto_message.WakuMessage): DeliveryMessage {
    const ts = m.timestamp ?? 0n;
    return {
      contentTopic: m.contentTopic,
      payload: m.payload,
      messageHash: glue.wakuMessageHash(pubsubTopic, m.payload, m.contentTopic, ts),
      timestamp: new Date(Number(ts / 1_000_000n)),
    };
  }

  private onRelayMessage(pubsubTopic: string, data: Uint8Array): void {
    if (data.length > this.maxMessageSize || !this.shards.get(pubsubTopic)) return;
    let m: proto_message.WakuMessage;
    try {
      m = proto_message.WakuMessage.decode(data);
    } catch {
      return; // not a WakuMessage: relay peers drop it too
    }
    if (this.shards.get(pubsubTopic)?.has(m.contentTopic)) this.fanout.deliver(m.contentTopic, this.toDelivery(pubsubTopic, m));
  }

  async publish(contentTopic: string, payload: Uint8Array): Promise<{ messageHash: string }> {
    this.ensureOpen();
    const pubsubTopic = this.shardOf(contentTopic);
    const timestamp = BigInt(Date.now()) * 1_000_000n;
    const bytes = proto_message.WakuMessage.encode({ payload, contentTopic, timestamp } as proto_message.WakuMessage);
    if (bytes.length > this.maxMessageSize) throw new LogosChatError("PAYLOAD_TOO_LARGE", `encoded message is ${bytes.length} bytes, the limit is ${this.maxMessageSize}`);
    try {
      const r = await this.node.services.pubsub.publish(pubsubTopic, bytes);
      if (r.recipients.length === 0) throw new Error("no relay peer on the shard");
    } catch (e) {
      throw new LogosChatError("TRANSPORT_UNAVAILABLE", `relay publish failed: ${(e as Error).message}`, { cause: e });
    }
    return { messageHash: glue.wakuMessageHash(pubsubTopic, payload, contentTopic, timestamp) };
  }

  async subscribe(contentTopics: string[], onMessage: (m: DeliveryMessage) => void): Promise<Subscription> {
    this.ensureOpen();
    const shards = contentTopics.map((t) => this.shardOf(t));
    contentTopics.forEach((topic, i) => {
      if (!this.fanout.add(topic, onMessage)) return;
      const shard = shards[i]!;
      let set = this.shards.get(shard);
      if (!set) {
        this.shards.set(shard, (set = new Set()));
        this.node.services.pubsub.subscribe(shard);
      }
      set.add(topic);
    });
    return {
      unsubscribe: async () => {
        contentTopics.forEach((topic, i) => {
          if (!this.fanout.remove(topic, onMessage)) return;
          const shard = shards[i]!;
          const set = this.shards.get(shard);
          set?.delete(topic);
          if (set && set.size === 0) {
            this.shards.delete(shard);
            this.node.services.pubsub.unsubscribe(shard);
          }
        });
      },
    };
  }

  /** A connected peer that serves store v3. */
  private async storePeer(): Promise<Parameters<Libp2p["dialProtocol"]>[0]> {
    for (const peer of this.node.getPeers()) {
      const info = await this.node.peerStore.get(peer).catch(() => undefined);
      if (info?.protocols.includes(StoreCodec)) return peer;
    }
    throw new LogosChatError("TRANSPORT_UNAVAILABLE", "no connected peer serves the store");
  }

  private async storeRequest(req: proto_store.StoreQueryRequest): Promise<proto_store.StoreQueryResponse> {
    const stream = await this.node.dialProtocol(await this.storePeer(), StoreCodec);
    const bytes = await pipe([proto_store.StoreQueryRequest.encode(req)], (src) => lp.encode(src), stream, (src) => lp.decode(src), async (src) => {
      for await (const b of src) return b.subarray();
      return undefined;
    });
    if (!bytes) throw new Error("the store peer closed the stream");
    return proto_store.StoreQueryResponse.decode(bytes);
  }

  async *query(q: { contentTopics: string[]; since?: Date; until?: Date; messageHashes?: string[] }): AsyncIterable<DeliveryMessage> {
    this.ensureOpen();
    const wanted = new Set(q.contentTopics);
    // Content-topic queries go per pubsub topic; a hash query carries no topic or time.
    const groups = new Map<string | undefined, string[]>();
    if (q.messageHashes?.length) groups.set(undefined, []);
    else for (const t of q.contentTopics) groups.set(this.shardOf(t), [...(groups.get(this.shardOf(t)) ?? []), t]);
    const ns = (d: Date) => BigInt(d.getTime()) * 1_000_000n;
    for (const [pubsubTopic, contentTopics] of groups) {
      let cursor: Uint8Array | undefined;
      try {
        do {
          const res = await this.storeRequest({
            requestId: crypto.randomUUID(),
            includeData: true,
            pubsubTopic,
            contentTopics,
            timeStart: pubsubTopic ? ns(q.since ?? new Date(Date.now() - 24 * 3600 * 1000)) : undefined,
            timeEnd: pubsubTopic ? ns(q.until ?? new Date(Date.now() + 60_000)) : undefined,
            messageHashes: (q.messageHashes ?? []).map(fromHex),
            paginationCursor: cursor,
            paginationForward: true,
            paginationLimit: BigInt(STORE_PAGE),
          } as proto_store.StoreQueryRequest);
          if ((res.statusCode ?? 200) !== 200) throw new Error(`store answered ${res.statusCode} ${res.statusDesc ?? ""}`);
          for (const kv of res.messages) {
            if (!kv.message || !kv.pubsubTopic || (wanted.size > 0 && !wanted.has(kv.message.contentTopic))) continue;
            const m = this.toDelivery(kv.pubsubTopic, kv.message);
            if (kv.messageHash && toHex(kv.messageHash) !== m.messageHash) continue; // not what the hash names
            yield m;
          }
          cursor = res.paginationCursor;
        } while (cursor);
      } catch (e) {
        if (e instanceof LogosChatError) throw e;
        throw new LogosChatError("TRANSPORT_UNAVAILABLE", `store query failed: ${(e as Error).message}`, { cause: e });
      }
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.redial);
    await Promise.resolve(this.node.stop()).catch(() => undefined);
  }
}
