/**
 * The driver: owns one WasmClient, serialises every call into it (one at a time,
 * in order), and applies the core's effects: subscribe (then catch up from
 * history) → publish → directory lookups → events. Business logic stays in Rust.
 */
import { RetryTimer, WakeTimer } from "./timers.js";
import { check, isWasmTrap, LogosChatError, toLogosError } from "./errors.js";
import { KEYRING, storeKey, wrapRecovery } from "./keyring.js";
import { crashAfterPersist, storageFor, webLock } from "./profile.js";
import { type ConversationDriver, ConversationHandle, GroupHandle, permissionBits } from "./conversation.js";
import { type CoreConversation, type CoreEffects, type CoreInstallation, type CoreMessage, type RegistryRequest, toInfo, toInstallation, toMessage } from "./core-types.js";
import type { Chat, ChatMessage, ChatOptions, Contact, Conversation, ConversationInfo, DeliveryMessage, Directory, SendOptions, Group, GroupPermissions, GroupTiming, InstallationInfo, Member, StorageAdapter, StoreOp, Subscription, Transport, VoteRequest } from "./types.js";

const encoder = new TextEncoder();
import { glue } from "./wasm.js";
import { ChatEvents, type ChatEventMap, type ChatEventName } from "./chat-events.js";
import { DirectoryReader } from "./directory.js";
import { execute, registryFor, RegistryReader, report } from "./registry.js";
import { linkDevice, recoverDevice } from "./devices.js";

/** Back-off of a subscription the transport refused (offline): 1 s doubling, 30 s at most. */
const resubscribeDelay = (attempt: number): number => Math.min(30_000, 1000 * 2 ** attempt);
export class ChatImpl implements Chat, ConversationDriver {
  private queue: Promise<unknown> = Promise.resolve();
  private closed = false;
  private readonly subscriptions = new Map<string, Subscription>();

  /** The app's listeners, and what waits for them during the first catch-up. */
  private readonly events = new ChatEvents();
  /** Topics whose catch-up read waits until `chat()` has resolved. */
  private catchUps: string[] | undefined = [];
  /** The latest info of each conversation (a group handle's name and description). */
  private readonly infos = new Map<string, ConversationInfo>();
  private readonly closeHooks: (() => void)[] = [];

  private release: (() => void) | undefined;
  private voteHook: ChatOptions["onVote"];
  private crashArmed = false;

  private constructor(
    private readonly client: glue.WasmClient,
    private readonly transport: Transport,
    private readonly adapter: StorageAdapter,
    private readonly registry?: Directory,
  ) {
    this.directory = registry
      ? new RegistryReader(registry, client, (fx) => this.apply(fx), () => this.closed || this.closing)
      : new DirectoryReader(transport, client);
  }

  /** Opens the profile's store: restores the account, or creates one, and announces it. */
  static async open(transport: Transport, options: ChatOptions): Promise<ChatImpl> {
    check(options !== null && typeof options === "object", "options must be an object");
    check(options.name === undefined || (typeof options.name === "string" && options.name.length > 0), "name must be a non-empty string");
    check(options.passphrase === undefined || typeof options.passphrase === "string", "passphrase must be a string");
    check(options.onVote === undefined || typeof options.onVote === "function", "onVote must be a function");
    check(options.link === undefined || typeof options.link === "string", "link must be a string");
    check(options.recover === undefined || typeof options.recover === "string", "recover must be a string");
    check(options.recoverPassphrase === undefined || typeof options.recoverPassphrase === "string", "recoverPassphrase must be a string");
    check(options.link === undefined || options.recover === undefined, "pass link or recover, not both");
    check(options.publicRecords === undefined || typeof options.publicRecords === "boolean", "publicRecords must be a boolean");
    check(options.signals === undefined || typeof options.signals === "boolean", "signals must be a boolean");
    check(options.linkHistory === undefined || (Number.isInteger(options.linkHistory) && options.linkHistory >= 0 && options.linkHistory <= 1000), "linkHistory must be an integer from 0 to 1000");
    const registry = registryFor(options.directory);
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
          if (options.link !== undefined) client = await linkDevice(transport, options.link, key);
          else if (options.recover !== undefined) client = await recoverDevice(transport, options.recover, options.recoverPassphrase, key);
          else client = glue.WasmClient.create(Date.now(), key);
        } else {
          if (options.recover !== undefined) throw new LogosChatError("INVALID_ARGUMENT", `profile "${name}" already holds an account: recover into a new profile`);
          if (options.link !== undefined) throw new LogosChatError("INVALID_LINK", `profile "${name}" already holds an account: open it without a link, or link a new profile`);
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
      const chat = new ChatImpl(client, transport, adapter, registry);
      if (registry) client.setRegistry(true);
      chat.release = release;
      if (options.linkHistory !== undefined) chat.linkHistory = options.linkHistory;
      if (options.publicRecords) client.setPublicRecords(true);
      if (options.signals === false) client.setSignals(false);
      if (options.onVote) {
        chat.voteHook = options.onVote;
        client.setVoteHook(true);
      }
      void chat.accountId;
      const startup = client.takeStartupEffects() as CoreEffects;
      if (keyring) startup.store.unshift(keyring);
      await chat.run(async () => {
        await chat.apply(startup);
        // A restored installation announces itself again; so does a new one that also
        // publishes libchat's plain records or uses a registry (the startup effects hold
        // the sealed ones).
        if (!fresh || options.publicRecords || registry) await chat.apply(client.announce(Date.now()) as CoreEffects);
      });
      // The backlog is read once the app holds the chat (after `chat()` resolves).
      setTimeout(() => void chat.start(), 0);
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
    const next = this.queue.then(async () => {
      if (this.closed) throw new LogosChatError("CLOSED", this.trap ? `this chat stopped: ${this.trap}` : "this chat is closed");
      try {
        return await fn();
      } catch (e) {
        if (!isWasmTrap(e)) throw e;
        throw this.trapped(e);
      }
    });
    this.queue = next.catch(() => undefined);
    return next;
  }

  /** Why the core stopped, after a wasm trap. */
  private trap: string | undefined;

  /**
   * The wasm core trapped (a bug): every later call would fail with wasm-bindgen's
   * "recursive use" error. Say so once, on `error` and to the caller, and close the chat
   * (its state is as last persisted; opening the profile again restores it).
   */
  private trapped(e: unknown): LogosChatError {
    this.trap = `the wasm core trapped (${e instanceof Error ? e.message : String(e)}); open the profile again`;
    const err = new LogosChatError("CLOSED", `this chat stopped: ${this.trap}`, { cause: e });
    this.events.emit("error", err);
    this.closed = true;
    this.retry.cancel();
    this.wake.cancel();
    void (async () => {
      await Promise.all([...this.subscriptions.values()].map((s) => s.unsubscribe().catch(() => undefined)));
      this.subscriptions.clear();
      for (const hook of this.closeHooks.splice(0)) hook();
      await this.adapter.close().catch(() => undefined);
      this.release?.();
    })();
    return err;
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
        this.retry.reset();
      } catch (e) {
        // It stays in the persisted outbox: retried with back-off, and at the next start.
        this.events.emit("error", toLogosError(e, "TRANSPORT_UNAVAILABLE"));
        this.scheduleRetry();
      }
    }
    if (sent.length) await this.adapter.commit(sent, { durable: false });
    for (const r of fx.registry ?? []) this.inBackground(r);
    for (const account of fx.lookups) await this.lookupFor(account);
    for (const q of fx.queries ?? []) await this.query(q.contentTopic, q.sinceMs);
    if (fx.wakeAt !== undefined) this.arm(fx.wakeAt);
    for (const ev of fx.events) {
      if (ev.type === "voteRequest") this.askVote(ev);
      else if (ev.type === "historyWanted") await this.sendHistory(ev);
      else {
        const info = this.events.emitCore(ev);
        if (info) this.infos.set(info.id, info);
      }
    }
  }

  /**
   * A registry call that no app call waits for (our own records going out, and their
   * retries): its answer goes to the core in turn with the other calls.
   */
  private inBackground(r: RegistryRequest): void {
    const dir = this.registry;
    if (!dir) return;
    void execute(dir, r, () => this.closed || this.closing)
      .then((a) => (this.closed ? undefined : this.run(() => this.apply(report(this.client, r, a)))))
      .catch((e) => {
        if (!this.closed) this.events.emit("error", toLogosError(e));
      });
  }

  /** Messages per conversation a newly linked installation gets (`ChatOptions.linkHistory`). */
  private linkHistory = 100;

  /** A linked installation is in our chats: it gets their recent history from our store. */
  private async sendHistory(ev: { link: string; ranges: { conversationId: string; from: Uint8Array; to: Uint8Array }[] }): Promise<void> {
    const rows: [Uint8Array, Uint8Array][] = [];
    if (this.linkHistory > 0) {
      for (const r of ev.ranges) {
        const got = await this.adapter.range("messages", r.from, r.to, { limit: this.linkHistory, reverse: true });
        got.reverse();
        rows.push(...got);
      }
    }
    let fx: CoreEffects;
    try {
      fx = this.client.sendHistory(ev.link, rows) as CoreEffects;
    } catch (e) {
      this.events.emit("error", toLogosError(e));
      return;
    }
    await this.apply(fx);
  }

  /** The app's vote hook decides a permitted proposal (a hook that throws votes NO). */
  private askVote(req: VoteRequest): void {
    const hook = this.voteHook;
    if (!hook) return;
    void Promise.resolve()
      .then(() => hook(req))
      .then((yes) => yes === true, (e) => {
        this.events.emit("error", new LogosChatError("LISTENER_FAILED", "the onVote hook threw; voting NO", { cause: e }));
        return false;
      })
      .then((yes) => (this.closed ? undefined : this.run(() => this.apply(this.client.vote(req.conversationId, req.proposalId, yes, Date.now()) as CoreEffects))))
      .catch((e) => {
        if (!this.closed) this.events.emit("error", toLogosError(e));
      });
  }

  private readonly wake = new WakeTimer();
  private readonly retry = new RetryTimer();

  /** Arms the core's next timer (group commit windows, freezes, vote timeouts). */
  private arm(at: number): void {
    if (this.closed) return;
    this.wake.arm(at, () => {
      this.run(() => this.apply(this.client.tick(Date.now()) as CoreEffects)).catch((e) => {
        if (!this.closed) this.events.emit("error", toLogosError(e));
      });
    });
  }

  /** Publishes the outbox again after a transient failure, backing off to 30 s. */
  private scheduleRetry(): void {
    if (this.closed) return;
    this.retry.schedule(() => {
      this.run(() => this.apply(this.client.pendingOutbox() as CoreEffects)).catch(() => undefined);
    });
  }

  /**
   * Subscribes to a topic, then reads what the network stored on it (during `chat()`,
   * that read waits until the chat is handed to the app). A transport that refuses (the
   * network is down) never fails the call: it is reported and tried again with back-off.
   */
  private async follow(topic: string, attempt = 0): Promise<void> {
    if (this.subscriptions.has(topic) || this.closed) return;
    try {
      const sub = await this.transport.subscribe([topic], (m) => this.deliver(m));
      this.subscriptions.set(topic, sub);
    } catch (e) {
      this.events.emit("error", toLogosError(e, "TRANSPORT_UNAVAILABLE"));
      setTimeout(() => {
        if (!this.closed) this.run(() => this.follow(topic, attempt + 1)).catch(() => undefined);
      }, resubscribeDelay(attempt));
      return;
    }
    if (this.catchUps) this.catchUps.push(topic);
    else await this.query(topic, this.client.catchUpSince(topic));
  }

  /** Runs a store read the core asked for (or a catch-up) and tells the core how it went. */
  private async query(topic: string, sinceMs: number | undefined): Promise<void> {
    let ok = true;
    try {
      const q = sinceMs === undefined ? { contentTopics: [topic] } : { contentTopics: [topic], since: new Date(sinceMs) };
      for await (const m of this.transport.query(q)) await this.handle(m);
    } catch (e) {
      ok = false;
      if (e instanceof LogosChatError && e.code === "STORE_CORRUPT") throw e;
    }
    await this.apply(this.client.queryDone(topic, ok, Date.now()) as CoreEffects);
  }

  /** After `chat()` resolved: the catch-up of every followed topic, then `synced`. */
  private async start(): Promise<void> {
    if (this.closed) return;
    await this.run(async () => {
      const topics = this.catchUps ?? [];
      this.catchUps = undefined;
      for (const topic of topics) await this.query(topic, this.client.catchUpSince(topic));
    }).catch((e) => {
      if (!this.closed) this.events.emit("error", toLogosError(e));
    });
    if (this.closed) return;
    this.events.emit("synced", {});
    // Whatever is still unheard goes to the listeners that come later no more.
    setTimeout(() => this.events.endBacklog(), 0);
  }

  private async handle(m: DeliveryMessage): Promise<void> {
    const fx = this.client.receive(m.contentTopic, m.payload, m.timestamp.getTime(), Date.now()) as CoreEffects;
    await this.apply(fx);
  }

  private deliver(m: DeliveryMessage): void {
    if (this.closed) return;
    this.run(() => this.handle(m)).catch((e) => {
      if (!this.closed) this.events.emit("error", toLogosError(e));
    });
  }

  private readonly directory: { read(accounts: string[]): Promise<void> };
  /**
   * A lookup the core asked for (a sender to confirm): the directory is read, then the
   * core told. A failed read (a busy store) is reported to the core, which asks again
   * with back-off and, after its last try, releases what it held without the account.
   */
  private async lookupFor(account: string): Promise<void> {
    try {
      await this.directory.read([account]);
    } catch (e) {
      this.events.emit("error", toLogosError(e, "TRANSPORT_UNAVAILABLE"));
      await this.apply(this.client.lookupFailed(account, Date.now()) as CoreEffects);
      return;
    }
    await this.apply(this.client.lookupComplete(account, Date.now()) as CoreEffects);
  }

  startDirect(accountId: string): Promise<Conversation> {
    return this.run(async () => {
      check(typeof accountId === "string", "accountId must be a string");
      await this.directory.read([accountId]);
      let started: { conversationId: string; effects: CoreEffects };
      try {
        started = this.client.startDirect(accountId, Date.now()) as typeof started;
      } catch (e) {
        throw toLogosError(e);
      }
      await this.apply(started.effects);
      return new ConversationHandle(started.conversationId, this);
    });
  }

  installations(): Promise<InstallationInfo[]> {
    return this.run(() => (this.client.installations() as CoreInstallation[]).map(toInstallation));
  }

  createLink(): Promise<string> {
    return this.run(async () => {
      let made: { code: string; effects: CoreEffects };
      try {
        made = this.client.createLink(Date.now()) as typeof made;
      } catch (e) {
        throw toLogosError(e);
      }
      await this.apply(made.effects);
      return made.code;
    });
  }

  rotateKeys(): Promise<void> {
    return this.run(async () => {
      let fx: CoreEffects;
      try {
        fx = this.client.rotateKeys(Date.now()) as CoreEffects;
      } catch (e) {
        throw toLogosError(e);
      }
      await this.apply(fx);
    });
  }

  exportRecovery(options?: { passphrase?: string }): Promise<string> {
    return this.run(async () => {
      check(options === undefined || (typeof options === "object" && options !== null), "options must be an object");
      check(options?.passphrase === undefined || (typeof options.passphrase === "string" && options.passphrase.length > 0), "passphrase must be a non-empty string");
      let secret: string;
      try {
        secret = this.client.exportRecovery();
      } catch (e) {
        throw toLogosError(e);
      }
      return options?.passphrase === undefined ? secret : await wrapRecovery(secret, options.passphrase);
    });
  }

  contactCard(options?: { compact?: boolean }): Promise<string> {
    return this.run(() => {
      check(options === undefined || (typeof options === "object" && options !== null), "options must be an object");
      check(options?.compact === undefined || typeof options.compact === "boolean", "compact must be a boolean");
      try {
        return this.client.contactCard(options?.compact ?? false, Date.now()) as string;
      } catch (e) {
        throw toLogosError(e);
      }
    });
  }

  addContact(cardOrAccountId: string, init?: { nickname?: string }): Promise<Contact> {
    return this.run(async () => {
      check(typeof cardOrAccountId === "string", "cardOrAccountId must be a string");
      check(init === undefined || (typeof init === "object" && init !== null), "init must be an object");
      check(init?.nickname === undefined || typeof init.nickname === "string", "nickname must be a string");
      let added: { contact: Contact; effects: CoreEffects };
      try {
        added = this.client.addContact(cardOrAccountId, init?.nickname) as typeof added;
      } catch (e) {
        throw toLogosError(e);
      }
      await this.apply(added.effects);
      return added.contact;
    });
  }

  removeContact(accountId: string): Promise<void> {
    return this.contactCall("removeContact", accountId);
  }

  block(accountId: string): Promise<void> {
    return this.contactCall("block", accountId);
  }

  unblock(accountId: string): Promise<void> {
    return this.contactCall("unblock", accountId);
  }

  acceptRequest(conversationId: string): Promise<void> {
    return this.contactCall("acceptRequest", conversationId);
  }

  private contactCall(call: "removeContact" | "block" | "unblock" | "acceptRequest", id: string): Promise<void> {
    return this.run(async () => {
      check(typeof id === "string", `${call === "acceptRequest" ? "conversationId" : "accountId"} must be a string`);
      let fx: CoreEffects;
      try {
        fx = this.client[call](id) as CoreEffects;
      } catch (e) {
        throw toLogosError(e);
      }
      await this.apply(fx);
    });
  }

  contacts(): Promise<Contact[]> {
    return this.run(() => this.client.contacts() as Contact[]);
  }

  removeInstallation(installationId: string): Promise<void> {
    return this.run(async () => {
      check(typeof installationId === "string", "installationId must be a string");
      // The newest list of our own account first (another installation may have changed it).
      await this.directory.read([this.accountId]);
      await this.apply(this.client.lookupComplete(this.accountId, Date.now()) as CoreEffects);
      let fx: CoreEffects;
      try {
        fx = this.client.removeInstallation(installationId, Date.now()) as CoreEffects;
      } catch (e) {
        throw toLogosError(e);
      }
      await this.apply(fx);
    });
  }

  createGroup(init: { name: string; description?: string; members: string[]; timing?: GroupTiming; permissions?: GroupPermissions }): Promise<Group> {
    return this.run(async () => {
      check(init !== null && typeof init === "object", "init must be an object");
      check(typeof init.name === "string", "name must be a string");
      check(init.description === undefined || typeof init.description === "string", "description must be a string");
      check(Array.isArray(init.members) && init.members.every((m) => typeof m === "string"), "members must be an array of account ids");
      check(init.timing === undefined || (typeof init.timing === "object" && init.timing !== null), "timing must be an object");
      const permissions = permissionBits(init.permissions);
      await this.directory.read(init.members);
      let started: { conversationId: string; effects: CoreEffects };
      try {
        started = this.client.createGroup(init.name, init.description ?? "", init.members, { ...init.timing, permissions }, Date.now()) as typeof started;
      } catch (e) {
        throw toLogosError(e);
      }
      await this.apply(started.effects);
      return new GroupHandle(started.conversationId, this);
    });
  }

  /** Used by group handles: a proposal (add, remove, leave, metadata). */
  groupCall(id: string, call: "addMembers" | "removeMembers" | "leave" | "setMetadata", ...args: unknown[]): Promise<void> {
    return this.run(async () => {
      if (call === "addMembers" && Array.isArray(args[0])) await this.directory.read((args[0] as unknown[]).filter((a): a is string => typeof a === "string"));
      let fx: CoreEffects;
      try {
        const now = Date.now();
        if (call === "addMembers") fx = this.client.addMembers(id, args[0] as string[], now) as CoreEffects;
        else if (call === "removeMembers") fx = this.client.removeMembers(id, args[0] as string[], now) as CoreEffects;
        else if (call === "leave") fx = this.client.leaveGroup(id, now) as CoreEffects;
        else fx = this.client.setGroupMetadata(id, args[0] as string, args[1] as string, now) as CoreEffects;
      } catch (e) {
        throw toLogosError(e);
      }
      await this.apply(fx);
    });
  }

  /** Used by conversation handles. */
  membersOf(id: string): Promise<Member[]> {
    return this.run(() => {
      try {
        return this.client.members(id) as Member[];
      } catch (e) {
        throw toLogosError(e);
      }
    });
  }

  /** Used by group handles. */
  stewardsOf(id: string): Promise<string[]> {
    return this.run(() => {
      try {
        return this.client.groupStewards(id);
      } catch (e) {
        throw toLogosError(e);
      }
    });
  }

  /** Used by group handles: the latest name and description. */
  infoOf(id: string): ConversationInfo | undefined {
    return this.infos.get(id);
  }

  /** Used by conversation handles. */
  sendTo(id: string, content: string | Uint8Array, options?: SendOptions & { remove?: boolean }): Promise<{ messageId: string }> {
    return this.run(async () => {
      check(typeof content === "string" || content instanceof Uint8Array, "content must be a string or a Uint8Array");
      check(options === undefined || (typeof options === "object" && options !== null), "options must be an object");
      check(options?.contentType === undefined || typeof options.contentType === "string", "contentType must be a string");
      check(options?.replyTo === undefined || typeof options.replyTo === "string", "replyTo must be a message id");
      const bytes = typeof content === "string" ? encoder.encode(content) : content;
      const contentType = options?.contentType ?? (typeof content === "string" ? "text/plain" : "application/octet-stream");
      let sent: { messageId: string; effects: CoreEffects };
      try {
        // The core frames everything but plain text (which goes raw, as libchat sends it).
        sent = this.client.sendContent(id, bytes, contentType, options?.replyTo, options?.remove === true, Date.now()) as typeof sent;
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
        // The index is keyed by conversation and id; stores written before 0.1.1 keyed it
        // by id alone (trusted only when the record names this conversation).
        for (const key of this.client.messageIndexKeys(id, options.before) as Uint8Array[]) {
          const value = await this.adapter.get("message_index", key);
          if (!value) continue;
          const at = this.client.openMessageIndex(key, value) as { conversationId: string; seq: number };
          if (at.conversationId !== id) continue;
          beforeSeq = at.seq;
          break;
        }
        if (beforeSeq === undefined) throw new LogosChatError("INVALID_ARGUMENT", "before names no stored message of this conversation");
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
        await this.apply(this.client.markRead(id, messageId, Date.now()) as CoreEffects);
      } catch (e) {
        throw toLogosError(e);
      }
    });
  }

  /** Used by conversation handles: typing on or off. */
  setTypingIn(id: string, typing: boolean): Promise<void> {
    return this.run(async () => {
      check(typeof typing === "boolean", "typing must be a boolean");
      let fx: CoreEffects;
      try {
        fx = this.client.setTyping(id, typing, Date.now()) as CoreEffects;
      } catch (e) {
        throw toLogosError(e);
      }
      await this.apply(fx);
    });
  }

  private listConversations(): ConversationInfo[] {
    const all = (this.client.conversations() as CoreConversation[]).map(toInfo);
    for (const c of all) this.infos.set(c.id, c);
    return all;
  }

  conversations(): Promise<ConversationInfo[]> {
    return this.run(() => this.listConversations());
  }

  conversation(id: string): Promise<Conversation | Group | undefined> {
    return this.run(() => {
      check(typeof id === "string", "id must be a string");
      const info = this.listConversations().find((c) => c.id === id);
      if (!info) return undefined;
      return info.kind === "group" ? new GroupHandle(id, this) : new ConversationHandle(id, this);
    });
  }

  on<K extends ChatEventName>(event: K, cb: (value: ChatEventMap[K]) => void): () => void {
    return this.events.on(event, cb);
  }

  messages(): AsyncIterable<ChatMessage> {
    return this.events.messages((hook) => this.onClose(hook));
  }

  /** Registers a hook that runs when the chat closes. */
  onClose(hook: () => void): void {
    if (this.closed) hook();
    else this.closeHooks.push(hook);
  }

  /** `close()` was called: registry calls in flight give up at once. */
  private closing = false;

  async close(): Promise<void> {
    if (this.closed) return;
    this.closing = true;
    await this.queue;
    this.closed = true;
    this.retry.cancel();
    this.wake.cancel();
    await Promise.all([...this.subscriptions.values()].map((s) => s.unsubscribe().catch(() => undefined)));
    this.subscriptions.clear();
    for (const hook of this.closeHooks.splice(0)) hook();
    this.client.free();
    await this.adapter.close().catch(() => undefined);
    this.release?.();
  }
}
