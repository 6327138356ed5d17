/**
 * A new device joining an existing account (issue 13): by a link code, answered by an
 * open installation of the account, or by a recovery secret when every device is lost.
 * Both resolve with the new installation's `WasmClient`, which `ChatImpl.open` starts.
 */
import { check, LogosChatError, toLogosError } from "./errors.js";
import { unwrapRecovery } from "./keyring.js";
import type { DeliveryMessage, Subscription, Transport } from "./types.js";
import { glue } from "./wasm.js";

/** How long a new device waits for an installation to answer its link code. */
const LINK_WAIT_MS = 30_000;
/** How often it sends its request again meanwhile (the network may lose it). */
const LINK_RESEND_MS = 3_000;

/**
 * A new device with a link code: sends the request on the link's topic until an open
 * installation of the account grants it, then starts as a new installation of it.
 */
export async function linkDevice(transport: Transport, code: string, key: Uint8Array): Promise<glue.WasmClient> {
  check(typeof code === "string", "link must be a string");
  let linking: glue.WasmLinking;
  try {
    linking = glue.WasmLinking.start(code);
  } catch (e) {
    throw toLogosError(e);
  }
  const topic = linking.topic;
  let sub: Subscription | undefined;
  let timer: ReturnType<typeof setInterval> | undefined;
  let timeout: ReturnType<typeof setTimeout> | undefined;
  try {
    return await new Promise<glue.WasmClient>((resolve, reject) => {
      let done = false;
      const finish = (f: () => void) => {
        if (done) return;
        done = true;
        f();
      };
      const onMessage = (m: DeliveryMessage) => {
        if (done) return;
        try {
          if (!linking.openGrant(m.payload)) return;
          const client = glue.WasmClient.fromLink(linking, key, Date.now());
          finish(() => resolve(client));
        } catch (e) {
          finish(() => reject(toLogosError(e)));
        }
      };
      const send = () => {
        if (done) return;
        transport.publish(topic, linking.request()).catch(() => undefined);
      };
      timeout = setTimeout(() => finish(() => reject(new LogosChatError("INVALID_LINK", "no installation answered this link code: it is wrong, used or expired, or the installation that made it is not open"))), LINK_WAIT_MS);
      transport.subscribe([topic], onMessage).then((s) => {
        if (done) {
          // Timed out meanwhile: the cleanup below has run already.
          s.unsubscribe().catch(() => undefined);
          return;
        }
        sub = s;
        send();
        timer = setInterval(send, LINK_RESEND_MS);
      }, (e) => finish(() => reject(toLogosError(e, "TRANSPORT_UNAVAILABLE"))));
    });
  } finally {
    clearTimeout(timeout);
    clearInterval(timer);
    await sub?.unsubscribe().catch(() => undefined);
    linking.free();
  }
}

/**
 * A new device with a recovery secret: the newest signed device list of the account is
 * read from the directory's account topic, then the installation starts, listed in it.
 */
export async function recoverDevice(transport: Transport, recovery: string, passphrase: string | undefined, key: Uint8Array): Promise<glue.WasmClient> {
  const secret = await unwrapRecovery(recovery, passphrase);
  const records: Uint8Array[] = [];
  try {
    const topics = glue.WasmClient.recoveryTopics(secret) as string[];
    for await (const m of transport.query({ contentTopics: topics })) records.push(m.payload);
  } catch (e) {
    throw toLogosError(e, "TRANSPORT_UNAVAILABLE");
  }
  try {
    return glue.WasmClient.recover(secret, key, records, Date.now());
  } catch (e) {
    throw toLogosError(e);
  }
}
