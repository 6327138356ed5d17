/**
 * Gossipsub configured as Waku relay (PROTOCOL.md §5.2): protocol `/vac/waku/relay/2.0.0`
 * only (no floodsub fallback), `StrictNoSign` (messages carry no author, seqno or
 * signature), message id = SHA-256 of the data, topics `/waku/2/rs/<cluster>/<shard>`.
 * Shared by the relay transport (`mode: "core"`) and the dev node's relay bridge.
 */
import { gossipsub } from "@chainsafe/libp2p-gossipsub";

/** The relay protocol id (PROTOCOL.md §5.2). */
export const RELAY_CODEC = "/vac/waku/relay/2.0.0";

/** `/waku/2/rs/<cluster>/<shard>` for every shard of a cluster. */
export function shardTopics(clusterId: number, shards: number): string[] {
  return Array.from({ length: shards }, (_, i) => `/waku/2/rs/${clusterId}/${i}`);
}

async function sha256(data: Uint8Array): Promise<Uint8Array> {
  return new Uint8Array(await crypto.subtle.digest("SHA-256", data as Uint8Array<ArrayBuffer>));
}

/** A libp2p service factory: gossipsub speaking Waku relay. */
export function wakuRelay(): (components: never) => unknown {
  const make = gossipsub({
    globalSignaturePolicy: "StrictNoSign",
    fallbackToFloodsub: false,
    allowPublishToZeroTopicPeers: false,
    // Waku relay's message id: the SHA-256 of the encoded WakuMessage.
    msgIdFn: (msg: { data: Uint8Array }) => sha256(msg.data),
    // Relay validators allow 150 KiB messages; gossipsub's default RPC limit is 1 MiB.
    maxInboundDataLength: 1024 * 1024,
  } as never);
  return (components: never) => {
    const service = make(components) as { multicodecs: string[] };
    service.multicodecs = [RELAY_CODEC];
    return service;
  };
}
