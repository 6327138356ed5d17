/**
 * Network presets (PROTOCOL.md D5, §5.1). js-waku's `defaultBootstrap` is never used: it
 * targets The Waku Network (cluster 1). The presets list TCP entry nodes only; browsers
 * need a wss entry node, which none of them is known to offer (unverified): pass
 * `entryNodes` to use others.
 */
export interface NetworkPreset {
  readonly name: "testnet" | "devnet" | "local";
  readonly clusterId: number;
  readonly shards: number;
  readonly maxMessageSize: number;
  readonly entryNodes: readonly string[];
}

const DCS = ["do-ams3", "gc-us-central1-a", "ac-cn-hongkong-c"] as const;

const TESTNET_IDS: Record<(typeof DCS)[number], [string, string]> = {
  "do-ams3": ["16Uiu2HAmQ9X2xDfPG3uL77V9piYDhjq14JhKCtcmNYsTMKNqrKCj", "16Uiu2HAmB8NYprrfQrgWVzsJtYWkfjsXbmJEGNMG6othXsQ53BwG"],
  "gc-us-central1-a": ["16Uiu2HAmF8WtwGPmeGHgYAX2277jHgy5cW9F7zsB8EqUjBZQAZQ3", "16Uiu2HAmUuXhUW9bdJpzN1kfDziFiUZo4bszTk66cvr7uuyCHXR7"],
  "ac-cn-hongkong-c": ["16Uiu2HAmL3oU95jh1BZHozn3uNhx8HEneirgr8M1jEAapzXGDqRF", "16Uiu2HAm28CoBZjpyxsanC8tQpbvZ7bZJnVYuB1EgFzb571qpWsV"],
};
const DEVNET_IDS: Record<(typeof DCS)[number], [string, string]> = {
  "do-ams3": ["16Uiu2HAmTUbnxLGT9JvV6mu9oPyDjqHK4Phs1VDJNUgESgNSkuby", "16Uiu2HAmMK7PYygBtKUQ8EHp7EfaD3bCEsJrkFooK8RQ2PVpJprH"],
  "gc-us-central1-a": ["16Uiu2HAm4S1JYkuzDKLKQvwgAhZKs9otxXqt8SCGtB4hoJP1S397", "16Uiu2HAm8Y9kgBNtjxvCnf1X6gnZJW5EGE4UwwCL3CCm55TwqBiH"],
  "ac-cn-hongkong-c": ["16Uiu2HAm8YokiNun9BkeA1ZRmhLbtNUvcwRr64F69tYj9fkGyuEP", "16Uiu2HAkvwhGHKNry6LACrB8TmEFoCJKEX29XR5dDUzk3UT3UNSE"],
};

function entries(prefix: string, domain: string, ids: Record<(typeof DCS)[number], [string, string]>): string[] {
  return DCS.flatMap((dc) => ids[dc].map((id, i) => `/dns4/${prefix}-0${i + 1}.${dc}.${domain}/tcp/30303/p2p/${id}`));
}

/** 150 KiB on the encoded WakuMessage (PROTOCOL.md §5.5). */
export const LOGOS_MAX_MESSAGE_SIZE = 150 * 1024;

/** logos-delivery preset `logos.test`: cluster 2, autosharding over 8 shards. */
export const TESTNET: NetworkPreset = {
  name: "testnet",
  clusterId: 2,
  shards: 8,
  maxMessageSize: LOGOS_MAX_MESSAGE_SIZE,
  entryNodes: entries("node", "logos.test.status.im", TESTNET_IDS),
};

/** logos-delivery preset `logos.dev`: cluster 3 (moved from 2 on 2026-08-10; it can move again). */
export const DEVNET: NetworkPreset = {
  name: "devnet",
  clusterId: 3,
  shards: 8,
  maxMessageSize: LOGOS_MAX_MESSAGE_SIZE,
  entryNodes: entries("delivery", "logos.dev.status.im", DEVNET_IDS),
};

/** The local dev node: testnet's parameters, its address supplied at connect time. */
export const LOCAL: NetworkPreset = { name: "local", clusterId: 2, shards: 8, maxMessageSize: LOGOS_MAX_MESSAGE_SIZE, entryNodes: [] };
