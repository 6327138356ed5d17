/**
 * The Logos Delivery transport: a js-waku (@waku/sdk 0.0.36) light node in edge mode
 * (lightpush + filter + store), used for "testnet", "devnet" and "local", so that "local"
 * exercises exactly the code path the public networks use.
 *
 * - publish: lightpush v3 with an explicit timestamp (so the hash we report is the one the
 *   network stores) and js-waku's own retries off: the SDK's outbox retries instead.
 * - subscribe: one filter subscription per content topic, fanned out to our callbacks;
 *   js-waku re-subscribes when a filter peer comes back.
 * - query: store v3, paged, by topics and time or by hashes.
 * - health: js-waku's health mapped to connected / partially-connected / disconnected;
 *   when it comes back from disconnected, every subscribed topic is caught up from the store.
 */
import "../polyfill.js";
import { createLightNode, waku, type LightNode } from "@waku/sdk";
import { LogosChatError } from "../errors.js";
import type { NetworkPreset } from "../networks.js";
import { getPlatform } from "../platform.js";
import type { DeliveryMessage, Subscription, Transport } from "../types.js";
import { type Health, HealthState, TopicFanout } from "./topics.js";
type Decoder = ReturnType<LightNode["createDecoder"]>;
type Encoder = ReturnType<LightNode["createEncoder"]>;

/** A Transport that also reports health. */
export interface HealthTransport extends Transport {
  readonly health: Health;
  onHealth(cb: (h: Health) => void): () => void;
}

const HEALTH: Record<string, Health> = {
  Unhealthy: "disconnected",
  MinimallyHealthy: "partially-connected",
  SufficientlyHealthy: "connected",
};

export interface WakuOptions {
  entryNodes: string[];
  /** Dial private addresses and plain ws:// (the local dev node). */
  local: boolean;
  /** How long to wait for a lightpush + filter + store peer before resolving anyway. */
  waitMs?: number;
  signal?: AbortSignal;
}

export async function createWakuTransport(preset: NetworkPreset, o: WakuOptions): Promise<HealthTransport> {
  const platform = getPlatform();
  const libp2p: Record<string, unknown> = { filterMultiaddrs: false, hideWebSocketInfo: true };
  if (platform.libp2pTransports) libp2p.transports = await platform.libp2pTransports();
  if (o.local) libp2p.connectionGater = { denyDialMultiaddr: () => false };
  let node: LightNode;
  try {
    node = await createLightNode({
      defaultBootstrap: false,
      bootstrapPeers: o.entryNodes,
      networkConfig: { clusterId: preset.clusterId, numShardsInCluster: preset.shards },
      libp2p,
      lightPush: { autoRetry: false },
      connectionManager: { dialCooldown: 1, failedDialCooldown: 1 },
    } as Parameters<typeof createLightNode>[0]);
    await node.start();
  } catch (e) {
    throw new LogosChatError("TRANSPORT_UNAVAILABLE", `could not start a light node: ${(e as Error).message}`, { cause: e });
  }
  const t = new WakuTransport(node, preset.maxMessageSize);
  await t.waitForPeers(o.waitMs ?? 15_000, o.signal);
  return t;
}

class WakuTransport implements HealthTransport {
  private readonly encoders = new Map<string, Encoder>();
  private readonly decoders = new Map<string, Decoder>();
  private readonly fanout = new TopicFanout();
  private readonly state = new HealthState();
  private closed = false;

  constructor(private readonly node: LightNode, readonly maxMessageSize: number) {
    (node.events as unknown as EventTarget).addEventListener("waku:health", (e: Event) => {
      const back = this.state.set(HEALTH[String((e as CustomEvent).detail)] ?? "disconnected");
      if (back) void this.fanout.catchUp((q) => this.query(q));
    });
  }

  get health(): Health {
    return this.state.current;
  }

  onHealth(cb: (h: Health) => void): () => void {
    return this.state.on(cb);
  }

  /** Resolves when a peer serves lightpush, filter and store, or after `ms`. */
  async waitForPeers(ms: number, signal?: AbortSignal): Promise<void> {
    const need = [waku.LightPushCodec, waku.FilterCodecs.SUBSCRIBE, waku.StoreCodec];
    const end = Date.now() + ms;
    while (Date.now() < end && !signal?.aborted) {
      const peers = await this.node.getConnectedPeers();
      if (peers.some((p) => need.every((c) => p.protocols.includes(c)))) {
        if (this.state.current === "disconnected") this.state.set("partially-connected");
        return;
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    if (signal?.aborted) throw new LogosChatError("TRANSPORT_UNAVAILABLE", "connect was aborted");
  }

  private ensureOpen(): void {
    if (this.closed) throw new LogosChatError("CLOSED", "this transport is closed");
  }

  private encoder(contentTopic: string): Encoder {
    let e = this.encoders.get(contentTopic);
    if (!e) this.encoders.set(contentTopic, (e = this.node.createEncoder({ contentTopic })));
    return e;
  }

  private decoder(contentTopic: string): Decoder {
    let d = this.decoders.get(contentTopic);
    if (!d) this.decoders.set(contentTopic, (d = this.node.createDecoder({ contentTopic })));
    return d;
  }

  async publish(contentTopic: string, payload: Uint8Array): Promise<{ messageHash: string }> {
    this.ensureOpen();
    const enc = this.encoder(contentTopic);
    const timestamp = new Date();
    const r = await this.node.lightPush.send(enc, { payload, timestamp }, { autoRetry: false });
    if (r.successes.length === 0) {
      const why = r.failures.map((f) => String(f.error)).join(", ") || "no peer accepted it";
      throw new LogosChatError("TRANSPORT_UNAVAILABLE", `lightpush failed: ${why}`);
    }
    const messageHash = waku.messageHashStr(enc.pubsubTopic, { payload, contentTopic, timestamp, meta: undefined } as never);
    return { messageHash };
  }

  async subscribe(contentTopics: string[], onMessage: (m: DeliveryMessage) => void): Promise<Subscription> {
    this.ensureOpen();
    for (const topic of contentTopics) {
      if (this.fanout.add(topic, onMessage)) {
        // false means "no filter peer yet": js-waku subscribes when one connects.
        await this.node.filter.subscribe([this.decoder(topic)], (msg) =>
          this.fanout.deliver(topic, { contentTopic: msg.contentTopic, payload: msg.payload, messageHash: msg.hashStr, timestamp: msg.timestamp ?? new Date() }),
        );
      }
    }
    return {
      unsubscribe: async () => {
        for (const topic of contentTopics) {
          if (this.fanout.remove(topic, onMessage)) await this.node.filter.unsubscribe([this.decoder(topic)]).catch(() => undefined);
        }
      },
    };
  }

  async *query(q: { contentTopics: string[]; since?: Date; until?: Date; messageHashes?: string[] }): AsyncIterable<DeliveryMessage> {
    this.ensureOpen();
    const byPubsub = new Map<string, Decoder[]>();
    for (const t of q.contentTopics) {
      const d = this.decoder(t);
      byPubsub.set(d.pubsubTopic, [...(byPubsub.get(d.pubsubTopic) ?? []), d]);
    }
    const hashes = q.messageHashes?.length ? q.messageHashes.map((h) => Uint8Array.from(h.match(/../g) ?? [], (x) => parseInt(x, 16))) : undefined;
    for (const decoders of byPubsub.values()) {
      const opts: Record<string, unknown> = { paginationForward: true, paginationLimit: 100 };
      if (hashes) opts.messageHashes = hashes;
      else {
        opts.timeStart = q.since ?? new Date(Date.now() - 24 * 3600 * 1000);
        opts.timeEnd = q.until ?? new Date(Date.now() + 60_000);
      }
      let pages: AsyncIterable<Promise<unknown>[]>;
      try {
        pages = this.node.store.queryGenerator(decoders, opts as never) as AsyncIterable<Promise<unknown>[]>;
        for await (const page of pages) {
          for (const p of page) {
            const m = (await p) as { contentTopic: string; payload: Uint8Array; hashStr: string; timestamp?: Date } | undefined;
            if (m) yield { contentTopic: m.contentTopic, payload: m.payload, messageHash: m.hashStr, timestamp: m.timestamp ?? new Date(0) };
          }
        }
      } catch (e) {
        throw new LogosChatError("TRANSPORT_UNAVAILABLE", `store query failed: ${(e as Error).message}`, { cause: e });
      }
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.node.stop().catch(() => undefined);
  }
}
