/**
 * What the Logos Delivery transports (edge: js-waku light node; core: relay) share: the
 * fan-out of one network subscription per content topic to many callbacks, the time of the
 * last message seen per topic, the catch-up from the store after a reconnect, and health.
 * No I/O of its own: the transport passes in its store query.
 */
import type { DeliveryMessage } from "../types.js";

export type Health = "connected" | "partially-connected" | "disconnected";

type Callback = (m: DeliveryMessage) => void;
type Query = (q: { contentTopics: string[]; since?: Date }) => AsyncIterable<DeliveryMessage>;

/** How far before the last message seen a catch-up starts (clock skew between peers). */
const CATCH_UP_SLACK_MS = 5_000;

/** Callbacks per content topic, and what each topic last saw. */
export class TopicFanout {
  private readonly callbacks = new Map<string, Set<Callback>>();
  private readonly lastSeen = new Map<string, Date>();

  /** Adds a callback; true when the topic is new (the transport must subscribe it). */
  add(topic: string, cb: Callback): boolean {
    let set = this.callbacks.get(topic);
    const fresh = !set;
    if (!set) {
      this.callbacks.set(topic, (set = new Set()));
      this.lastSeen.set(topic, new Date());
    }
    set.add(cb);
    return fresh;
  }

  /** Removes a callback; true when the topic has none left (the transport unsubscribes it). */
  remove(topic: string, cb: Callback): boolean {
    const set = this.callbacks.get(topic);
    if (!set) return false;
    set.delete(cb);
    if (set.size > 0) return false;
    this.callbacks.delete(topic);
    return true;
  }

  has(topic: string): boolean {
    return this.callbacks.has(topic);
  }

  topics(): string[] {
    return [...this.callbacks.keys()];
  }

  deliver(topic: string, m: DeliveryMessage): void {
    const seen = this.lastSeen.get(topic);
    if (!seen || m.timestamp > seen) this.lastSeen.set(topic, m.timestamp);
    for (const cb of this.callbacks.get(topic) ?? []) cb(m);
  }

  /** After a reconnect: what was published on the subscribed topics while we were away. */
  async catchUp(query: Query): Promise<void> {
    for (const [topic, since] of this.lastSeen) {
      if (!this.callbacks.has(topic)) continue;
      try {
        for await (const m of query({ contentTopics: [topic], since: new Date(since.getTime() - CATCH_UP_SLACK_MS) })) this.deliver(topic, m);
      } catch {
        /* still not reachable: the next health change tries again */
      }
    }
  }
}

/** A health value with listeners; `set` reports the change and whether we came back. */
export class HealthState {
  private value: Health = "disconnected";
  private readonly listeners = new Set<(h: Health) => void>();

  get current(): Health {
    return this.value;
  }

  on(cb: (h: Health) => void): () => void {
    this.listeners.add(cb);
    return () => this.listeners.delete(cb);
  }

  /** Sets the value; true when it moved from disconnected to connected or partially so. */
  set(next: Health): boolean {
    const was = this.value;
    this.value = next;
    if (next !== was) for (const cb of this.listeners) cb(next);
    return was === "disconnected" && next !== "disconnected";
  }
}
