/**
 * The public types of API.md. Names and shapes are a contract: extend, never rename.
 * This file holds the slice that is implemented; the rest of API.md lands with its issue.
 */

/** A named Logos network, or the in-process one. */
export type Network = "testnet" | "devnet" | "local" | "memory";

/** Options of `connect`. */
export interface ConnectOptions {
  /** "edge" (lightpush + filter + store, the default) or "core" (relay). */
  mode?: "edge" | "core";
  /** Multiaddrs that replace the preset's entry nodes. */
  entryNodes?: string[];
  /** "local": the dev node's multiaddr or ws URL. */
  url?: string;
  /** "memory": nodes sharing a hub see each other (default: one hub per process or page). */
  hub?: MemoryHub;
  /** Aborts the connection attempt. */
  signal?: AbortSignal;
}

/** An in-process network with store semantics. */
export interface MemoryHub {
  /** A fresh Transport attached to this hub. */
  transport(): Transport;
}

/** A message as the delivery network hands it over. */
export interface DeliveryMessage {
  contentTopic: string;
  payload: Uint8Array;
  /** The 14/WAKU2-MESSAGE hash, hex. */
  messageHash: string;
  timestamp: Date;
}

/** An active subscription. */
export interface Subscription {
  unsubscribe(): Promise<void>;
}

/**
 * Bring your own delivery layer. The SDK needs four things from it:
 * - `publish`: hand a message to the network; resolve once it was accepted, with its message hash;
 * - `subscribe`: push every message later published on any of the topics (including our own);
 * - `query`: replay what the network stored (history), oldest first, filtered by topic, time or hash;
 * - `close`: release everything.
 * `maxMessageSize` is the limit on an encoded message (150 KiB on Logos networks).
 */
export interface Transport {
  readonly maxMessageSize: number;
  publish(contentTopic: string, payload: Uint8Array): Promise<{ messageHash: string }>;
  subscribe(contentTopics: string[], onMessage: (m: DeliveryMessage) => void): Promise<Subscription>;
  query(q: { contentTopics: string[]; since?: Date; until?: Date; messageHashes?: string[] }): AsyncIterable<DeliveryMessage>;
  close(): Promise<void>;
}

/** The Messaging API: a node on the delivery network. */
export interface LogosNode {
  readonly network: string;
  readonly mode: "edge" | "core";
  send(contentTopic: string, payload: Uint8Array): Promise<{ messageHash: string }>;
  subscribe(contentTopics: string | string[], handler: (m: DeliveryMessage) => void): Promise<Subscription>;
  readonly health: "connected" | "partially-connected" | "disconnected";
  /** Returns a function that removes the listener. */
  on(event: "health", cb: (h: LogosNode["health"]) => void): () => void;
  chat(options?: ChatOptions): Promise<Chat>;
  close(): Promise<void>;
}

/** Options of `node.chat`. */
export interface ChatOptions {
  /** Local profile; one account per name; default "default". */
  name?: string;
  /** Where state lives. This release keeps it in memory; persistent stores land next. */
  store?: "memory";
}

/** The sender of a message; `accountId` only once the directory confirms the installation. */
export interface Sender {
  accountId?: string;
  installationId: string;
}

/** A chat message. */
export interface ChatMessage {
  id: string;
  conversationId: string;
  sender: Sender;
  content: Uint8Array;
  text?: string;
  contentType: string;
  sentAt: Date;
  receivedAt: Date;
  outgoing: boolean;
}

/** A conversation in the list. */
export interface ConversationInfo {
  id: string;
  kind: "direct" | "group";
  name?: string;
  description?: string;
  lastMessageAt?: Date;
  unread: number;
}

/** One conversation. */
export interface Conversation {
  readonly id: string;
  readonly kind: "direct" | "group";
  /** Sends text or bytes; resolves once the message is handed to the network. */
  send(content: string | Uint8Array, options?: { contentType?: string }): Promise<{ messageId: string }>;
}

/** One account's installation on a node: the Chat API. */
export interface Chat {
  /** The account address (hex Ed25519), shared with contacts. */
  readonly accountId: string;
  /** This installation (device). */
  readonly installationId: string;
  startDirect(accountId: string): Promise<Conversation>;
  conversations(): Promise<ConversationInfo[]>;
  conversation(id: string): Promise<Conversation | undefined>;
  on(event: "message", cb: (m: ChatMessage) => void): () => void;
  on(event: "conversation", cb: (c: ConversationInfo) => void): () => void;
  on(event: "error", cb: (e: import("./errors.js").LogosChatError) => void): () => void;
  /** The same stream as on("message"); ends when the chat closes. */
  messages(): AsyncIterable<ChatMessage>;
  close(): Promise<void>;
}
