/**
 * Conversation handles: they validate arguments and forward to the driver, which
 * forwards to the core. A group's name and description are read from the driver's latest
 * conversation info.
 */
import { check } from "./errors.js";
import type { ChatMessage, Conversation, Group, GroupPermissions, Member, SendOptions } from "./types.js";

/** The content type of reactions (`core::content::REACTION_TYPE`). */
export const REACTION_TYPE = "application/vnd.logos.reaction";

/** What a handle needs from the driver. */
export interface ConversationDriver {
  sendTo(id: string, content: string | Uint8Array, options?: SendOptions & { remove?: boolean }): Promise<{ messageId: string }>;
  historyOf(id: string, options: { limit?: number; before?: string }): Promise<ChatMessage[]>;
  markReadIn(id: string, messageId: string): Promise<void>;
  setTypingIn(id: string, typing: boolean): Promise<void>;
  membersOf(id: string): Promise<Member[]>;
  groupCall(id: string, call: "addMembers" | "removeMembers", accounts: string[]): Promise<void>;
  groupCall(id: string, call: "leave"): Promise<void>;
  groupCall(id: string, call: "setMetadata", name: string, description: string): Promise<void>;
  stewardsOf(id: string): Promise<string[]>;
  infoOf(id: string): { name?: string; description?: string } | undefined;
}

const accountList = (ids: unknown) => {
  check(Array.isArray(ids) && ids.every((a) => typeof a === "string"), "accountIds must be an array of account ids");
  return ids as string[];
};

/** A 1:1 chat, and the base of a group handle. */
export class ConversationHandle implements Conversation {
  readonly kind: "direct" | "group" = "direct";
  constructor(readonly id: string, protected readonly driver: ConversationDriver) {}

  send(content: string | Uint8Array, options?: SendOptions): Promise<{ messageId: string }> {
    return this.driver.sendTo(this.id, content, options);
  }

  reply(messageId: string, content: string | Uint8Array, options?: { contentType?: string }): Promise<{ messageId: string }> {
    check(typeof messageId === "string", "messageId must be a string");
    return this.driver.sendTo(this.id, content, { ...options, replyTo: messageId });
  }

  react(messageId: string, emoji: string, options?: { remove?: boolean }): Promise<{ messageId: string }> {
    check(typeof messageId === "string", "messageId must be a string");
    check(typeof emoji === "string", "emoji must be a string");
    return this.driver.sendTo(this.id, emoji, { contentType: REACTION_TYPE, replyTo: messageId, remove: options?.remove === true });
  }

  history(options?: { limit?: number; before?: string }): Promise<ChatMessage[]> {
    return this.driver.historyOf(this.id, options ?? {});
  }

  markRead(messageId: string): Promise<void> {
    return this.driver.markReadIn(this.id, messageId);
  }

  setTyping(typing: boolean): Promise<void> {
    return this.driver.setTypingIn(this.id, typing);
  }

  members(): Promise<Member[]> {
    return this.driver.membersOf(this.id);
  }
}

/** A group. */
export class GroupHandle extends ConversationHandle implements Group {
  override readonly kind = "group" as const;

  get name(): string {
    return this.driver.infoOf(this.id)?.name ?? "";
  }

  get description(): string {
    return this.driver.infoOf(this.id)?.description ?? "";
  }

  stewards(): Promise<string[]> {
    return this.driver.stewardsOf(this.id);
  }

  addMembers(accountIds: string[]): Promise<void> {
    return this.driver.groupCall(this.id, "addMembers", accountList(accountIds));
  }

  removeMembers(accountIds: string[]): Promise<void> {
    return this.driver.groupCall(this.id, "removeMembers", accountList(accountIds));
  }

  leave(): Promise<void> {
    return this.driver.groupCall(this.id, "leave");
  }

  setName(name: string): Promise<void> {
    check(typeof name === "string", "name must be a string");
    return this.driver.groupCall(this.id, "setMetadata", name, this.description);
  }

  setDescription(description: string): Promise<void> {
    check(typeof description === "string", "description must be a string");
    return this.driver.groupCall(this.id, "setMetadata", this.name, description);
  }
}

/** `createGroup`'s permissions as the core's bits (add 1, remove 2, rename 4: stewards only). */
export function permissionBits(p: GroupPermissions | undefined): number {
  if (p === undefined) return 0;
  check(typeof p === "object" && p !== null, "permissions must be an object");
  let bits = 0;
  for (const [i, key] of (["add", "remove", "rename"] as const).entries()) {
    const role = p[key];
    check(role === undefined || role === "members" || role === "stewards", `permissions.${key} is "members" or "stewards"`);
    if (role === "stewards") bits |= 1 << i;
  }
  return bits;
}
