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
  /** A Reliable Channel (LIP-173) on this content topic: SDS acknowledgements, re-sends, repair from the store, causal order. */
  reliableChannel(contentTopic: string, options: ReliableChannelOptions): Promise<ReliableChannel>;
  close(): Promise<void>;
}

/** Options of `node.reliableChannel` (LIP-173 defaults). */
export interface ReliableChannelOptions {
  /** The SDS channel id: participants of one channel share it. */
  channelId: string;
  /** This participant's id (not authenticated: use `encryption` for that). */
  senderId: string;
  /** Where SDS state and partial payloads persist. Default "memory". */
  store?: "indexeddb" | "memory" | { path: string } | StorageAdapter;
  /** Applied to every SDS message before dispatch, and undone before it is read. */
  encryption?: { encrypt(bytes: Uint8Array): Uint8Array | Promise<Uint8Array>; decrypt(bytes: Uint8Array): Uint8Array | Promise<Uint8Array> };
  /** Causal history entries per message. Default 2. */
  causalHistorySize?: number;
  /** Re-send after this long without an acknowledgement. Default 5000. */
  ackTimeoutMs?: number;
  /** Re-sends before a delivery-error. Default 5. */
  maxRetransmissions?: number;
  /** A missing message is lost after this long. Default 60 000. */
  lostAfterMs?: number;
  /** Acknowledge what arrived with a sync message after this long (plus jitter), unless we sent first. Default 1000. */
  syncDelayMs?: number;
  /** Put the 18 752-byte bloom filter in every message, not only in syncs that acknowledge many. Default false. */
  bloomInContent?: boolean;
  /** Largest SDS message; larger payloads are segmented (LIP-243). Default 102 400. */
  segmentSizeBytes?: number;
}

/** The events of a Reliable Channel (`on`); LIP-173's `message:*` names go to `addEventListener`. */
export type ReliableChannelEvent = "message" | "sent" | "delivered" | "missing" | "lost" | "error";

/** A Reliable Channel (LIP-173). */
export interface ReliableChannel extends EventTarget {
  readonly contentTopic: string;
  readonly channelId: string;
  readonly senderId: string;
  /** Resolves with the request id once the message is persisted and handed to the network. */
  send(payload: Uint8Array): Promise<{ messageId: string }>;
  /**
   * "message" `{ messageId, senderId, payload, lamport }` (once, in causal order); "sent" `{ messageId }`;
   * "delivered" `{ messageId, by }` (the first acknowledgement); "missing" / "lost" `{ messageId, senderId? }`;
   * "error" a LogosChatError (a delivery-error carries `messageId` and `unackedBy`).
   */
  on(event: ReliableChannelEvent, cb: (e: any) => void): () => void;
  /** Ids other participants named that have not come (yet). */
  missing(): string[];
  close(): Promise<void>;
}

/** One storage operation: a put when `value` is set, a delete otherwise. Keys and values are opaque. */
export interface StoreOp {
  store: string;
  key: Uint8Array;
  value?: Uint8Array;
}

/**
 * Bring your own storage. The SDK stores opaque, already-encrypted records in a few named
 * object stores and needs: everything of a store (at start), one record, a key range in
 * order (history pages), and an atomic commit of several operations. Keys compare as bytes.
 */
export interface StorageAdapter {
  /** Opens (and creates) the object stores. Rejects with STORE_LOCKED when another writer holds it. */
  open(stores: string[]): Promise<void>;
  getAll(store: string): Promise<Array<[Uint8Array, Uint8Array]>>;
  get(store: string, key: Uint8Array): Promise<Uint8Array | undefined>;
  /** Records with from ≤ key ≤ to, ascending (or descending with `reverse`), at most `limit`. */
  range(store: string, from: Uint8Array, to: Uint8Array, options: { limit: number; reverse: boolean }): Promise<Array<[Uint8Array, Uint8Array]>>;
  /**
   * Applies every operation or none. `durable: false` marks a commit that may be lost in a
   * crash without harm (clearing sent outbox entries: at worst they are sent again and
   * de-duplicated), so a backend may skip its flush.
   */
  commit(ops: StoreOp[], options?: { durable?: boolean }): Promise<void>;
  /** A key-encryption key kept by the platform (a non-extractable WebCrypto key, a key file), if any. */
  deviceKey?(): Promise<CryptoKey>;
  close(): Promise<void>;
}

/** Options of `node.chat`. */
export interface ChatOptions {
  /** Local profile; one account per name; default "default". */
  name?: string;
  /** Where state lives. Default: "indexeddb" in browsers, "memory" in Node. `{ path }` is a directory (Node). */
  store?: "indexeddb" | "memory" | { path: string } | StorageAdapter;
  /** Encrypts the store at rest under a key derived from it (PBKDF2-SHA-256). */
  passphrase?: string;
  /**
   * A code from `createLink()` on another installation of an account: this new profile
   * becomes an installation of that account (instead of a new account). A malformed,
   * used or expired code, or one no open installation answers within 30 s, rejects
   * `INVALID_LINK`; so does a link for a profile that already holds an account.
   */
  link?: string;
  /**
   * A secret from `exportRecovery()`: this new profile becomes a new installation of
   * that account when every device of it is lost (then revoke them with
   * `removeInstallation`). A malformed secret is INVALID_ARGUMENT.
   */
  recover?: string;
  /** The passphrase a recovery secret was wrapped with (`exportRecovery({ passphrase })`). */
  recoverPassphrase?: string;
  /**
   * How many of each chat's newest messages this installation sends a device it links
   * (sealed under the link code), so the new device shows what came before it joined.
   * Default 100; 0 sends none; at most 96 KiB per chat.
   */
  linkHistory?: number;
  /**
   * Also publish libchat's plain directory records (the account address, its device
   * list and each key package in clear on the shared registry topics), so that libchat
   * clients, which look accounts up in the chat-store registry, can find this account.
   * Default false: records are published sealed under a key derived from the account
   * address, so that only someone who already knows the address can find or read them
   * (README, "What an observer of the network learns"). Plain records are always read.
   */
  publicRecords?: boolean;
  /**
   * Where this installation publishes its account's device list and its key package, and
   * where lookups read other accounts'. `"delivery"` (the default): sealed records on
   * the network's topics, republished every 12 hours and at every start. `{ url }`: the
   * chat-store HTTP registry (`POST/GET /v0/account`, `/v0/keypackage`, libchat's
   * format), which keeps records while their owner is offline and is where libchat
   * clients find accounts; the registry sees which installations belong to which
   * account. A `Directory` object: the app's own registry, called the same way.
   * Calls time out after 10 s and are tried again 4 times (back-off from 200 ms up to
   * 2 s); a registry that never answers raises `error` events (TRANSPORT_UNAVAILABLE).
   * Whatever a registry hands back is verified: it can withhold records, not forge them.
   */
  directory?: "delivery" | { url: string } | Directory;
  /** Send read receipts and typing (default true); received ones are always reported. */
  signals?: boolean;
  /**
   * Decides this installation's vote on what another member of a group asks for (add,
   * remove, rename), once the group's permissions allow it. Without a hook the SDK votes
   * YES on every permitted request; requests the permissions forbid are voted NO without
   * asking. A hook that throws votes NO; one that never answers counts as YES at the
   * vote timeout (de-MLS's liveness rule).
   */
  onVote?: (request: VoteRequest) => boolean | Promise<boolean>;
}

/** A signed directory record as a registry stores it (libchat's chat-store fields). */
export interface DirectoryRecord {
  /** The signed bytes: a device bundle, or `ts_ms u64 LE ‖ KeyPackage`. */
  payload: Uint8Array;
  /** Ed25519 over `payload`: by the account (bundles) or the installation (key packages). */
  signature: Uint8Array;
}

/**
 * A registry the app brings (`ChatOptions.directory`): the four calls of the chat-store
 * API. Ids are lower-case hex. A get resolves `undefined` for an id it does not hold; a
 * call that rejects (or outlives `signal`) is tried again by the SDK. Keep the newest
 * record per id (the SDK refuses older ones anyway).
 */
export interface Directory {
  putAccount(accountId: string, record: DirectoryRecord, options?: { signal?: AbortSignal }): Promise<void>;
  getAccount(accountId: string, options?: { signal?: AbortSignal }): Promise<DirectoryRecord | undefined>;
  putKeyPackage(installationId: string, record: DirectoryRecord, options?: { signal?: AbortSignal }): Promise<void>;
  getKeyPackage(installationId: string, options?: { signal?: AbortSignal }): Promise<DirectoryRecord | undefined>;
}

/** A group member's request put to `ChatOptions.onVote`. */
export interface VoteRequest {
  conversationId: string;
  proposalId: number;
  kind: "add" | "remove" | "leave" | "rename";
  /** The account that asks. */
  by?: string;
  /** The accounts it would add or remove. */
  accounts: string[];
  /** The new name and description (`rename`). */
  name?: string;
  description?: string;
}

/**
 * Who may ask for a change in a group, fixed at creation and enforced in every member's
 * vote: `"members"` (anyone, the default) or `"stewards"` (only the epoch's stewards). A
 * member may always leave. The group id commits to them, so a joiner cannot be told others.
 */
export interface GroupPermissions {
  add?: "members" | "stewards";
  remove?: "members" | "stewards";
  rename?: "members" | "stewards";
}

/** The sender of a message; `accountId` only once the directory confirms the installation. */
export interface Sender {
  /** Set only once the account's signed device list shows the installation. */
  accountId?: string;
  installationId: string;
  /** The account's signed device list shows this installation (then `accountId` is set). */
  verified: boolean;
}

/** An installation (device) of this account. */
export interface InstallationInfo {
  installationId: string;
  /** This installation. */
  current: boolean;
  /** When this installation first saw it in the account's device list. */
  addedAt: Date;
}

/** A chat message. */
export interface ChatMessage {
  id: string;
  conversationId: string;
  sender: Sender;
  content: Uint8Array;
  text?: string;
  /**
   * As sent: "text/plain" (raw UTF-8 on the wire, as libchat sends text), any MIME type,
   * an app's own name, `REACTION_TYPE` for reactions, or for a frame of another LIP-240
   * domain `application/x-content-frame; domain=D; tag=T` (its payload in `content`).
   */
  contentType: string;
  /** The message this one answers (`send(…, { replyTo })`) or reacts to (`react`). */
  replyTo?: string;
  /** A reaction taken back (`react(id, emoji, { remove: true })`). */
  remove?: boolean;
  sentAt: Date;
  receivedAt: Date;
  outgoing: boolean;
}

/** The content type reactions arrive with: `text` is the emoji, `replyTo` the message. */
export type ReactionType = "application/vnd.logos.reaction";

/** Options of `Conversation.send`. */
export interface SendOptions {
  /**
   * The content type (at most 128 visible ASCII characters). Default: "text/plain" for a
   * string, "application/octet-stream" for bytes. It arrives as sent.
   */
  contentType?: string;
  /** The id of the message this one answers. */
  replyTo?: string;
}

/** A conversation in the list. */
export interface ConversationInfo {
  id: string;
  kind: "direct" | "group";
  name?: string;
  description?: string;
  lastMessageAt?: Date;
  /** A preview of the last message: its first 80 characters, or `[content type]`. */
  lastMessage?: string;
  unread: number;
  /**
   * A direct chat: the peer's signed device list shows every installation in it that
   * claims the peer's account. A chat that a stranger started in someone's name is not
   * verified, and `startDirect` never returns it. Groups: true.
   */
  verified: boolean;
  /**
   * A message request: another account started it, that account is not a contact (a
   * group: no contact of ours is in it), and it was not accepted (`acceptRequest`, or
   * adding the sender as a contact). Apps keep requests out of the inbox.
   */
  request: boolean;
}

/** A contact, or an account only blocked. */
export interface Contact {
  accountId: string;
  nickname?: string;
  blocked: boolean;
}

/** One conversation. */
export interface Conversation {
  readonly id: string;
  readonly kind: "direct" | "group";
  /** Sends text or bytes; resolves once the message is stored and handed to the network. */
  send(content: string | Uint8Array, options?: SendOptions): Promise<{ messageId: string }>;
  /** A reply to a message: `send(content, { ...options, replyTo: messageId })`. */
  reply(messageId: string, content: string | Uint8Array, options?: { contentType?: string }): Promise<{ messageId: string }>;
  /** A reaction (an emoji, at most 64 bytes) to a message; `{ remove: true }` takes it back. */
  react(messageId: string, emoji: string, options?: { remove?: boolean }): Promise<{ messageId: string }>;
  /** Stored messages, newest last: the `limit` (default 50) before message `before` (default: the newest). */
  history(options?: { limit?: number; before?: string }): Promise<ChatMessage[]>;
  /**
   * Marks the conversation read up to this message: the unread count drops to 0, and the
   * message's sender gets a read receipt (`on("receipt", { state: "read" })`), unless
   * `ChatOptions.signals` is false.
   */
  markRead(messageId: string): Promise<void>;
  /**
   * Tells the others we are typing (renewed at most every 3 s; it ends at the others 6 s
   * after the last call) or stopped. Never stored; nothing is sent with `signals: false`.
   */
  setTyping(typing: boolean): Promise<void>;
  /** The members, by account. */
  members(): Promise<Member[]>;
}

/** A member of a conversation: an account and its installations in it. */
export interface Member {
  accountId: string;
  installations: string[];
  /** On this epoch's steward list (may commit). */
  steward: boolean;
  /** Added by a proposal that is not committed yet. */
  pending: boolean;
  /** The account's signed device list shows every one of these installations (else the account is their credentials' claim). */
  verified: boolean;
}

/**
 * de-MLS timers of a group (ms), fixed when it is created and shipped to joiners.
 * Defaults are de-mls 4.1.0's (PROTOCOL.md §3.7): a 60 s commit window, so a membership
 * change takes about a minute and a half; apps that want snappier changes shorten them.
 */
export interface GroupTiming {
  /** Stewards commit this long after the first approved proposal. Default 60 000. */
  commitWindowMs?: number;
  /** Members collect candidate commits this long after the first. Default 30 000. */
  freezeMs?: number;
  /** A vote is decided at the latest this long after it opened. Default 30 000. */
  voteTimeoutMs?: number;
  /** Recovery mode starts this long after window + freeze with no commit. Default 5 000. */
  retryMs?: number;
  /** Stewards per epoch. Default 2. */
  stewards?: number;
}

/** A group conversation (de-MLS). Membership changes are voted and committed by stewards. */
export interface Group extends Conversation {
  readonly kind: "group";
  readonly name: string;
  readonly description: string;
  setName(name: string): Promise<void>;
  setDescription(description: string): Promise<void>;
  /** Proposes adding each account (all its installations); resolves once proposed. */
  addMembers(accountIds: string[]): Promise<void>;
  /** Proposes removing each account. */
  removeMembers(accountIds: string[]): Promise<void>;
  /** Leaves: a self-removal that a steward commits. */
  leave(): Promise<void>;
  /** This epoch's stewards (account ids), the epoch steward first. */
  stewards(): Promise<string[]>;
}

/** One account's installation on a node: the Chat API. */
export interface Chat {
  /** The account address (hex Ed25519), shared with contacts. */
  readonly accountId: string;
  /** This installation (device). */
  readonly installationId: string;
  startDirect(accountId: string): Promise<Conversation>;
  /** The account's installations (devices), this one marked `current`. */
  installations(): Promise<InstallationInfo[]>;
  /**
   * A one-time code (`logos_link_…`, valid 10 minutes) that a new device passes as
   * `ChatOptions.link` to become another installation of this account. This installation
   * answers it while open, and adds the new one to every direct chat.
   */
  createLink(): Promise<string>;
  /**
   * Removes another installation of this account (revokes a lost device): a new signed
   * device list without it, and its leaf taken out of every direct chat, so it cannot
   * read what follows. It stops with `INSTALLATION_REMOVED`.
   */
  removeInstallation(installationId: string): Promise<void>;
  /**
   * Fresh keys (post-compromise security): an MLS self-update in every direct chat and a
   * fresh key package; history stays readable. Groups are not updated yet.
   */
  rotateKeys(): Promise<void>;
  /**
   * The secret that restores this account on a new device when every device is lost
   * (`ChatOptions.recover`). It is the account key: keep it offline. With a passphrase
   * it comes wrapped (PBKDF2-SHA-256, AES-GCM) and needs `recoverPassphrase` to use.
   */
  exportRecovery(options?: { passphrase?: string }): Promise<string>;
  /**
   * This account's contact card (`logos_chatcard_…`): its signed device list and log
   * and this installation's key package, so that `addContact(card)` and then
   * `startDirect` work with no directory at all. About 4.4 k characters (an X-Wing key
   * package is 2.5 kB); `{ compact: true }` leaves the key package out (about 450
   * characters, one QR code) and its key packages come from the directory.
   */
  contactCard(options?: { compact?: boolean }): Promise<string>;
  /**
   * Adds a contact by card or account id (again: sets the nickname). A card's records
   * are taken in (a card older than the device list we know adds nothing but the
   * contact); a card that does not parse or verify rejects `INVALID_CARD`. Their
   * message requests are accepted.
   */
  addContact(cardOrAccountId: string, init?: { nickname?: string }): Promise<Contact>;
  /** Removes a contact (a blocked account stays blocked). */
  removeContact(accountId: string): Promise<void>;
  /**
   * Blocks an account: its invites are dropped (no conversation appears), its messages
   * in direct chats and groups are neither stored nor delivered, and `startDirect` to
   * it rejects `BLOCKED`. Its installations known now are blocked too.
   */
  block(accountId: string): Promise<void>;
  unblock(accountId: string): Promise<void>;
  /** Contacts and blocked accounts. */
  contacts(): Promise<Contact[]>;
  /** Accepts a message request (`ConversationInfo.request`). */
  acceptRequest(conversationId: string): Promise<void>;
  /** Creates a named group with these accounts (every installation of each). */
  createGroup(init: { name: string; description?: string; members: string[]; timing?: GroupTiming; permissions?: GroupPermissions }): Promise<Group>;
  conversations(): Promise<ConversationInfo[]>;
  conversation(id: string): Promise<Conversation | Group | undefined>;
  on(event: "message", cb: (m: ChatMessage) => void): () => void;
  on(event: "conversation", cb: (c: ConversationInfo) => void): () => void;
  on(event: "members", cb: (e: { conversationId: string; members: Member[] }) => void): () => void;
  /** A message that a peer's causal history names never came: it is being repaired (read back from the store, re-sent by its sender); messages that depend on it wait. */
  on(event: "missing", cb: (e: { conversationId: string; messageId: string; sender?: Sender }) => void): () => void;
  /** A peer's installation acknowledged one of our messages (its causal history names it). */
  on(event: "ack", cb: (e: { conversationId: string; messageId: string; by: Sender }) => void): () => void;
  /**
   * A receipt for one of our messages: "delivered" when another installation in the chat
   * has it (the same moment as `ack`: it names the newest message it has of ours), "read"
   * when its reader called `markRead` on it. Never stored.
   */
  /** A member started or stopped typing (a start ends by itself after 6 s unless renewed). */
  on(event: "typing", cb: (e: { conversationId: string; by: Sender; typing: boolean }) => void): () => void;
  on(event: "receipt", cb: (e: { conversationId: string; messageId: string; by: Sender; state: "delivered" | "read" }) => void): () => void;
  /** Repair gave up on a missing message; what waited for it was delivered without it. */
  on(event: "lost", cb: (e: { conversationId: string; messageId: string; sender?: Sender }) => void): () => void;
  /** The catch-up after opening (what arrived while the account was closed) is done. */
  on(event: "synced", cb: (e: { conversationId?: string }) => void): () => void;
  on(event: "error", cb: (e: import("./errors.js").LogosChatError) => void): () => void;
  /** The account's installations changed (a device linked or removed). */
  on(event: "installations", cb: (e: { installations: InstallationInfo[] }) => void): () => void;
  /** The same stream as on("message"); ends when the chat closes. */
  messages(): AsyncIterable<ChatMessage>;
  close(): Promise<void>;
}
