/** The Messaging API: `connect()` and the LogosNode it returns. */
import { ChatImpl } from "./chat.js";
import { check, LogosChatError, toLogosError } from "./errors.js";
import { sharedMemoryHub } from "./transports/memory.js";
import { ReliableChannelImpl } from "./reliable.js";
import type { Chat, ChatOptions, ConnectOptions, DeliveryMessage, LogosNode, Network, ReliableChannel, ReliableChannelOptions, Subscription, Transport } from "./types.js";
import { getPlatform } from "./platform.js";
import { ensureWasm, glue } from "./wasm.js";

type Health = LogosNode["health"];

/** When `send` tries again after a transient failure: at once, then after 0.25, 1 and 3 s. */
const SEND_RETRY_DELAYS_MS = [0, 250, 1000, 3000];

function isTransport(x: unknown): x is Transport {
  const t = x as Transport;
  return !!t && typeof t === "object" && typeof t.publish === "function" && typeof t.subscribe === "function"
    && typeof t.query === "function" && typeof t.close === "function" && typeof t.maxMessageSize === "number";
}

class Node implements LogosNode {
  private closed = false;
  private readonly healthListeners = new Set<(h: Health) => void>();
  private readonly chats = new Set<ChatImpl>();
  private readonly channels = new Set<ReliableChannelImpl>();
  private currentHealth: Health = "connected";

  constructor(readonly network: string, readonly mode: "edge" | "core", private readonly transport: Transport) {
    const h = transport as Partial<{ health: Health; onHealth(cb: (h: Health) => void): () => void }>;
    if (typeof h.onHealth === "function") {
      this.currentHealth = h.health ?? "disconnected";
      h.onHealth((next) => {
        this.currentHealth = next;
        for (const cb of this.healthListeners) cb(next);
      });
    }
  }

  get health(): Health {
    return this.currentHealth;
  }

  private ensureOpen(): void {
    if (this.closed) throw new LogosChatError("CLOSED", "this node is closed");
  }

  async send(contentTopic: string, payload: Uint8Array): Promise<{ messageHash: string }> {
    this.ensureOpen();
    check(typeof contentTopic === "string", "contentTopic must be a string");
    check(payload instanceof Uint8Array, "payload must be a Uint8Array");
    try {
      glue.validateContentTopic(contentTopic);
    } catch (e) {
      throw toLogosError(e, "INVALID_ARGUMENT");
    }
    const size = glue.encodedMessageSize(contentTopic, payload.length);
    if (size > this.transport.maxMessageSize) {
      throw new LogosChatError("PAYLOAD_TOO_LARGE", `encoded message is ${size} bytes, the limit is ${this.transport.maxMessageSize}`);
    }
    // Transient failures (no peer yet, a peer that just dropped) are retried with
    // back-off before the promise rejects.
    let last: unknown;
    for (const delay of SEND_RETRY_DELAYS_MS) {
      if (delay) await new Promise((r) => setTimeout(r, delay));
      if (this.closed) throw new LogosChatError("CLOSED", "this node is closed");
      try {
        return await this.transport.publish(contentTopic, payload);
      } catch (e) {
        last = e;
        const err = toLogosError(e, "TRANSPORT_UNAVAILABLE");
        if (err.code !== "TRANSPORT_UNAVAILABLE") throw err;
      }
    }
    throw toLogosError(last, "TRANSPORT_UNAVAILABLE");
  }

  async subscribe(contentTopics: string | string[], handler: (m: DeliveryMessage) => void): Promise<Subscription> {
    this.ensureOpen();
    const topics = typeof contentTopics === "string" ? [contentTopics] : contentTopics;
    check(Array.isArray(topics) && topics.length > 0, "contentTopics must be a topic or a non-empty array");
    check(typeof handler === "function", "handler must be a function");
    for (const t of topics) {
      check(typeof t === "string", "content topics must be strings");
      try {
        glue.validateContentTopic(t);
      } catch (e) {
        throw toLogosError(e, "INVALID_ARGUMENT");
      }
    }
    const seen = new Set<string>();
    try {
      return await this.transport.subscribe(topics, (m) => {
        if (seen.has(m.messageHash)) return;
        seen.add(m.messageHash);
        handler(m);
      });
    } catch (e) {
      throw toLogosError(e, "TRANSPORT_UNAVAILABLE");
    }
  }

  on(event: "health", cb: (h: Health) => void): () => void {
    check(event === "health", `unknown event ${String(event)}`);
    this.healthListeners.add(cb);
    return () => this.healthListeners.delete(cb);
  }

  async chat(options: ChatOptions = {}): Promise<Chat> {
    this.ensureOpen();
    const chat = await ChatImpl.open(this.transport, options);
    this.chats.add(chat);
    chat.onClose(() => this.chats.delete(chat));
    return chat;
  }

  async reliableChannel(contentTopic: string, options: ReliableChannelOptions): Promise<ReliableChannel> {
    this.ensureOpen();
    check(typeof contentTopic === "string", "contentTopic must be a string");
    const ch = await ReliableChannelImpl.open({ send: (t, p) => this.send(t, p), transport: this.transport }, contentTopic, options);
    this.channels.add(ch);
    const close = ch.close.bind(ch);
    ch.close = async () => {
      this.channels.delete(ch);
      await close();
    };
    return ch;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.all([...this.channels].map((c) => c.close()));
    await Promise.all([...this.chats].map((c) => c.close()));
    await this.transport.close();
    this.currentHealth = "disconnected";
    for (const cb of this.healthListeners) cb("disconnected");
  }
}

/** Connects to a Logos network (or the in-process one, or a Transport you bring). */
export async function connect(network: Network | Transport, options: ConnectOptions = {}): Promise<LogosNode> {
  check(options !== null && typeof options === "object", "options must be an object");
  const mode = options.mode ?? "edge";
  check(mode === "edge" || mode === "core", `mode must be "edge" or "core"`);
  if (options.signal?.aborted) throw new LogosChatError("TRANSPORT_UNAVAILABLE", "connect was aborted");
  await ensureWasm();
  if (isTransport(network)) return new Node("custom", mode, network);
  switch (network) {
    case "memory": {
      const hub = options.hub ?? sharedMemoryHub();
      check(hub !== null && typeof hub === "object" && typeof (hub as { transport?: unknown }).transport === "function", "hub must come from createMemoryHub()");
      return new Node("memory", mode, hub.transport());
    }
    case "testnet":
    case "devnet":
    case "local": {
      const platform = getPlatform();
      if (mode === "core" && (platform.browser || !platform.libp2pTransports)) {
        throw new LogosChatError(
          "INVALID_ARGUMENT",
          'mode "core" (relay) needs a Node.js process that can accept TCP peers; browsers run in "edge" mode (lightpush + filter + store through a service node)',
        );
      }
      const { TESTNET, DEVNET, LOCAL } = await import("./networks.js");
      const preset = network === "testnet" ? TESTNET : network === "devnet" ? DEVNET : LOCAL;
      let entryNodes = options.entryNodes ?? [...preset.entryNodes];
      if (network === "local" && !options.entryNodes) {
        const { defaultDevNodeAddress } = await import("./devnode/identity.js");
        entryNodes = [options.url ?? (await defaultDevNodeAddress())];
      }
      check(Array.isArray(entryNodes) && entryNodes.length > 0 && entryNodes.every((e) => typeof e === "string"), "entryNodes must be a non-empty array of multiaddrs");
      const o = { entryNodes, local: network === "local", signal: options.signal };
      if (mode === "core") {
        const { createRelayTransport } = await import("./transports/relay.js");
        return new Node(network, mode, await createRelayTransport(preset, o, await platform.libp2pTransports!()));
      }
      const { createWakuTransport } = await import("./transports/waku.js");
      return new Node(network, mode, await createWakuTransport(preset, o));
    }
    default:
      throw new LogosChatError("INVALID_ARGUMENT", `unknown network ${String(network)}`);
  }
}
