/**
 * The driver: owns one WasmClient, serialises every call into it (one at a time,
 * in order), and applies the core's effects: subscribe (then catch up from
 * history) → publish → directory lookups → events. Business logic stays in Rust.
 */
import { check, LogosChatError, toLogosError } from "./errors.js";
import { KEYRING, storeKey } from "./keyring.js";
import { getPlatform } from "./platform.js";
import { IndexedDbStorage } from "./storage/indexeddb.js";
import { MemoryStorage } from "./storage/memory.js";
import type { Chat, ChatMessage, ChatOptions, Conversation, ConversationInfo, DeliveryMessage, StorageAdapter, StoreOp, Subscription, Transport } from "./types.js";
import { glue } from "./wasm.js";

/** The core's effects, as the wasm layer hands them over. */
interface CoreEffects {
  store: StoreOp[];
  subscribe: string[];
  publish: { contentTopic: string; payload: Uint8Array; outboxId: number }[];
  lookups: string[];
  events: CoreEvent[];
  wakeAt?: number;
}
interface CoreMessage {
  id: string; conversationId: string; sender: { accountId?: string; installationId: string };
  content: Uint8Array; contentType: string; sentAt: number; receivedAt: number; outgoing: boolean;
}
interface CoreConversation { id: string; kind: "direct" | "group"; peer?: string; lastMessageAt?: number; unread: number }
type CoreEvent =
  | ({ type: "message" } & CoreMessage)
  | ({ type: "conversation" } & CoreConversation)
  | { type: "ack"; conversationId: string; messageId: string; by: { accountId?: string; installationId: string } }
  | { type: "missing"; conversationId: string; messageId: string; senderId?: string }
  | { type: "error"; code: string; message: string };

type Listener<T> = (value: T) => void;
const utf8 = new TextDecoder("utf-8", { fatal: true });
const encoder = new TextEncoder();

function toMessage(m: CoreMessage): ChatMessage {
  const msg: ChatMessage = {
    id: m.id,
    conversationId: m.conversationId,
    sender: m.sender.accountId ? { accountId: m.sender.accountId, installationId: m.sender.installationId } : { installationId: m.sender.installationId },
    content: m.content,
    contentType: m.contentType,
    sentAt: new Date(m.sentAt),
    receivedAt: new Date(m.receivedAt),
    outgoing: m.outgoing,
  };
  if (m.contentType.startsWith("text/")) {
    try {
      msg.text = utf8.decode(m.content);
    } catch {
      /* not UTF-8 after all: content only */
    }
  }
  return msg;
}

function toInfo(c: CoreConversation): ConversationInfo {
  const info: ConversationInfo = { id: c.id, kind: c.kind, unread: c.unread };
  if (c.lastMessageAt !== undefined) info.lastMessageAt = new Date(c.lastMessageAt);
  return info;
}

class DirectConversationHandle implements Conversation {
  readonly kind = "direct" as const;
  constructor(readonly id: string, private readonly chat: ChatImpl) {}

  send(content: string | Uint8Array, options?: { contentType?: string }): Promise<{ messageId: string }> {
    return this.chat.sendTo(this.id, content, options);
  }

  history(options?: { limit?: number; before?: string }): Promise<ChatMessage[]> {
    return this.chat.historyOf(this.id, options ?? {});
  }

  markRead(messageId: string): Promise<void> {
    return this.chat.markReadIn(this.id, messageId);
  }
}

/** A test hook (Node only): kill the process after a message's commit, before it is published. */
function crashAfterPersist(): boolean {
  const env = (globalThis as { process?: { env?: Record<string, string | undefined> } }).process?.env;
  return env?.LOGOS_CHAT_TEST_CRASH_AFTER_PERSIST === "1";
}

/** Holds a Web Lock on the profile for as long as the chat is open (browsers). */
async function webLock(name: string): Promise<(() => void) | undefined> {
  const locks = (globalThis as { navigator?: { locks?: LockManager } }).navigator?.locks;
  if (!locks) return undefined;
  return new Promise((resolve, reject) => {
    locks
      .request(`logos-chat/${name}`, { ifAvailable: true }, (lock) => {
        if (!lock) {
          reject(new LogosChatError("STORE_LOCKED", `the profile "${name}" is open in another tab or worker; one writer per account`));
          return undefined;
        }
        return new Promise<void>((release) => resolve(release));
      })
      .catch(reject);
  });
}

function storageFor(options: ChatOptions, name: string): { adapter: StorageAdapter; persistent: boolean; lockName?: string } {
  const store = options.store ?? (getPlatform().browser ? "indexeddb" : "memory");
  if (store === "memory") return { adapter: new MemoryStorage(), persistent: false };
  if (store === "indexeddb") return { adapter: new IndexedDbStorage(`logos-chat/${name}`), persistent: true, lockName: name };
  if (typeof store === "object" && store !== null && "path" in store) {
    check(typeof store.path === "string" && store.path.length > 0, "store.path must be a directory path");
    const file = getPlatform().fileStorage;
    if (!file) throw new LogosChatError("INVALID_ARGUMENT", 'store: { path } needs Node; browsers use "indexeddb"');
    return { adapter: file(`${store.path.replace(/\/+$/, "")}/${encodeURIComponent(name)}`), persistent: true };
  }
  const a = store as StorageAdapter;
  check(typeof a === "object" && a !== null && typeof a.open === "function" && typeof a.commit === "function" && typeof a.range === "function", 'store must be "indexeddb", "memory", { path } or a StorageAdapter');
  return { adapter: a, persistent: true };
}

export class ChatImpl implements Chat {
  private queue: Promise<unknown> = Promise.resolve();
  private closed = false;
  private readonly subscriptions = new Map<string, Subscription>();
  private readonly listeners = {
    message: new Set<Listener<ChatMessage>>(),
    conversation: new Set<Listener<ConversationInfo>>(),
    error: new Set<Listener<LogosChatError>>(),
  };
  private readonly closeHooks: (() => void)[] = [];

  private release: (() => void) | undefined;
  private crashArmed = false;

  private constructor(
    private readonly client: glue.WasmClient,
    private readonly transport: Transport,
    private readonly adapter: StorageAdapter,
  ) {}

  /** Opens the profile's store: restores the account, or creates one, and announces it. */
  static async open(transport: Transport, options: ChatOptions): Promise<ChatImpl> {
    check(options !== null && typeof options === "object", "options must be an object");
    check(options.name === undefined || (typeof options.name === "string" && options.name.length > 0), "name must be a non-empty string");
    check(options.passphrase === undefined || typeof options.passphrase === "string", "passphrase must be a string");
    const name = options.name ?? "default";
    const { adapter, persistent, lockName } = storageFor(options, name);
    const release = lockName ? await webLock(lockName) : undefined;
    let opened = false;
    try {
      const stores = glue.WasmClient.storeNames() as [string, boolean][];
      await adapter.open([...stores.map(([s]) => s), KEYRING]);
      opened = true;
      const { key, fresh, keyring } = await storeKey(adapter, options.passphrase, persistent);
      let client: glue.WasmClient;
      try {
        if (fresh) {
          client = glue.WasmClient.create(Date.now(), key);
        } else {
          const records: [string, Uint8Array, Uint8Array][] = [];
          for (const [store, atStart] of stores) {
            if (atStart) for (const [k, v] of await adapter.getAll(store)) records.push([store, k, v]);
          }
          client = glue.WasmClient.restore(key, records, Date.now());
        }
      } catch (e) {
        throw toLogosError(e);
      } finally {
        key.fill(0);
      }
      const chat = new ChatImpl(client, transport, adapter);
      chat.release = release;
      void chat.accountId;
      const startup = client.takeStartupEffects() as CoreEffects;
      if (keyring) startup.store.unshift(keyring);
      await chat.run(async () => {
        await chat.apply(startup);
        if (!fresh) await chat.apply(client.announce(Date.now()) as CoreEffects);
      });
      return chat;
    } catch (e) {
      if (opened) await adapter.close().catch(() => undefined);
      release?.();
      throw toLogosError(e, "STORE_CORRUPT");
    }
  }

  // Read once: they stay readable after close, when the wasm client is freed.
  private ids: { accountId: string; installationId: string } | undefined;

  get accountId(): string {
    this.ids ??= { accountId: this.client.accountId, installationId: this.client.installationId };
    return this.ids.accountId;
  }

  get installationId(): string {
    this.ids ??= { accountId: this.client.accountId, installationId: this.client.installationId };
    return this.ids.installationId;
  }

  /** Runs `fn` after every earlier call has finished: the core sees one call at a time. */
  private run<T>(fn: () => Promise<T> | T): Promise<T> {
    const next = this.queue.then(() => {
      if (this.closed) throw new LogosChatError("CLOSED", "this chat is closed");
      return fn();
    });
    this.queue = next.catch(() => undefined);
    return next;
  }

  private async apply(fx: CoreEffects): Promise<void> {
    // Persist before publish: one transaction for the whole call.
    try {
      await this.adapter.commit(fx.store);
    } catch (e) {
      throw toLogosError(e, "STORE_CORRUPT");
    }
    if (fx.publish.length > 0 && this.crashArmed) {
      const proc = (globalThis as unknown as { process: { kill(pid: number, sig: string): void; pid: number } }).process;
      proc.kill(proc.pid, "SIGKILL");
    }
    for (const topic of fx.subscribe) await this.follow(topic);
    const sent: StoreOp[] = [];
    for (const out of fx.publish) {
      try {
        await this.transport.publish(out.contentTopic, out.payload);
        sent.push(...(this.client.outboxSent(out.outboxId) as CoreEffects).store);
        this.retryDelay = 1000;
      } catch (e) {
        // It stays in the persisted outbox: retried with back-off, and at the next start.
        this.emit("error", toLogosError(e, "TRANSPORT_UNAVAILABLE"));
        this.scheduleRetry();
      }
    }
    if (sent.length) await this.adapter.commit(sent, { durable: false });
    for (const account of fx.lookups) {
      await this.lookup();
      await this.apply(this.client.lookupComplete(account) as CoreEffects);
    }
    for (const ev of fx.events) {
      switch (ev.type) {
        case "message":
          this.emit("message", toMessage(ev));
          break;
        case "conversation":
          this.emit("conversation", toInfo(ev));
          break;
        case "error":
          this.emit("error", toLogosError(ev));
          break;
        default:
          break; // ack / missing: their public events land with the reliability issue
      }
    }
  }

  private retryTimer: ReturnType<typeof setTimeout> | undefined;
  private retryDelay = 1000;

  /** Publishes the outbox again after a transient failure, backing off to 30 s. */
  private scheduleRetry(): void {
    if (this.retryTimer || this.closed) return;
    const delay = this.retryDelay;
    this.retryDelay = Math.min(delay * 2, 30_000);
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      this.run(() => this.apply(this.client.pendingOutbox() as CoreEffects)).catch(() => undefined);
    }, delay);
  }

  /** Subscribes to a topic, then reads what the network stored on it. */
  private async follow(topic: string): Promise<void> {
    if (this.subscriptions.has(topic)) return;
    const sub = await this.transport.subscribe([topic], (m) => this.deliver(m));
    this.subscriptions.set(topic, sub);
    const since = this.client.catchUpSince(topic);
    const q = since === undefined ? { contentTopics: [topic] } : { contentTopics: [topic], since: new Date(since) };
    for await (const m of this.transport.query(q)) await this.handle(m);
  }

  private async handle(m: DeliveryMessage): Promise<void> {
    const fx = this.client.receive(m.contentTopic, m.payload, m.timestamp.getTime(), Date.now()) as CoreEffects;
    await this.apply(fx);
  }

  private deliver(m: DeliveryMessage): void {
    if (this.closed) return;
    this.run(() => this.handle(m)).catch((e) => {
      if (!this.closed) this.emit("error", toLogosError(e));
    });
  }

  private directorySince: Date | undefined;

  /**
   * Reads the directory topics' history into the core: everything the first time, then
   * what came since the last lookup (a minute of overlap for clock skew; the core skips
   * records it has seen).
   */
  private async lookup(): Promise<void> {
    const topics = glue.WasmClient.directoryTopics();
    const started = new Date();
    const q = this.directorySince ? { contentTopics: topics, since: this.directorySince } : { contentTopics: topics };
    for await (const m of this.transport.query(q)) {
      try {
        this.client.ingestDirectory(m.contentTopic, m.payload);
      } catch {
        /* shared space: records that do not verify are ignored */
      }
    }
    this.directorySince = new Date(started.getTime() - 60_000);
  }

  startDirect(accountId: string): Promise<Conversation> {
    return this.run(async () => {
      check(typeof accountId === "string", "accountId must be a string");
      await this.lookup();
      let started: { conversationId: string; effects: CoreEffects };
      try {
        started = this.client.startDirect(accountId, Date.now()) as typeof started;
      } catch (e) {
        throw toLogosError(e);
      }
      await this.apply(started.effects);
      return new DirectConversationHandle(started.conversationId, this);
    });
  }

  /** Used by conversation handles. */
  sendTo(id: string, content: string | Uint8Array, options?: { contentType?: string }): Promise<{ messageId: string }> {
    return this.run(async () => {
      check(typeof content === "string" || content instanceof Uint8Array, "content must be a string or a Uint8Array");
      check(options === undefined || (typeof options === "object" && options !== null), "options must be an object");
      const bytes = typeof content === "string" ? encoder.encode(content) : content;
      let sent: { messageId: string; effects: CoreEffects };
      try {
        sent = this.client.send(id, bytes, Date.now()) as typeof sent;
      } catch (e) {
        throw toLogosError(e);
      }
      this.crashArmed = crashAfterPersist();
      await this.apply(sent.effects);
      return { messageId: sent.messageId };
    });
  }

  /** Used by conversation handles: a page of stored history, newest last. */
  historyOf(id: string, options: { limit?: number; before?: string }): Promise<ChatMessage[]> {
    return this.run(async () => {
      const limit = options.limit ?? 50;
      check(Number.isInteger(limit) && limit > 0 && limit <= 1000, "limit must be an integer from 1 to 1000");
      let beforeSeq: number | undefined;
      if (options.before !== undefined) {
        check(typeof options.before === "string", "before must be a message id");
        const key = this.client.messageIndexKey(options.before);
        const value = await this.adapter.get("message_index", key);
        if (!value) throw new LogosChatError("INVALID_ARGUMENT", "before names no stored message");
        const at = this.client.openMessageIndex(key, value) as { conversationId: string; seq: number };
        check(at.conversationId === id, "before names a message of another conversation");
        beforeSeq = at.seq;
      }
      try {
        const { from, to } = this.client.historyRange(id, beforeSeq) as { from: Uint8Array; to: Uint8Array };
        const rows = await this.adapter.range("messages", from, to, { limit, reverse: true });
        rows.reverse();
        return (this.client.openMessages(rows) as CoreMessage[]).map(toMessage);
      } catch (e) {
        throw toLogosError(e);
      }
    });
  }

  /** Used by conversation handles. */
  markReadIn(id: string, messageId: string): Promise<void> {
    return this.run(async () => {
      check(typeof messageId === "string", "messageId must be a string");
      try {
        await this.apply(this.client.markRead(id) as CoreEffects);
      } catch (e) {
        throw toLogosError(e);
      }
    });
  }

  conversations(): Promise<ConversationInfo[]> {
    return this.run(() => (this.client.conversations() as CoreConversation[]).map(toInfo));
  }

  conversation(id: string): Promise<Conversation | undefined> {
    return this.run(() => {
      check(typeof id === "string", "id must be a string");
      return this.client.hasConversation(id) ? new DirectConversationHandle(id, this) : undefined;
    });
  }

  on(event: "message", cb: (m: ChatMessage) => void): () => void;
  on(event: "conversation", cb: (c: ConversationInfo) => void): () => void;
  on(event: "error", cb: (e: LogosChatError) => void): () => void;
  on(event: "message" | "conversation" | "error", cb: (v: never) => void): () => void {
    check(event in this.listeners, `unknown event ${String(event)}`);
    check(typeof cb === "function", "listener must be a function");
    const set = this.listeners[event] as Set<(v: never) => void>;
    set.add(cb);
    return () => set.delete(cb);
  }

  private emit<K extends keyof ChatImpl["listeners"]>(event: K, value: Parameters<ChatImpl["listeners"][K] extends Set<infer L> ? (L extends (v: infer V) => void ? (v: V) => void : never) : never>[0]): void {
    for (const cb of this.listeners[event] as Set<(v: typeof value) => void>) {
      try {
        cb(value);
      } catch (e) {
        // An app listener's exception must not break the driver.
        queueMicrotask(() => {
          throw e;
        });
      }
    }
  }

  messages(): AsyncIterable<ChatMessage> {
    const buffered: ChatMessage[] = [];
    let wake: (() => void) | undefined;
    let done = false;
    const off = this.on("message", (m) => {
      buffered.push(m);
      wake?.();
    });
    this.onClose(() => {
      done = true;
      wake?.();
    });
    const iterator: AsyncIterator<ChatMessage> = {
      next: async () => {
        while (buffered.length === 0 && !done) await new Promise<void>((r) => (wake = r));
        wake = undefined;
        const value = buffered.shift();
        if (value) return { value, done: false };
        off();
        return { value: undefined, done: true };
      },
      return: async () => {
        done = true;
        off();
        return { value: undefined, done: true };
      },
    };
    return { [Symbol.asyncIterator]: () => iterator };
  }

  /** Registers a hook that runs when the chat closes. */
  onClose(hook: () => void): void {
    if (this.closed) hook();
    else this.closeHooks.push(hook);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    await this.queue;
    this.closed = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    await Promise.all([...this.subscriptions.values()].map((s) => s.unsubscribe().catch(() => undefined)));
    this.subscriptions.clear();
    for (const hook of this.closeHooks.splice(0)) hook();
    this.client.free();
    await this.adapter.close().catch(() => undefined);
    this.release?.();
  }
}
