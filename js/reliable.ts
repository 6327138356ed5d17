/**
 * The Reliable Channel of the Messaging API (LIP-173): the driver of the core's
 * `WasmReliableChannel`. The core decides (acknowledgement timeouts, re-sends of the
 * same bytes, syncs, repair queries, the lost timeout); this file executes: it
 * persists, applies the app's encryption hook, dispatches, queries the store by hint,
 * emits events and arms the core's wake-up. One core call at a time, in order.
 */
import { check, LogosChatError, toLogosError } from "./errors.js";
import { storageFor } from "./profile.js";
import type { ReliableChannel, ReliableChannelEvent, ReliableChannelOptions, StorageAdapter, Subscription, Transport } from "./types.js";
import { delayUntil } from "./timers.js";
import { glue } from "./wasm.js";

const STORE = "reliable";

interface Outbound { messageId: string; bytes: Uint8Array; requestId?: string; attempt: number }
interface Effects {
  ops: Array<{ key: Uint8Array; value?: Uint8Array }>;
  publish: Outbound[];
  queries: Array<{ messageHashes: string[]; attempt: number }>;
  events: Array<{ type: string; [k: string]: unknown }>;
  wakeAt?: number;
}

/** How the channel reaches the network: the node's send (size check, retries) and its transport. */
export interface ChannelNetwork {
  send(contentTopic: string, payload: Uint8Array): Promise<{ messageHash: string }>;
  transport: Transport;
}

type Listener = (e: unknown) => void;

export class ReliableChannelImpl extends EventTarget implements ReliableChannel {
  private queue: Promise<unknown> = Promise.resolve();
  private closed = false;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private subscription: Subscription | undefined;
  private readonly listeners = new Map<ReliableChannelEvent, Set<Listener>>();
  /** Request id → segments not yet dispatched, for "sent". */
  private readonly unsent = new Map<string, number>();
  private readonly wrapped = new WeakMap<object, (ev: Event) => void>();

  private constructor(
    readonly contentTopic: string,
    readonly channelId: string,
    readonly senderId: string,
    private readonly core: glue.WasmReliableChannel,
    private readonly net: ChannelNetwork,
    private readonly adapter: StorageAdapter,
    private readonly encryption: ReliableChannelOptions["encryption"],
  ) {
    super();
  }

  static async open(net: ChannelNetwork, contentTopic: string, options: ReliableChannelOptions): Promise<ReliableChannelImpl> {
    check(options !== null && typeof options === "object", "options must be an object");
    const { channelId, senderId } = options;
    check(typeof channelId === "string" && channelId.length > 0, "channelId must be a non-empty string");
    check(typeof senderId === "string" && senderId.length > 0, "senderId must be a non-empty string");
    const enc = options.encryption;
    check(enc === undefined || (typeof enc.encrypt === "function" && typeof enc.decrypt === "function"), "encryption must have encrypt and decrypt");
    try {
      glue.validateContentTopic(contentTopic);
    } catch (e) {
      throw toLogosError(e, "INVALID_ARGUMENT");
    }
    const { adapter } = storageFor({ store: options.store ?? "memory" }, "reliable-channels");
    await adapter.open([STORE]);
    let core: glue.WasmReliableChannel;
    try {
      const [from, to] = glue.WasmReliableChannel.keyRange(channelId, senderId) as [Uint8Array, Uint8Array];
      const records = await adapter.range(STORE, from, to, { limit: Number.MAX_SAFE_INTEGER, reverse: false });
      const settings = {
        causalHistory: options.causalHistorySize,
        ackTimeoutMs: options.ackTimeoutMs,
        maxRetransmissions: options.maxRetransmissions,
        lostAfterMs: options.lostAfterMs,
        syncDelayMs: options.syncDelayMs,
        bloomInContent: options.bloomInContent,
        segmentSize: options.segmentSizeBytes,
      };
      core = glue.WasmReliableChannel.open(channelId, senderId, settings, records, Date.now());
    } catch (e) {
      await adapter.close().catch(() => undefined);
      throw toLogosError(e, "STORE_CORRUPT");
    }
    const ch = new ReliableChannelImpl(contentTopic, channelId, senderId, core, net, adapter, enc);
    try {
      ch.subscription = await net.transport.subscribe([contentTopic], (m) => void ch.incoming(m.payload, m.messageHash));
    } catch (e) {
      // Offline: what we send waits in the core and goes out with its re-sends.
      ch.emit("error", toLogosError(e, "TRANSPORT_UNAVAILABLE"));
    }
    // Re-sends and repairs that were due while the channel was closed.
    void ch.run(() => ch.apply(ch.core.tick(Date.now()) as Effects));
    return ch;
  }

  async send(payload: Uint8Array): Promise<{ messageId: string }> {
    check(payload instanceof Uint8Array, "payload must be a Uint8Array");
    return this.run(async () => {
      let sent: { requestId: string; effects: Effects };
      try {
        sent = this.core.send(payload, Date.now()) as typeof sent;
      } catch (e) {
        throw toLogosError(e, "INVALID_ARGUMENT");
      }
      this.unsent.set(sent.requestId, sent.effects.publish.filter((o) => o.requestId === sent.requestId).length);
      await this.apply(sent.effects);
      return { messageId: sent.requestId };
    });
  }

  on(event: ReliableChannelEvent, cb: (e: any) => void): () => void {
    check(["message", "sent", "delivered", "missing", "lost", "error"].includes(event), `unknown event ${String(event)}`);
    check(typeof cb === "function", "the listener must be a function");
    let set = this.listeners.get(event);
    if (!set) this.listeners.set(event, (set = new Set()));
    set.add(cb);
    return () => set.delete(cb);
  }

  /**
   * LIP-173's `message:*` events, with listeners that may throw: a throwing listener
   * is reported on `error` (LISTENER_FAILED) instead of reaching the host (Node would
   * end the process on it).
   */
  override addEventListener(type: string, listener: EventListenerOrEventListenerObject | null, options?: AddEventListenerOptions | boolean): void {
    if (!listener) return;
    let wrapped = this.wrapped.get(listener);
    if (!wrapped) {
      wrapped = (ev: Event) => {
        try {
          if (typeof listener === "function") listener.call(this, ev);
          else listener.handleEvent(ev);
        } catch (e) {
          this.reportListener(type, e);
        }
      };
      this.wrapped.set(listener, wrapped);
    }
    super.addEventListener(type, wrapped, options);
  }

  override removeEventListener(type: string, listener: EventListenerOrEventListenerObject | null, options?: EventListenerOptions | boolean): void {
    const wrapped = listener && this.wrapped.get(listener);
    if (wrapped) super.removeEventListener(type, wrapped, options);
  }

  /** Ids other participants named that have not come (yet). */
  missing(): string[] {
    return this.closed ? [] : this.core.missingIds();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    await this.queue.catch(() => undefined);
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    await this.subscription?.unsubscribe().catch(() => undefined);
    this.core.free();
    await this.adapter.close().catch(() => undefined);
  }

  private run<T>(fn: () => Promise<T> | T): Promise<T> {
    const next = this.queue.then(() => {
      if (this.closed) throw new LogosChatError("CLOSED", "this channel is closed");
      return fn();
    });
    this.queue = next.catch(() => undefined);
    return next;
  }

  private incoming(payload: Uint8Array, messageHash: string): Promise<void> {
    return this.run(async () => {
      let bytes = payload;
      if (this.encryption) {
        try {
          bytes = await this.encryption.decrypt(payload);
        } catch (e) {
          this.emit("error", toLogosError(e, "DECRYPT_FAILED"));
          return;
        }
      }
      await this.apply(this.core.receive(bytes, messageHash, Date.now()) as Effects);
    }).catch(() => undefined);
  }

  /** Persist, dispatch, query, emit, arm: the order of DESIGN.md §1. */
  private async apply(fx: Effects): Promise<void> {
    if (fx.ops.length) {
      await this.adapter.commit(fx.ops.map((op) => ({ store: STORE, key: op.key, value: op.value })));
    }
    for (const out of fx.publish) await this.dispatch(out);
    for (const q of fx.queries) void this.query(q.messageHashes);
    this.events(fx.events);
    this.arm(fx.wakeAt);
  }

  private async dispatch(out: Outbound): Promise<void> {
    let wire = out.bytes;
    try {
      if (this.encryption) wire = await this.encryption.encrypt(out.bytes);
      const { messageHash } = await this.net.send(this.contentTopic, wire);
      const fx = this.core.published(out.messageId, messageHash) as Effects;
      if (fx.ops.length) await this.adapter.commit(fx.ops.map((op) => ({ store: STORE, key: op.key, value: op.value })), { durable: false });
      if (out.requestId && out.attempt === 0) {
        const left = (this.unsent.get(out.requestId) ?? 1) - 1;
        if (left <= 0) {
          this.unsent.delete(out.requestId);
          this.emit("sent", { messageId: out.requestId });
        } else this.unsent.set(out.requestId, left);
      }
    } catch (e) {
      // The core re-sends it at its next timeout; the app hears of the failure now.
      const err = toLogosError(e, "TRANSPORT_UNAVAILABLE");
      if (out.requestId) Object.assign(err, { messageId: out.requestId });
      this.emit("error", err, "message:send-error");
    }
  }

  /** Reads missing messages back from the store by their hints; what comes goes through the core. */
  private async query(hashes: string[]): Promise<void> {
    try {
      for await (const m of this.net.transport.query({ contentTopics: [this.contentTopic], messageHashes: hashes })) {
        if (this.closed) return;
        void this.incoming(m.payload, m.messageHash);
      }
    } catch {
      // Best effort: the core asks again with back-off until the message is lost.
    }
  }

  private events(events: Effects["events"]): void {
    for (const ev of events) {
      switch (ev.type) {
        case "received":
          this.emit("message", { messageId: ev.messageId, senderId: ev.senderId, payload: ev.payload, lamport: ev.lamport });
          break;
        case "delivered":
          this.emit("delivered", { messageId: ev.requestId, by: ev.by });
          break;
        case "deliveryFailed": {
          const err = new LogosChatError("TRANSPORT_UNAVAILABLE", `no acknowledgement for ${String(ev.requestId)} after the last re-send`);
          Object.assign(err, { messageId: ev.requestId, unackedBy: ev.unackedBy });
          this.emit("error", err, "message:delivery-error");
          break;
        }
        case "missing":
          this.emit("missing", { messageId: ev.messageId, senderId: ev.senderId });
          break;
        case "lost":
          this.emit("lost", { messageId: ev.messageId, senderId: ev.senderId });
          break;
        case "error":
          this.emit("error", toLogosError(ev));
          break;
      }
    }
  }

  private arm(wakeAt: number | undefined): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    if (wakeAt === undefined || this.closed) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.run(() => this.apply(this.core.tick(Date.now()) as Effects)).catch(() => undefined);
    }, delayUntil(wakeAt));
  }

  /** Our `on(...)` listeners and the LIP-173 names on the EventTarget. */
  private emit(event: ReliableChannelEvent, value: unknown, lipName?: string): void {
    const lip = lipName ?? LIP_NAMES[event];
    if (lip) {
      const detail = value instanceof LogosChatError ? { ...value, code: value.code, message: value.message } : value;
      this.dispatchEvent(new CustomEvent(lip, { detail }));
    }
    for (const cb of this.listeners.get(event) ?? []) {
      try {
        cb(value);
      } catch (e) {
        if (event === "error") console.error("logos-chat: an error listener threw", e);
        else this.reportListener(event, e);
      }
    }
  }

  private reportListener(event: string, e: unknown): void {
    const err = new LogosChatError("LISTENER_FAILED", `a "${event}" listener threw: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
    for (const cb of this.listeners.get("error") ?? []) {
      try {
        cb(err);
      } catch (e2) {
        console.error("logos-chat: an error listener threw", e2);
      }
    }
  }
}

/** LIP-173's event names (`message:*`), beside our `on(...)` names. */
const LIP_NAMES: Partial<Record<ReliableChannelEvent, string>> = {
  message: "message:received",
  sent: "message:sent",
  delivered: "message:delivered",
  missing: "message:missing",
  lost: "message:lost",
};
