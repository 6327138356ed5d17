/**
 * Reading lost messages back from the store. Causal history names a message that never
 * came (a filter push can be lost); the core reports it once, so the driver keeps asking
 * until the core has it: a read that fails (a busy store) or comes too early (the store
 * has not got it yet) is tried again with back-off. What was already handled is skipped
 * by the core, so a read too many costs a query and nothing else.
 */

/** Back-off between tries of a read the core depends on: 0.5 s doubling, 16 s at most. */
export const backoff = (attempt: number): number => Math.min(16_000, 500 * 2 ** attempt);

/** Reads of one conversation before its missing messages are given up (about 30 s). */
const REPAIR_TRIES = 6;

export class Repairs {
  /** Conversation → ids of the messages it still misses. */
  private readonly wanted = new Map<string, Set<string>>();
  private readonly timers = new Map<string, ReturnType<typeof setTimeout>>();
  private closed = false;

  constructor(
    /** Reads a conversation's recent topic history from the store into the core. */
    private readonly read: (conversationId: string) => Promise<void>,
    /** Whether the core has the message (handed to the app, or held for its sender). */
    private readonly has: (conversationId: string, messageId: string) => boolean,
  ) {}

  /** The core reported `messageId` missing: read the conversation again in a second. */
  missing(conversationId: string, messageId: string): void {
    let ids = this.wanted.get(conversationId);
    if (!ids) this.wanted.set(conversationId, (ids = new Set()));
    ids.add(messageId);
    this.schedule(conversationId, 0);
  }

  close(): void {
    this.closed = true;
    for (const t of this.timers.values()) clearTimeout(t);
    this.timers.clear();
    this.wanted.clear();
  }

  private schedule(conversationId: string, attempt: number): void {
    if (this.timers.has(conversationId)) return;
    const timer = setTimeout(() => void this.attempt(conversationId, attempt), attempt === 0 ? 1000 : backoff(attempt));
    this.timers.set(conversationId, timer);
  }

  /** Forgets the ids the core now has; whether any are still missing. */
  private stillMissing(conversationId: string): boolean {
    const ids = this.wanted.get(conversationId);
    if (this.closed || !ids) return false;
    for (const id of ids) if (this.has(conversationId, id)) ids.delete(id);
    if (ids.size === 0) this.wanted.delete(conversationId);
    return ids.size > 0;
  }

  private async attempt(conversationId: string, attempt: number): Promise<void> {
    this.timers.delete(conversationId);
    if (!this.stillMissing(conversationId)) return;
    await this.read(conversationId).catch(() => undefined);
    if (!this.stillMissing(conversationId) || this.timers.has(conversationId)) return;
    if (attempt + 1 < REPAIR_TRIES) this.schedule(conversationId, attempt + 1);
    else this.wanted.delete(conversationId);
  }
}
