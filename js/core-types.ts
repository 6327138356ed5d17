/** The shapes the wasm layer hands the driver, and their conversion to the public types. */
import type { ChatMessage, ConversationInfo, InstallationInfo, Member, Sender, StoreOp, VoteRequest } from "./types.js";

/** The core's effects, as the wasm layer hands them over. */
export interface CoreEffects {
  store: StoreOp[];
  subscribe: string[];
  publish: { contentTopic: string; payload: Uint8Array; outboxId: number }[];
  lookups: string[];
  queries: { contentTopic: string; sinceMs?: number; attempt: number }[];
  registry?: RegistryRequest[];
  events: CoreEvent[];
  wakeAt?: number;
}
/** A call the core asks the driver to run against a registry directory. */
export interface RegistryRequest {
  id: number;
  op: "putAccount" | "putKeyPackage" | "getAccount" | "getKeyPackage";
  key: string;
  payload?: Uint8Array;
  signature?: Uint8Array;
  attempt: number;
  timeoutMs: number;
  notBeforeMs: number;
}
export interface CoreMessage {
  id: string; conversationId: string; sender: { accountId?: string; installationId: string };
  content: Uint8Array; contentType: string; replyTo?: string; remove?: boolean; sentAt: number; receivedAt: number; outgoing: boolean;
}

/** Content types whose bytes the app reads as `text` too. */
const TEXTUAL = new Set(["application/json", "application/vnd.logos.reaction"]);
export interface CoreConversation { id: string; kind: "direct" | "group"; peer?: string; name?: string; description?: string; lastMessageAt?: number; lastMessage?: string; unread: number; verified: boolean; request: boolean }
export interface CoreInstallation { installationId: string; current: boolean; addedAt: number }
export type CoreEvent =
  | ({ type: "message" } & CoreMessage)
  | ({ type: "conversation" } & CoreConversation)
  | { type: "ack"; conversationId: string; messageId: string; by: { accountId?: string; installationId: string } }
  | { type: "receipt"; conversationId: string; messageId: string; by: { accountId?: string; installationId: string }; state: "read" }
  | { type: "typing"; conversationId: string; by: { accountId?: string; installationId: string }; typing: boolean }
  | { type: "missing"; conversationId: string; messageId: string; sender?: { accountId?: string; installationId: string } }
  | { type: "lost"; conversationId: string; messageId: string; sender?: { accountId?: string; installationId: string } }
  | { type: "members"; conversationId: string; members: Member[] }
  | { type: "error"; code: string; message: string }
  | { type: "installations"; installations: CoreInstallation[] }
  | { type: "historyWanted"; link: string; ranges: { conversationId: string; from: Uint8Array; to: Uint8Array }[] }
  | ({ type: "voteRequest" } & VoteRequest);

const utf8 = new TextDecoder("utf-8", { fatal: true });

export function toMessage(m: CoreMessage): ChatMessage {
  const msg: ChatMessage = {
    id: m.id,
    conversationId: m.conversationId,
    sender: toSender(m.sender),
    content: m.content,
    contentType: m.contentType,
    sentAt: new Date(m.sentAt),
    receivedAt: new Date(m.receivedAt),
    outgoing: m.outgoing,
  };
  if (m.replyTo !== undefined) msg.replyTo = m.replyTo;
  if (m.remove) msg.remove = true;
  if (m.contentType.startsWith("text/") || TEXTUAL.has(m.contentType)) {
    try {
      msg.text = utf8.decode(m.content);
    } catch {
      /* not UTF-8 after all: content only */
    }
  }
  return msg;
}

/** A sender as the app sees it: verified exactly when the core set its account. */
export function toSender(s: { accountId?: string; installationId: string }): Sender {
  return s.accountId ? { accountId: s.accountId, installationId: s.installationId, verified: true } : { installationId: s.installationId, verified: false };
}

export function toInstallation(i: CoreInstallation): InstallationInfo {
  return { installationId: i.installationId, current: i.current, addedAt: new Date(i.addedAt) };
}

export function toInfo(c: CoreConversation): ConversationInfo {
  const info: ConversationInfo = { id: c.id, kind: c.kind, unread: c.unread, verified: c.verified, request: c.request };
  if (c.name !== undefined) info.name = c.name;
  if (c.description !== undefined) info.description = c.description;
  if (c.lastMessageAt !== undefined) info.lastMessageAt = new Date(c.lastMessageAt);
  if (c.lastMessage !== undefined) info.lastMessage = c.lastMessage;
  return info;
}

