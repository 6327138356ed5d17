/** Every failure the SDK reports, with a stable code (API.md "errors"). */
export type ErrorCode =
  | "INVALID_ARGUMENT" | "INVALID_CARD" | "INVALID_LINK" | "UNKNOWN_ACCOUNT" | "UNKNOWN_CONVERSATION"
  | "NOT_A_MEMBER" | "BLOCKED" | "PAYLOAD_TOO_LARGE" | "TRANSPORT_UNAVAILABLE" | "STORE_LOCKED"
  | "STORE_CORRUPT" | "WRONG_PASSPHRASE" | "DECRYPT_FAILED" | "PROTOCOL" | "CLOSED"
  /** An app listener threw: reported on `error`, the other listeners still ran. */
  | "LISTENER_FAILED"
  /** The group's permissions do not let this member ask for the change. */
  | "PERMISSION_DENIED"
  /** Too many requests at once (group proposals): try again in a few seconds. */
  | "RATE_LIMITED"
  /** Another installation of the account removed this one: it can read and send nothing more. */
  | "INSTALLATION_REMOVED";

const CODES: ReadonlySet<string> = new Set<ErrorCode>([
  "INVALID_ARGUMENT", "INVALID_CARD", "INVALID_LINK", "UNKNOWN_ACCOUNT", "UNKNOWN_CONVERSATION",
  "NOT_A_MEMBER", "BLOCKED", "PAYLOAD_TOO_LARGE", "TRANSPORT_UNAVAILABLE", "STORE_LOCKED",
  "STORE_CORRUPT", "WRONG_PASSPHRASE", "DECRYPT_FAILED", "PROTOCOL", "CLOSED", "LISTENER_FAILED",
  "PERMISSION_DENIED", "RATE_LIMITED", "INSTALLATION_REMOVED",
]);

/** The one error type the SDK throws or emits. */
export class LogosChatError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "LogosChatError";
    this.code = code;
  }
}

/** Converts whatever a call threw (a core `{ code, message }`, an Error) into a LogosChatError. */
export function toLogosError(e: unknown, fallback: ErrorCode = "PROTOCOL"): LogosChatError {
  if (e instanceof LogosChatError) return e;
  if (e && typeof e === "object" && "code" in e && typeof (e as { code: unknown }).code === "string") {
    const { code, message } = e as { code: string; message?: unknown };
    if (CODES.has(code)) return new LogosChatError(code as ErrorCode, String(message ?? code));
  }
  const message = e instanceof Error ? e.message : String(e);
  return new LogosChatError(fallback, message, { cause: e });
}

/** Throws INVALID_ARGUMENT unless `ok`. */
export function check(ok: boolean, message: string): asserts ok {
  if (!ok) throw new LogosChatError("INVALID_ARGUMENT", message);
}

/**
 * Whether a call into the core failed because the wasm instance trapped (a Rust panic,
 * a bug: release builds abort on panic), or because an earlier trap left wasm-bindgen's
 * borrow flags set ("recursive use of an object"). The instance is unusable afterwards.
 */
export function isWasmTrap(e: unknown): boolean {
  const W = (globalThis as { WebAssembly?: { RuntimeError?: new (...a: unknown[]) => Error } }).WebAssembly;
  if (W?.RuntimeError && e instanceof W.RuntimeError) return true;
  if (e instanceof LogosChatError && e.cause !== undefined) return isWasmTrap(e.cause);
  const message = e instanceof Error ? e.message : typeof e === "string" ? e : "";
  return /recursive use of an object detected|attempted to take ownership of Rust value while it was borrowed/.test(message);
}
