/**
 * A chat's events for the app: typed listeners, the backlog that holds what the first
 * catch-up read until the app listens, listener failures reported as LISTENER_FAILED,
 * and `messages()` as an async iterator.
 */
import { check, LogosChatError, toLogosError } from "./errors.js";
import { type CoreEvent, toInfo, toInstallation, toMessage, toSender } from "./core-types.js";
import type { ChatMessage, ConversationInfo, InstallationInfo, Member, Sender } from "./types.js";

/** What each event carries. */
export interface ChatEventMap {
  message: ChatMessage;
  conversation: ConversationInfo;
  members: { conversationId: string; members: Member[] };
  missing: { conversationId: string; messageId: string; sender?: Sender };
  ack: { conversationId: string; messageId: string; by: Sender };
  receipt: { conversationId: string; messageId: string; by: Sender; state: "delivered" | "read" };
  typing: { conversationId: string; by: Sender; typing: boolean };
  lost: { conversationId: string; messageId: string; sender?: Sender };
  synced: { conversationId?: string };
  error: LogosChatError;
  installations: { installations: InstallationInfo[] };
}
export type ChatEventName = keyof ChatEventMap;

/** Events held for the app until it listens, while the first catch-up runs (bounded). */
const BACKLOG_CAP = 10_000;
const NAMES: readonly ChatEventName[] = ["message", "conversation", "members", "missing", "ack", "receipt", "typing", "lost", "synced", "error", "installations"];

type AnyListener = (value: unknown) => void;

export class ChatEvents {
  private readonly listeners = new Map<ChatEventName, Set<AnyListener>>(NAMES.map((n) => [n, new Set()]));
  /**
   * Until the first catch-up is done, events for which the app has no listener yet wait
   * here: what arrived while the account was closed reaches `on("message")` and
   * `messages()` once the app listens, even though it is read during `chat()`.
   */
  private backlog: Map<ChatEventName, unknown[]> | undefined = new Map();

  /** Emits one of the core's events as the app sees it; a conversation event also returns its info. */
  emitCore(ev: Exclude<CoreEvent, { type: "voteRequest" }>): ConversationInfo | undefined {
    const withSender = (e: { conversationId: string; messageId: string; sender?: { accountId?: string; installationId: string } }) =>
      e.sender ? { conversationId: e.conversationId, messageId: e.messageId, sender: toSender(e.sender) } : { conversationId: e.conversationId, messageId: e.messageId };
    switch (ev.type) {
      case "message":
        this.emit("message", toMessage(ev));
        return undefined;
      case "conversation": {
        const info = toInfo(ev);
        this.emit("conversation", info);
        return info;
      }
      case "members":
        this.emit("members", { conversationId: ev.conversationId, members: ev.members });
        return undefined;
      case "error":
        this.emit("error", toLogosError(ev));
        return undefined;
      case "missing":
        this.emit("missing", withSender(ev));
        return undefined;
      case "lost":
        this.emit("lost", withSender(ev));
        return undefined;
      case "ack": {
        // An ack is the delivery receipt: another installation has our message.
        const by = toSender(ev.by);
        this.emit("ack", { conversationId: ev.conversationId, messageId: ev.messageId, by });
        this.emit("receipt", { conversationId: ev.conversationId, messageId: ev.messageId, by, state: "delivered" });
        return undefined;
      }
      case "receipt":
        this.emit("receipt", { conversationId: ev.conversationId, messageId: ev.messageId, by: toSender(ev.by), state: ev.state });
        return undefined;
      case "typing":
        this.emit("typing", { conversationId: ev.conversationId, by: toSender(ev.by), typing: ev.typing });
        return undefined;
      case "installations":
        this.emit("installations", { installations: ev.installations.map(toInstallation) });
        return undefined;
      default:
        return undefined;
    }
  }

  on<K extends ChatEventName>(event: K, cb: (value: ChatEventMap[K]) => void): () => void {
    check(typeof event === "string" && this.listeners.has(event), `unknown event ${String(event)}`);
    check(typeof cb === "function", "listener must be a function");
    const set = this.listeners.get(event) as Set<AnyListener>;
    const listener = cb as AnyListener;
    set.add(listener);
    const waiting = this.backlog?.get(event);
    if (waiting) {
      // What came before the app listened (the first catch-up): handed over in order.
      this.backlog?.delete(event);
      queueMicrotask(() => {
        for (const v of waiting) this.call(event, listener, v);
      });
    }
    return () => set.delete(listener);
  }

  emit<K extends ChatEventName>(event: K, value: ChatEventMap[K]): void {
    const set = this.listeners.get(event) as Set<AnyListener>;
    if (set.size === 0 && this.backlog && event !== "error" && event !== "synced") {
      let waiting = this.backlog.get(event);
      if (!waiting) this.backlog.set(event, (waiting = []));
      if (waiting.length < BACKLOG_CAP) waiting.push(value);
      return;
    }
    for (const cb of set) this.call(event, cb, value);
  }

  /** The first catch-up is over: events with no listener are no longer kept. */
  endBacklog(): void {
    this.backlog = undefined;
  }

  /**
   * Calls one app listener. A listener that throws must not break the driver or the
   * other listeners: it is reported on `error` (LISTENER_FAILED), and a throwing `error`
   * listener is reported on the console only.
   */
  private call(event: ChatEventName, cb: AnyListener, value: unknown): void {
    try {
      cb(value);
    } catch (e) {
      if (event === "error") {
        console.error("logos-chat: an error listener threw", e);
        return;
      }
      const err = new LogosChatError("LISTENER_FAILED", `a "${event}" listener threw: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
      for (const l of this.listeners.get("error") ?? []) this.call("error", l, err);
    }
  }

  /** Every message from now on, until the chat closes (`onClose` registers the end). */
  messages(onClose: (hook: () => void) => void): AsyncIterable<ChatMessage> {
    const buffered: ChatMessage[] = [];
    let wake: (() => void) | undefined;
    let done = false;
    const off = this.on("message", (m) => {
      buffered.push(m);
      wake?.();
    });
    onClose(() => {
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
}
