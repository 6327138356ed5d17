/**
 * A registry directory (`ChatOptions.directory = { url }` or the app's `Directory`): the
 * core emits each call with its try count, timeout and start time (libchat's policy, in
 * Rust); this module runs it and reports what came back. `HttpDirectory` speaks the
 * chat-store HTTP API (PROTOCOL.md §2.3) in libchat's JSON format.
 */
import type { CoreEffects, RegistryRequest } from "./core-types.js";
import { LogosChatError } from "./errors.js";
import type { Directory, DirectoryRecord } from "./types.js";
import type { glue } from "./wasm.js";

/** The largest JSON body a registry answer may have (a record is at most 16 KiB). */
const MAX_BODY = 64 * 1024;
/** The largest record (payload and signature) the core takes (`directory::registry::MAX_RECORD`). */
const MAX_RECORD = 16 * 1024;

function b64(bytes: Uint8Array): string {
  let s = "";
  for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(s);
}

function unb64(s: unknown): Uint8Array {
  if (typeof s !== "string") throw new Error("not base64");
  const bin = atob(s);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

/** A response body as text, refused past `MAX_BODY` bytes without reading the rest. */
async function readCapped(res: Response): Promise<string> {
  if (Number(res.headers.get("content-length") ?? 0) > MAX_BODY) throw new Error("registry answer too large");
  const reader = res.body?.getReader();
  if (!reader) return "";
  const parts: Uint8Array[] = [];
  let n = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    n += value.length;
    if (n > MAX_BODY) {
      await reader.cancel().catch(() => undefined);
      throw new Error("registry answer too large");
    }
    parts.push(value);
  }
  const all = new Uint8Array(n);
  let at = 0;
  for (const p of parts) {
    all.set(p, at);
    at += p.length;
  }
  return new TextDecoder().decode(all);
}

/** The chat-store HTTP API: `POST /v0/account`, `GET /v0/account/{id}`, and the same for `/v0/keypackage`. */
export class HttpDirectory implements Directory {
  private readonly base: string;

  constructor(url: string) {
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch {
      throw new LogosChatError("INVALID_ARGUMENT", "directory.url must be an http(s) URL");
    }
    if (parsed.protocol !== "http:" && parsed.protocol !== "https:") throw new LogosChatError("INVALID_ARGUMENT", "directory.url must be an http(s) URL");
    this.base = parsed.href.replace(/\/+$/, "");
  }

  putAccount(accountId: string, r: DirectoryRecord, o?: { signal?: AbortSignal }): Promise<void> {
    return this.post("/v0/account", { account_pub: accountId, payload: b64(r.payload), signature: b64(r.signature) }, o?.signal);
  }

  getAccount(accountId: string, o?: { signal?: AbortSignal }): Promise<DirectoryRecord | undefined> {
    return this.get(`/v0/account/${encodeURIComponent(accountId)}`, o?.signal);
  }

  putKeyPackage(installationId: string, r: DirectoryRecord, o?: { signal?: AbortSignal }): Promise<void> {
    return this.post("/v0/keypackage", { device_id: installationId, payload: b64(r.payload), signature: b64(r.signature) }, o?.signal);
  }

  getKeyPackage(installationId: string, o?: { signal?: AbortSignal }): Promise<DirectoryRecord | undefined> {
    return this.get(`/v0/keypackage/${encodeURIComponent(installationId)}`, o?.signal);
  }

  private async post(path: string, body: object, signal?: AbortSignal): Promise<void> {
    const res = await fetch(this.base + path, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body), signal });
    await res.body?.cancel().catch(() => undefined);
    // 409: the registry holds this record already (a republish).
    if (!res.ok && res.status !== 409) throw new Error(`registry answered ${res.status}`);
  }

  private async get(path: string, signal?: AbortSignal): Promise<DirectoryRecord | undefined> {
    const res = await fetch(this.base + path, { signal });
    if (res.status === 404) {
      await res.body?.cancel().catch(() => undefined);
      return undefined;
    }
    if (!res.ok) throw new Error(`registry answered ${res.status}`);
    const text = await readCapped(res);
    const j = JSON.parse(text) as { payload?: unknown; signature?: unknown };
    return { payload: unb64(j.payload), signature: unb64(j.signature) };
  }
}

/** Checks `ChatOptions.directory`: the registry to use, or undefined for the delivery topics. */
export function registryFor(option: unknown): Directory | undefined {
  if (option === undefined || option === "delivery") return undefined;
  if (option !== null && typeof option === "object") {
    const o = option as Record<string, unknown>;
    if (typeof o.url === "string") return new HttpDirectory(o.url);
    const calls = ["putAccount", "getAccount", "putKeyPackage", "getKeyPackage"];
    if (calls.every((c) => typeof o[c] === "function")) return option as Directory;
  }
  throw new LogosChatError("INVALID_ARGUMENT", 'directory must be "delivery", { url }, or an object with putAccount, getAccount, putKeyPackage and getKeyPackage');
}

type Answer = { outcome: "stored" | "found" | "notFound" | "failed"; record?: DirectoryRecord };

/** Runs one request: waits for its start time, then calls the registry within its timeout. */
export async function execute(dir: Directory, r: RegistryRequest, closed: () => boolean): Promise<Answer> {
  // The back-off, cut short when the chat closes.
  while (Date.now() < r.notBeforeMs && !closed()) await new Promise((ok) => setTimeout(ok, Math.min(100, r.notBeforeMs - Date.now())));
  if (closed()) return { outcome: "failed" };
  const ctl = new AbortController();
  let timer: ReturnType<typeof setTimeout> | undefined;
  let watch: ReturnType<typeof setInterval> | undefined;
  const timeout = new Promise<never>((_, no) => {
    const stop = (why: string) => {
      ctl.abort();
      no(new Error(why));
    };
    timer = setTimeout(() => stop("timed out"), r.timeoutMs);
    watch = setInterval(() => closed() && stop("closed"), 100);
  });
  const o = { signal: ctl.signal };
  const record = (): DirectoryRecord => ({ payload: r.payload ?? new Uint8Array(), signature: r.signature ?? new Uint8Array() });
  try {
    const call = async (): Promise<Answer> => {
      switch (r.op) {
        case "putAccount":
          await dir.putAccount(r.key, record(), o);
          return { outcome: "stored" };
        case "putKeyPackage":
          await dir.putKeyPackage(r.key, record(), o);
          return { outcome: "stored" };
        case "getAccount":
        case "getKeyPackage": {
          const got = await (r.op === "getAccount" ? dir.getAccount(r.key, o) : dir.getKeyPackage(r.key, o));
          if (got === undefined || got === null) return { outcome: "notFound" };
          if (!(got.payload instanceof Uint8Array) || !(got.signature instanceof Uint8Array)) return { outcome: "failed" };
          if (got.payload.length + got.signature.length > MAX_RECORD) return { outcome: "failed" };
          return { outcome: "found", record: got };
        }
      }
    };
    return await Promise.race([call(), timeout]);
  } catch {
    return { outcome: "failed" };
  } finally {
    clearTimeout(timer);
    clearInterval(watch);
  }
}

/** Reports an answer to the core: its effects (a retry, what follows, an error event). */
export function report(client: glue.WasmClient, r: RegistryRequest, a: Answer): CoreEffects {
  return client.registryResult(r.id, a.outcome, a.record?.payload, a.record?.signature, Date.now()) as CoreEffects;
}

/**
 * A lookup through the registry: each account's list, then the key packages it shows,
 * each call tried as the core says; what else the core says is applied.
 */
export class RegistryReader {
  constructor(
    private readonly dir: Directory,
    private readonly client: glue.WasmClient,
    private readonly applyRest: (fx: CoreEffects) => Promise<void>,
    private readonly closed: () => boolean,
  ) {}

  async read(accounts: string[]): Promise<void> {
    let requests = this.client.registryLookup(accounts) as RegistryRequest[];
    let gaveUp = false;
    while (requests.length > 0 && !this.closed()) {
      const answers = await Promise.all(requests.map((r) => execute(this.dir, r, this.closed)));
      if (this.closed()) return;
      const next: RegistryRequest[] = [];
      for (const [i, r] of requests.entries()) {
        const fx = report(this.client, r, answers[i]);
        const more = fx.registry ?? [];
        if (answers[i].outcome === "failed" && !more.some((m) => m.id === r.id)) gaveUp = true;
        next.push(...more);
        await this.applyRest({ ...fx, registry: [] });
      }
      requests = next;
    }
    if (gaveUp) throw new LogosChatError("TRANSPORT_UNAVAILABLE", "the directory did not answer a lookup after every try");
  }
}
