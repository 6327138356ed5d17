/**
 * A local Logos Delivery-compatible node for development, CI, bots and offline demos.
 * NOT a production relay: one process, everything in memory, no RLN, no peer exchange.
 *
 * It serves, on loopback, over WebSocket and TCP (noise, mplex, identify, ping), the
 * protocols a js-waku light node needs (PROTOCOL.md §5.2–§5.3):
 * - lightpush v3: validates, stores and fans out; 413 over 150 KiB, 421 for another cluster;
 * - filter v2: subscribe / ping / unsubscribe / unsubscribe-all, pushes on a new stream
 *   per message, one at a time per subscriber, retried when a stream fails;
 * - store v3: by content topics and time, or by hashes, both directions, paged from the
 *   cursor hash the client sends (js-waku ignores the response cursor), newest pages in
 *   ascending order, an empty page at the end;
 * - metadata: the cluster and its full shard list (an empty list makes js-waku drop the peer);
 * - relay (`/vac/waku/relay/2.0.0`, gossipsub) on every shard of the cluster, bridged both
 *   ways: what a light node pushes is relayed, and what a relay (`mode: "core"`) peer
 *   publishes is stored and pushed to filter subscribers, so core and edge nodes see each other.
 * Its PeerId comes from a fixed seed, so the default address is stable across restarts.
 */
import "../polyfill.js";
import { noise } from "@chainsafe/libp2p-noise";
import { identify } from "@libp2p/identify";
import type { Connection, Stream } from "@libp2p/interface";
import { mplex } from "@libp2p/mplex";
import { ping } from "@libp2p/ping";
import { tcp } from "@libp2p/tcp";
import { webSockets } from "@libp2p/websockets";
import * as filters from "@libp2p/websockets/filters";
import { FilterCodecs, LightPushCodec, MetadataCodec, StoreCodec, messageHash } from "@waku/core";
import { proto_filter_v2, proto_lightpush, proto_metadata, proto_message, proto_store } from "@waku/proto";
import * as lp from "it-length-prefixed";
import { pipe } from "it-pipe";
import { createLibp2p } from "libp2p";
import { shardTopics, wakuRelay } from "../transports/relay-pubsub.js";
import { DEFAULT_PORT, devNodeKey } from "./identity.js";

export { DEFAULT_PORT, defaultDevNodeAddress } from "./identity.js";

/** Options of `startDevNode`. */
export interface DevNodeOptions {
  /** WebSocket port (TCP listens on port + 1); 0 picks free ports. Default 60000. */
  port?: number;
  /** Listen address; loopback by default. */
  host?: string;
  /** Cluster id (default 2, the logos.test cluster). */
  clusterId?: number;
  /** Shards in the cluster (default 8). */
  shards?: number;
}

/** A running dev node. */
export interface DevNode {
  /** Its addresses, the WebSocket one first. */
  multiaddrs: string[];
  /** How many messages it stores. */
  storedCount(): number;
  /**
   * Drops the connections of every peer subscribed to `contentTopic`, as a network failure
   * would (for testing reconnects); the peers dial again on their own.
   */
  dropSubscribers(contentTopic: string): Promise<number>;
  stop(): Promise<void>;
}

/** The 150 KiB limit on an encoded message (PROTOCOL.md §5.5). */
const MAX_MESSAGE_SIZE = 150 * 1024;

interface Stored {
  hash: Uint8Array;
  hashHex: string;
  pubsubTopic: string;
  message: proto_message.WakuMessage;
  ts: bigint;
}

const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");

/** Starts a dev node. */
export async function startDevNode(options: DevNodeOptions = {}): Promise<DevNode> {
  const host = options.host ?? "127.0.0.1";
  const port = options.port ?? DEFAULT_PORT;
  const clusterId = options.clusterId ?? 2;
  const shardCount = options.shards ?? 8;
  const privateKey = await devNodeKey();
  const node = await createLibp2p({
    privateKey: privateKey as never, // nested @libp2p/interface copies differ only in types
    addresses: { listen: [`/ip4/${host}/tcp/${port}/ws`, `/ip4/${host}/tcp/${port === 0 ? 0 : port + 1}`] },
    transports: [webSockets({ filter: filters.all }), tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [mplex()],
    services: { identify: identify({ agentVersion: "logos-chat-devnode" }), ping: ping(), pubsub: wakuRelay() as never },
  });
  const relay = node.services.pubsub as unknown as {
    subscribe(topic: string): void;
    publish(topic: string, data: Uint8Array): Promise<unknown>;
    addEventListener(type: "message", cb: (e: CustomEvent<{ topic: string; data: Uint8Array }>) => void): void;
  };

  const store: Stored[] = [];
  const byHash = new Map<string, Stored>();
  // peer → pubsub topic → content topics
  const subscriptions = new Map<string, { connection: Connection; topics: Map<string, Set<string>> }>();

  const reqResp = (codec: string, fn: (req: Uint8Array, connection: Connection) => Uint8Array | undefined | Promise<Uint8Array | undefined>) =>
    node.handle(
      codec,
      ({ stream, connection }: { stream: Stream; connection: Connection }) => {
        // js-waku pre-opens streams and may never write to them: an empty one is normal.
        pipe(
          stream,
          (src) => lp.decode(src),
          async function* (src) {
            for await (const buf of src) {
              const out = await fn(buf.subarray(), connection);
              if (out) yield out;
            }
          },
          (src) => lp.encode(src),
          stream,
        ).catch(() => undefined);
      },
      { maxInboundStreams: 256 },
    );

  const validTopic = (pubsubTopic: string | undefined) => {
    const m = /^\/waku\/2\/rs\/(\d+)\/(\d+)$/.exec(pubsubTopic ?? "");
    return !!m && Number(m[1]) === clusterId && Number(m[2]) < shardCount;
  };

  // One push at a time per subscriber, in order: concurrent push streams (a burst of
  // segments) overran the muxer and pushes were lost.
  const pushChains = new Map<string, Promise<void>>();
  function push(peer: string, pubsubTopic: string, message: proto_message.WakuMessage): void {
    const next = (pushChains.get(peer) ?? Promise.resolve()).then(() => pushOnce(peer, pubsubTopic, message));
    pushChains.set(peer, next);
    void next.finally(() => pushChains.get(peer) === next && pushChains.delete(peer));
  }

  async function pushOnce(peer: string, pubsubTopic: string, message: proto_message.WakuMessage) {
    for (let attempt = 0; attempt < 3; attempt++) {
      const sub = subscriptions.get(peer);
      if (!sub || sub.connection.status !== "open") return;
      try {
        const s = await sub.connection.newStream(FilterCodecs.PUSH);
        await pipe([proto_filter_v2.MessagePush.encode({ pubsubTopic, wakuMessage: message })], (src) => lp.encode(src), s.sink);
        // Aborted after the write: mplex has no half-close of the read side.
        s.abort(new Error("push done"));
        return;
      } catch {
        // The stream failed (the subscriber went away, or is overloaded): try again shortly;
        // a subscriber that is gone re-subscribes after reconnecting.
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  }

  /** Stores a new message, pushes it to filter subscribers and (from lightpush) relays it. */
  function ingest(pubsubTopic: string, message: proto_message.WakuMessage, toRelay: boolean): void {
    const hash = messageHash(pubsubTopic, message as never);
    const hashHex = hex(hash);
    if (byHash.has(hashHex)) return;
    const stored: Stored = { hash, hashHex, pubsubTopic, message, ts: message.timestamp ?? 0n };
    store.push(stored);
    byHash.set(hashHex, stored);
    for (const [peer, sub] of subscriptions) {
      if (sub.topics.get(pubsubTopic)?.has(message.contentTopic)) push(peer, pubsubTopic, message);
    }
    // No relay peer on the shard is normal (only light nodes connected).
    if (toRelay) relay.publish(pubsubTopic, proto_message.WakuMessage.encode(message)).catch(() => undefined);
  }

  for (const t of shardTopics(clusterId, shardCount)) relay.subscribe(t);
  relay.addEventListener("message", ({ detail }) => {
    if (detail.data.length > MAX_MESSAGE_SIZE || !validTopic(detail.topic)) return;
    try {
      const message = proto_message.WakuMessage.decode(detail.data);
      if (message.payload?.length && message.contentTopic) ingest(detail.topic, message, false);
    } catch {
      /* not a WakuMessage */
    }
  });

  await reqResp(LightPushCodec, (bytes) => {
    const req = proto_lightpush.LightPushRequestV3.decode(bytes);
    const reply = (statusCode: number, statusDesc: string) =>
      proto_lightpush.LightPushResponseV3.encode({ requestId: req.requestId, statusCode, statusDesc, relayPeerCount: statusCode === 200 ? 1 : undefined });
    const message = req.message;
    if (!message || !message.payload?.length || !message.contentTopic) return reply(400, "bad request: no message");
    if (proto_message.WakuMessage.encode(message).length > MAX_MESSAGE_SIZE) return reply(413, "message too large");
    const pubsubTopic = req.pubsubTopic ?? `/waku/2/rs/${clusterId}/0`;
    if (!validTopic(pubsubTopic)) return reply(421, `unsupported pubsub topic ${pubsubTopic}`);
    ingest(pubsubTopic, message, true);
    return reply(200, "OK");
  });

  await reqResp(FilterCodecs.SUBSCRIBE, (bytes, connection) => {
    const req = proto_filter_v2.FilterSubscribeRequest.decode(bytes);
    const peer = connection.remotePeer.toString();
    const reply = (statusCode: number, statusDesc: string) =>
      proto_filter_v2.FilterSubscribeResponse.encode({ requestId: req.requestId, statusCode, statusDesc });
    let sub = subscriptions.get(peer);
    switch (req.filterSubscribeType as unknown as string) {
      case "SUBSCRIBER_PING":
        return sub ? reply(200, "OK") : reply(404, "not subscribed");
      case "SUBSCRIBE": {
        if (!validTopic(req.pubsubTopic)) return reply(400, "bad pubsub topic");
        if (req.contentTopics.length === 0 || req.contentTopics.length > 100) return reply(400, "1 to 100 content topics");
        if (!sub) subscriptions.set(peer, (sub = { connection, topics: new Map() }));
        sub.connection = connection;
        const set = sub.topics.get(req.pubsubTopic!) ?? new Set<string>();
        for (const t of req.contentTopics) set.add(t);
        sub.topics.set(req.pubsubTopic!, set);
        return reply(200, "OK");
      }
      case "UNSUBSCRIBE":
        for (const t of req.contentTopics) sub?.topics.get(req.pubsubTopic ?? "")?.delete(t);
        return reply(200, "OK");
      case "UNSUBSCRIBE_ALL":
        subscriptions.delete(peer);
        return reply(200, "OK");
      default:
        return reply(400, "unknown request type");
    }
  });

  await reqResp(StoreCodec, (bytes) => {
    const q = proto_store.StoreQueryRequest.decode(bytes);
    const limit = Math.min(Number(q.paginationLimit ?? 20n) || 20, 100);
    let matches: Stored[];
    if (q.messageHashes.length > 0) {
      const want = new Set(q.messageHashes.map(hex));
      matches = store.filter((m) => want.has(m.hashHex));
    } else {
      const topics = new Set(q.contentTopics);
      matches = store.filter(
        (m) =>
          (!q.pubsubTopic || m.pubsubTopic === q.pubsubTopic) &&
          (topics.size === 0 || topics.has(m.message.contentTopic)) &&
          (q.timeStart === undefined || m.ts >= q.timeStart) &&
          (q.timeEnd === undefined || m.ts < q.timeEnd),
      );
    }
    matches.sort((a, b) => (a.ts < b.ts ? -1 : a.ts > b.ts ? 1 : a.hashHex < b.hashHex ? -1 : 1));
    const forward = q.paginationForward !== false;
    let page: Stored[];
    const cursor = q.paginationCursor ? hex(q.paginationCursor) : undefined;
    if (forward) {
      const start = cursor ? matches.findIndex((m) => m.hashHex === cursor) + 1 : 0;
      page = cursor && start === 0 ? [] : matches.slice(start, start + limit);
    } else {
      const end = cursor ? matches.findIndex((m) => m.hashHex === cursor) : matches.length;
      page = end < 0 ? [] : matches.slice(Math.max(0, end - limit), end); // ascending, as js-waku expects
    }
    const last = forward ? page[page.length - 1] : page[0];
    return proto_store.StoreQueryResponse.encode({
      requestId: q.requestId,
      statusCode: 200,
      statusDesc: "OK",
      messages: page.map((m) => ({ messageHash: m.hash, message: q.includeData ? m.message : undefined, pubsubTopic: m.pubsubTopic })),
      paginationCursor: page.length === limit && last ? last.hash : undefined,
    });
  });

  await reqResp(MetadataCodec, () =>
    proto_metadata.WakuMetadataResponse.encode({ clusterId, shards: Array.from({ length: shardCount }, (_, i) => i) }),
  );

  node.addEventListener("peer:disconnect", (e) => subscriptions.delete(e.detail.toString()));

  const multiaddrs = node
    .getMultiaddrs()
    .map(String)
    .sort((a, b) => Number(b.includes("/ws")) - Number(a.includes("/ws")));
  return {
    multiaddrs,
    storedCount: () => store.length,
    dropSubscribers: async (contentTopic: string) => {
      const peers = [...subscriptions].filter(([, sub]) => [...sub.topics.values()].some((set) => set.has(contentTopic)));
      for (const [, sub] of peers) await sub.connection.close().catch(() => sub.connection.abort(new Error("dropped")));
      return peers.length;
    },
    stop: async () => {
      await node.stop();
    },
  };
}
