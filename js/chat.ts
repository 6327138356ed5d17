/**
 * The driver: owns one WasmClient, serialises every call into it (one at a time,
 * in order), and applies the core's effects: subscribe (then catch up from
 * history) → publish → directory lookups → events. Business logic stays in Rust.
 */
import { check, LogosChatError, toLogosError } from "./errors.js";
import type { Chat, ChatMessage, ChatOptions, Conversation, ConversationInfo, DeliveryMessage, Subscription, Transport } from "./types.js";
import { glue } from "./wasm.js";

/** The core's effects, as the wasm layer hands them over. */
interface CoreEffects {
  subscribe: string[];
  publish: { contentTopic: string; payload: Uint8Array }[];
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

  private constructor(private readonly client: glue.WasmClient, private readonly transport: Transport) {}

  /** Creates the account and announces it (directory records, inbox subscription). */
  static async open(transport: Transport, options: ChatOptions): Promise<ChatImpl> {
    check(options !== null && typeof options === "object", "options must be an object");
    check(options.name === undefined || (typeof options.name === "string" && options.name.length > 0), "name must be a non-empty string");
    const store = (options as { store?: unknown }).store;
    if (store !== undefined && store !== "memory") {
      throw new LogosChatError("INVALID_ARGUMENT", `store ${JSON.stringify(store)} is not available in this build: state is kept in memory`);
    }
    let client: glue.WasmClient;
    try {
      client = glue.WasmClient.create(Date.now());
    } catch (e) {
      throw toLogosError(e);
    }
    const chat = new ChatImpl(client, transport);
    await chat.run(async () => chat.apply(client.announce(Date.now()) as CoreEffects));
    return chat;
  }

  get accountId(): string {
    return this.client.accountId;
  }

  get installationId(): string {
    return this.client.installationId;
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
    for (const topic of fx.subscribe) await this.follow(topic);
    for (const out of fx.publish) {
      try {
        await this.transport.publish(out.contentTopic, out.payload);
      } catch (e) {
        // The outbox with retries lands with persistence; until then a failed
        // publish is reported, not lost silently.
        this.emit("error", toLogosError(e, "TRANSPORT_UNAVAILABLE"));
      }
    }
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

  /** Subscribes to a topic, then reads what the network stored on it. */
  private async follow(topic: string): Promise<void> {
    if (this.subscriptions.has(topic)) return;
    const sub = await this.transport.subscribe([topic], (m) => this.deliver(m));
    this.subscriptions.set(topic, sub);
    for await (const m of this.transport.query({ contentTopics: [topic] })) this.handle(m);
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

  /** Reads the directory topics' history into the core. */
  private async lookup(): Promise<void> {
    const topics = glue.WasmClient.directoryTopics();
    for await (const m of this.transport.query({ contentTopics: topics })) {
      try {
        this.client.ingestDirectory(m.contentTopic, m.payload);
      } catch {
        /* shared space: records that do not verify are ignored */
      }
    }
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
      await this.apply(sent.effects);
      return { messageId: sent.messageId };
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
    await Promise.all([...this.subscriptions.values()].map((s) => s.unsubscribe().catch(() => undefined)));
    this.subscriptions.clear();
    for (const hook of this.closeHooks.splice(0)) hook();
    this.client.free();
  }
}
