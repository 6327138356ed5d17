/** The dev node's fixed, public, development-only identity, so its address is stable. */
import { generateKeyPairFromSeed } from "@libp2p/crypto/keys";
import { peerIdFromPrivateKey } from "@libp2p/peer-id";

/** The seed of the dev node's Ed25519 libp2p key (32 bytes). Development only. */
export const DEV_SEED = new TextEncoder().encode("logos-chat devnode identity v1 !");
/** The default WebSocket port of the dev node (TCP is port + 1). */
export const DEFAULT_PORT = 60000;

export async function devNodeKey(): Promise<unknown> {
  return generateKeyPairFromSeed("Ed25519", DEV_SEED);
}

/** The dev node's default WebSocket multiaddr, what `connect("local")` dials. */
export async function defaultDevNodeAddress(host = "127.0.0.1", port = DEFAULT_PORT): Promise<string> {
  const id = peerIdFromPrivateKey((await devNodeKey()) as never) as { toString(): string }; // nested @libp2p/interface copies differ only in types
  return `/ip4/${host}/tcp/${port}/ws/p2p/${id.toString()}`;
}
