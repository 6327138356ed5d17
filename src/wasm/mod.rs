//! The wasm-bindgen layer: thin wrappers that convert types and forward to the core.
//!
//! No logic lives here. Each method returns the core's `Effects` as a plain JS
//! object for the TypeScript driver to apply; errors become `{ code, message }`
//! objects that the TypeScript layer turns into `LogosChatError`.

mod registry;
mod reliable;

use serde::Serialize;
use wasm_bindgen::prelude::*;

use crate::core::demls::{Config, Permissions};
use crate::core::store::Store;
use crate::core::wire::{encoded_message_size, message_hash, pubsub_topic};
use crate::core::{Client, ContentTopic, CoreError, Effects};

#[derive(Serialize)]
struct JsError<'a> {
    code: &'a str,
    message: String,
}

pub(crate) fn to_js<T: Serialize>(v: &T) -> JsValue {
    let ser = serde_wasm_bindgen::Serializer::new().serialize_maps_as_objects(true);
    v.serialize(&ser).unwrap_or(JsValue::NULL)
}

pub(crate) fn err(e: CoreError) -> JsValue {
    to_js(&JsError { code: e.code().as_str(), message: e.to_string() })
}

#[allow(clippy::cast_possible_truncation, reason = "finite and positive: `as` saturates at u64::MAX")]
pub(crate) fn ms(t: f64) -> u64 {
    if t.is_finite() && t > 0.0 {
        t as u64
    } else {
        0
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Started {
    conversation_id: String,
    effects: Effects,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Sent {
    message_id: String,
    effects: Effects,
}

fn store_key(key: &[u8]) -> Result<[u8; 32], JsValue> {
    <[u8; 32]>::try_from(key).map_err(|_| err(CoreError::InvalidArgument("a store key has 32 bytes".into())))
}

pub(crate) fn bytes(v: &JsValue) -> Vec<u8> {
    js_sys::Uint8Array::new(v).to_vec()
}

/// A new device waiting for a link's grant.
#[wasm_bindgen]
pub struct WasmLinking {
    inner: Option<crate::core::client::Linking>,
    grant: Option<crate::core::link::Grant>,
}

#[wasm_bindgen]
impl WasmLinking {
    /// Parses the code (throws `{ code: "INVALID_LINK" }`); `effects()` subscribe and send the request.
    #[wasm_bindgen]
    pub fn start(code: &str) -> Result<WasmLinking, JsValue> {
        let (inner, _fx) = crate::core::client::Linking::start(&mut rand_core::OsRng, code).map_err(err)?;
        Ok(WasmLinking { inner: Some(inner), grant: None })
    }

    /// The link's content topic.
    #[wasm_bindgen(getter)]
    pub fn topic(&self) -> String {
        self.inner.as_ref().map(|l| l.topic()).unwrap_or_default()
    }

    /// The request to publish (again, if no grant came).
    #[wasm_bindgen]
    pub fn request(&self) -> Result<Vec<u8>, JsValue> {
        let l = self.inner.as_ref().ok_or_else(|| err(CoreError::InvalidLink("already used")))?;
        l.request(&mut rand_core::OsRng).map_err(err)
    }

    /// Whether a frame read on the topic is the grant (kept for `WasmClient.fromLink`);
    /// throws `{ code: "INVALID_LINK" }` when the installation refused the code.
    #[wasm_bindgen(js_name = openGrant)]
    pub fn open_grant(&mut self, frame: &[u8]) -> Result<bool, JsValue> {
        match self.inner.as_ref().map(|l| l.open_grant(frame)) {
            Some(Ok(Some(g))) => {
                self.grant = Some(g);
                Ok(true)
            }
            Some(Err(e)) => Err(err(e)),
            _ => Ok(false),
        }
    }
}

/// One installation's chat state, driven from JavaScript.
#[wasm_bindgen]
pub struct WasmClient {
    inner: Client,
    startup: Option<Effects>,
}

#[wasm_bindgen]
impl WasmClient {
    /// A new account with its first installation, sealed under `storeKey` (32 bytes).
    /// Its first effects (persist, announce) come from `takeStartupEffects`.
    #[wasm_bindgen]
    pub fn create(now: f64, store_key_bytes: &[u8]) -> Result<WasmClient, JsValue> {
        let key = store_key(store_key_bytes)?;
        let (inner, fx) = Client::create(Box::new(rand_core::OsRng), &key, ms(now)).map_err(err)?;
        Ok(WasmClient { inner, startup: Some(fx) })
    }

    /// Restores a client from `[store, key, value]` records of the stores loaded at
    /// start; throws `{ code: "STORE_CORRUPT" }` when they do not open.
    #[wasm_bindgen]
    pub fn restore(store_key_bytes: &[u8], records: js_sys::Array, now: f64) -> Result<WasmClient, JsValue> {
        let key = store_key(store_key_bytes)?;
        let mut loaded = Vec::with_capacity(records.length() as usize);
        for r in records.iter() {
            let r = js_sys::Array::from(&r);
            let store = r.get(0).as_string().unwrap_or_default();
            loaded.push((store, bytes(&r.get(1)), bytes(&r.get(2))));
        }
        let (inner, fx) = Client::restore(Box::new(rand_core::OsRng), &key, loaded, ms(now)).map_err(err)?;
        Ok(WasmClient { inner, startup: Some(fx) })
    }

    /// The effects of `create` / `restore`, once.
    #[wasm_bindgen(js_name = takeStartupEffects)]
    pub fn take_startup_effects(&mut self) -> JsValue {
        to_js(&self.startup.take().unwrap_or_default())
    }

    /// Every object store name, and which of them are loaded whole at start.
    #[wasm_bindgen(js_name = storeNames)]
    pub fn store_names() -> JsValue {
        let all: Vec<(&str, bool)> = Store::ALL.iter().map(|s| (s.name(), s.loaded_at_start())).collect();
        to_js(&all)
    }

    /// The account address.
    #[wasm_bindgen(getter, js_name = accountId)]
    pub fn account_id(&self) -> String {
        self.inner.account_id().to_hex()
    }

    /// This installation's id.
    #[wasm_bindgen(getter, js_name = installationId)]
    pub fn installation_id(&self) -> String {
        self.inner.installation_id().to_hex()
    }

    /// Effects that publish this installation to the directory and subscribe its inbox.
    #[wasm_bindgen]
    pub fn announce(&mut self, now: f64) -> Result<JsValue, JsValue> {
        self.inner.announce(ms(now)).map(|fx| to_js(&fx)).map_err(err)
    }

    /// The transport accepted outbox entry `id`.
    #[wasm_bindgen(js_name = outboxSent)]
    pub fn outbox_sent(&mut self, id: f64) -> JsValue {
        to_js(&self.inner.outbox_sent(ms(id)))
    }

    /// Everything still in the outbox, as effects that publish it (retries).
    #[wasm_bindgen(js_name = pendingOutbox)]
    pub fn pending_outbox(&self) -> JsValue {
        to_js(&Effects { publish: self.inner.pending_outbox(), ..Effects::default() })
    }

    /// A new installation of the account whose grant `linking` opened (`WasmLinking`).
    #[wasm_bindgen(js_name = fromLink)]
    pub fn from_link(
        linking: &mut WasmLinking,
        store_key_bytes: &[u8],
        now: f64,
    ) -> Result<WasmClient, JsValue> {
        let key = store_key(store_key_bytes)?;
        let (Some(l), Some(grant)) = (linking.inner.take(), linking.grant.take()) else {
            return Err(err(CoreError::InvalidLink("no grant yet")));
        };
        let (inner, fx) =
            Client::from_link(Box::new(rand_core::OsRng), &key, l, &grant, ms(now)).map_err(err)?;
        Ok(WasmClient { inner, startup: Some(fx) })
    }

    /// A new installation of the account a recovery secret holds; `records` are the
    /// payloads read from the topics `recoveryTopics(secret)` names.
    #[wasm_bindgen]
    pub fn recover(
        secret: &str,
        store_key_bytes: &[u8],
        records: js_sys::Array,
        now: f64,
    ) -> Result<WasmClient, JsValue> {
        let key = store_key(store_key_bytes)?;
        let records: Vec<Vec<u8>> = records.iter().map(|r| bytes(&r)).collect();
        let (inner, fx) =
            Client::recover(Box::new(rand_core::OsRng), &key, secret, &records, ms(now)).map_err(err)?;
        Ok(WasmClient { inner, startup: Some(fx) })
    }

    /// The account's recovery secret (`logos_recovery_…`).
    #[wasm_bindgen(js_name = exportRecovery)]
    pub fn export_recovery(&self) -> Result<String, JsValue> {
        self.inner.export_recovery().map(|s| s.to_string()).map_err(err)
    }

    /// Fresh keys: a self-update in every direct chat and a fresh key package.
    #[wasm_bindgen(js_name = rotateKeys)]
    pub fn rotate_keys(&mut self, now: f64) -> Result<JsValue, JsValue> {
        self.inner.rotate_keys(ms(now)).map(|fx| to_js(&fx)).map_err(err)
    }

    /// A one-time link code for a new device: `{ code, effects }`.
    #[wasm_bindgen(js_name = createLink)]
    pub fn create_link(&mut self, now: f64) -> Result<JsValue, JsValue> {
        let (code, effects) = self.inner.create_link(ms(now)).map_err(err)?;
        #[derive(Serialize)]
        struct Out {
            code: String,
            effects: Effects,
        }
        Ok(to_js(&Out { code, effects }))
    }

    /// Sends a linked installation the history rows read for `Event::HistoryWanted`
    /// (`[key, value]` pairs of the `messages` store).
    #[wasm_bindgen(js_name = sendHistory)]
    pub fn send_history(&mut self, link: &str, rows: js_sys::Array) -> Result<JsValue, JsValue> {
        let rows: Vec<(Vec<u8>, Vec<u8>)> = rows
            .iter()
            .map(|r| {
                let r = js_sys::Array::from(&r);
                (bytes(&r.get(0)), bytes(&r.get(1)))
            })
            .collect();
        self.inner.send_history(link, &rows).map(|fx| to_js(&fx)).map_err(err)
    }

    /// The account's installations.
    #[wasm_bindgen]
    pub fn installations(&self) -> JsValue {
        to_js(&self.inner.installations())
    }

    /// Removes (revokes) another installation of the account.
    #[wasm_bindgen(js_name = removeInstallation)]
    pub fn remove_installation(&mut self, installation: &str, now: f64) -> Result<JsValue, JsValue> {
        self.inner.remove_installation(installation, ms(now)).map(|fx| to_js(&fx)).map_err(err)
    }

    /// The content topics a directory lookup reads.
    #[wasm_bindgen(js_name = directoryTopics)]
    pub fn directory_topics() -> Vec<String> {
        Client::directory_topics().iter().map(|s| s.to_string()).collect()
    }

    /// The topics a lookup of these accounts reads (the shared ones, their sealed lists,
    /// the sealed key packages of the installations their known lists show): read them,
    /// ingest, and ask again until no new topic comes.
    #[wasm_bindgen(js_name = lookupTopics)]
    pub fn lookup_topics(&mut self, accounts: Vec<String>) -> Vec<String> {
        let refs: Vec<&str> = accounts.iter().map(String::as_str).collect();
        self.inner.lookup_topics(&refs)
    }

    /// The topics a recovery with this secret reads.
    #[wasm_bindgen(js_name = recoveryTopics)]
    pub fn recovery_topics(secret: &str) -> Result<Vec<String>, JsValue> {
        Client::recovery_topics(secret).map_err(err)
    }

    /// Also publish libchat's plain directory records (`ChatOptions.publicRecords`).
    #[wasm_bindgen(js_name = setPublicRecords)]
    pub fn set_public_records(&mut self, on: bool) {
        self.inner.set_public_records(on);
    }

    /// This account's contact card (`compact`: without the key package).
    #[wasm_bindgen(js_name = contactCard)]
    pub fn contact_card(&self, compact: bool, now: f64) -> Result<String, JsValue> {
        self.inner.contact_card(compact, ms(now)).map_err(err)
    }

    /// Adds a contact by card or account id: `{ contact, effects }`.
    #[wasm_bindgen(js_name = addContact)]
    pub fn add_contact(
        &mut self,
        card_or_account: &str,
        nickname: Option<String>,
    ) -> Result<JsValue, JsValue> {
        let (contact, effects) = self.inner.add_contact(card_or_account, nickname.as_deref()).map_err(err)?;
        #[derive(Serialize)]
        struct Out {
            contact: crate::core::effects::ContactInfo,
            effects: Effects,
        }
        Ok(to_js(&Out { contact, effects }))
    }

    /// Removes a contact.
    #[wasm_bindgen(js_name = removeContact)]
    pub fn remove_contact(&mut self, account: &str) -> Result<JsValue, JsValue> {
        self.inner.remove_contact(account).map(|fx| to_js(&fx)).map_err(err)
    }

    /// Blocks an account.
    #[wasm_bindgen]
    pub fn block(&mut self, account: &str) -> Result<JsValue, JsValue> {
        self.inner.block(account).map(|fx| to_js(&fx)).map_err(err)
    }

    /// Unblocks an account.
    #[wasm_bindgen]
    pub fn unblock(&mut self, account: &str) -> Result<JsValue, JsValue> {
        self.inner.unblock(account).map(|fx| to_js(&fx)).map_err(err)
    }

    /// Contacts and blocked accounts.
    #[wasm_bindgen]
    pub fn contacts(&self) -> JsValue {
        to_js(&self.inner.contacts())
    }

    /// Accepts a message request.
    #[wasm_bindgen(js_name = acceptRequest)]
    pub fn accept_request(&mut self, conversation: &str) -> Result<JsValue, JsValue> {
        self.inner.accept_request(conversation).map(|fx| to_js(&fx)).map_err(err)
    }

    /// Records one directory record; throws `{ code, message }` when it is invalid.
    #[wasm_bindgen(js_name = ingestDirectory)]
    pub fn ingest_directory(&mut self, topic: &str, payload: &[u8]) -> Result<(), JsValue> {
        self.inner.ingest_directory(topic, payload).map_err(err)
    }

    /// A lookup requested in `effects.lookups` is done.
    #[wasm_bindgen(js_name = lookupComplete)]
    pub fn lookup_complete(&mut self, account: &str, now: Option<f64>) -> JsValue {
        to_js(&self.inner.lookup_complete_at(account, now.map_or(0, ms)))
    }

    /// The directory read for a lookup failed: the core retries it on its own clock
    /// (`effects.wakeAt`), and releases what waits on it after the last try.
    #[wasm_bindgen(js_name = lookupFailed)]
    pub fn lookup_failed(&mut self, account: &str, now: f64) -> JsValue {
        to_js(&self.inner.lookup_failed(account, ms(now)))
    }

    /// A store query (a subscription's catch-up, or one in `effects.queries`) finished;
    /// a failed catch-up is retried by the core.
    #[wasm_bindgen(js_name = queryDone)]
    pub fn query_done(&mut self, topic: &str, ok: bool, now: f64) -> JsValue {
        to_js(&self.inner.query_done(topic, ok, ms(now)))
    }

    /// Starts (or returns) the direct chat with an account: `{ conversationId, effects }`.
    #[wasm_bindgen(js_name = startDirect)]
    pub fn start_direct(&mut self, account: &str, now: f64) -> Result<JsValue, JsValue> {
        let (conversation_id, effects) = self.inner.start_direct(account, ms(now)).map_err(err)?;
        Ok(to_js(&Started { conversation_id, effects }))
    }

    /// Sends bytes to a conversation: `{ messageId, effects }`.
    #[wasm_bindgen]
    pub fn send(&mut self, conversation: &str, content: &[u8], now: f64) -> Result<JsValue, JsValue> {
        let (message_id, effects) = self.inner.send(conversation, content, ms(now)).map_err(err)?;
        Ok(to_js(&Sent { message_id, effects }))
    }

    /// Sends typed content: `contentType` (text/plain goes raw), what it answers or
    /// reacts to (`replyTo`), a reaction taken back (`remove`): `{ messageId, effects }`.
    #[wasm_bindgen(js_name = sendContent)]
    pub fn send_content(
        &mut self,
        conversation: &str,
        content: Vec<u8>,
        content_type: String,
        reply_to: Option<String>,
        remove: bool,
        now: f64,
    ) -> Result<JsValue, JsValue> {
        let c = crate::core::content::Content { content_type, body: content, reply_to, remove };
        let (message_id, effects) = self.inner.send_content(conversation, &c, ms(now)).map_err(err)?;
        Ok(to_js(&Sent { message_id, effects }))
    }

    /// Handles one message from the network; never throws.
    #[wasm_bindgen]
    pub fn receive(&mut self, topic: &str, payload: &[u8], sent_at: f64, now: f64) -> JsValue {
        to_js(&self.inner.receive(topic, payload, ms(sent_at), ms(now)))
    }

    /// Every conversation.
    #[wasm_bindgen]
    pub fn conversations(&self) -> JsValue {
        to_js(&self.inner.conversations())
    }

    /// The content topic a conversation is delivered on.
    #[wasm_bindgen(js_name = conversationTopic)]
    pub fn conversation_topic(id: &str) -> Result<String, JsValue> {
        crate::core::address::ConversationId::parse(id).map(|c| c.topic().as_str().to_owned()).map_err(err)
    }

    /// Since when (ms) a topic's history is needed after a restart, if not all of it.
    #[wasm_bindgen(js_name = catchUpSince)]
    pub fn catch_up_since(&self, topic: &str) -> Option<f64> {
        self.inner.catch_up_since(topic).map(|t| t as f64)
    }

    /// Whether this client holds the conversation.
    #[wasm_bindgen(js_name = hasConversation)]
    pub fn has_conversation(&self, id: &str) -> bool {
        self.inner.has_conversation(id)
    }

    /// Whether a conversation has recently received or sent the message `messageId`.
    #[wasm_bindgen(js_name = hasMessage)]
    pub fn has_message(&self, conversation: &str, message_id: &str) -> bool {
        self.inner.has_message(conversation, message_id)
    }

    /// The `messages` key range before sequence `before` (exclusive): `{ from, to }`.
    #[wasm_bindgen(js_name = historyRange)]
    pub fn history_range(&self, conversation: &str, before: Option<f64>) -> Result<JsValue, JsValue> {
        let (from, to) = self.inner.history_range(conversation, before.map(ms)).map_err(err)?;
        #[derive(Serialize)]
        struct Range {
            #[serde(with = "serde_bytes")]
            from: Vec<u8>,
            #[serde(with = "serde_bytes")]
            to: Vec<u8>,
        }
        Ok(to_js(&Range { from, to }))
    }

    /// The `message_index` keys of a message id in a conversation, to try in order.
    #[wasm_bindgen(js_name = messageIndexKeys)]
    pub fn message_index_keys(&self, conversation: &str, message_id: &str) -> js_sys::Array {
        let a = js_sys::Array::new();
        for k in self.inner.message_index_keys(conversation, message_id) {
            a.push(&js_sys::Uint8Array::from(k.as_slice()));
        }
        a
    }

    /// Opens a `message_index` record: `{ conversationId, seq }`.
    #[wasm_bindgen(js_name = openMessageIndex)]
    pub fn open_message_index(&self, key: &[u8], value: &[u8]) -> Result<JsValue, JsValue> {
        let (conversation_id, seq) = self.inner.open_message_index(key, value).map_err(err)?;
        #[derive(Serialize)]
        #[serde(rename_all = "camelCase")]
        struct Index {
            conversation_id: String,
            seq: f64,
        }
        Ok(to_js(&Index { conversation_id, seq: seq as f64 }))
    }

    /// Opens `messages` records (`[key, value]` pairs) into chat messages.
    #[wasm_bindgen(js_name = openMessages)]
    pub fn open_messages(&self, records: js_sys::Array) -> Result<JsValue, JsValue> {
        let recs: Vec<(Vec<u8>, Vec<u8>)> = records
            .iter()
            .map(|r| {
                let r = js_sys::Array::from(&r);
                (bytes(&r.get(0)), bytes(&r.get(1)))
            })
            .collect();
        self.inner.open_messages(&recs).map(|m| to_js(&m)).map_err(err)
    }

    /// Marks a conversation read up to a message: unread drops to 0, and with a message id
    /// its sender gets a read receipt.
    #[wasm_bindgen(js_name = markRead)]
    pub fn mark_read(
        &mut self,
        conversation: &str,
        message_id: Option<String>,
        now: Option<f64>,
    ) -> Result<JsValue, JsValue> {
        let fx = match message_id {
            Some(m) => self.inner.mark_read_at(conversation, &m, now.map_or(0, ms)),
            None => self.inner.mark_read(conversation),
        };
        fx.map(|fx| to_js(&fx)).map_err(err)
    }

    /// Tells a conversation we are typing, or stopped.
    #[wasm_bindgen(js_name = setTyping)]
    pub fn set_typing(&mut self, conversation: &str, typing: bool, now: f64) -> Result<JsValue, JsValue> {
        self.inner.set_typing(conversation, typing, ms(now)).map(|fx| to_js(&fx)).map_err(err)
    }

    /// Whether this installation sends read receipts and typing (`ChatOptions.signals`).
    #[wasm_bindgen(js_name = setSignals)]
    pub fn set_signals(&mut self, on: bool) {
        self.inner.set_signals(on);
    }
}

/// Group timers as the TypeScript `GroupTiming` passes them (all optional).
#[derive(serde::Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct Timing {
    commit_window_ms: Option<f64>,
    freeze_ms: Option<f64>,
    vote_timeout_ms: Option<f64>,
    retry_ms: Option<f64>,
    stewards: Option<u32>,
    /// `Permissions::bits` (the driver maps `{ add, remove, rename }` to them).
    permissions: Option<u32>,
}

impl Timing {
    fn config(&self) -> Result<Config, JsValue> {
        let d = Config::default();
        let t = |v: Option<f64>, default: u64| v.map_or(default, ms);
        let permissions = Permissions::from_bits(self.permissions.unwrap_or(0))
            .ok_or_else(|| err(CoreError::InvalidArgument("unknown group permissions".into())))?;
        Ok(Config {
            commit_batch_window: t(self.commit_window_ms, d.commit_batch_window),
            freeze_duration: t(self.freeze_ms, d.freeze_duration),
            consensus_timeout: t(self.vote_timeout_ms, d.consensus_timeout),
            retry_window: t(self.retry_ms, d.retry_window),
            stewards: self.stewards.unwrap_or(d.stewards),
            liveness_yes: d.liveness_yes,
            permissions,
        })
    }
}

fn strings(v: js_sys::Array) -> Vec<String> {
    v.iter().filter_map(|x| x.as_string()).collect()
}

#[wasm_bindgen]
impl WasmClient {
    /// Creates a named group: `{ conversationId, effects }`. `timing` is a `GroupTiming`
    /// (with the group's `permissions`) or undefined.
    #[wasm_bindgen(js_name = createGroup)]
    pub fn create_group(
        &mut self,
        name: &str,
        description: &str,
        members: js_sys::Array,
        timing: JsValue,
        now: f64,
    ) -> Result<JsValue, JsValue> {
        let timing: Timing = if timing.is_undefined() || timing.is_null() {
            Timing::default()
        } else {
            serde_wasm_bindgen::from_value(timing)
                .map_err(|e| err(CoreError::InvalidArgument(format!("timing: {e}"))))?
        };
        let (conversation_id, effects) = self
            .inner
            .create_group(name, description, &strings(members), Some(timing.config()?), ms(now))
            .map_err(err)?;
        Ok(to_js(&Started { conversation_id, effects }))
    }

    /// Lets the app decide our votes (`voteRequest` events, answered with `vote`).
    #[wasm_bindgen(js_name = setVoteHook)]
    pub fn set_vote_hook(&mut self, on: bool) {
        self.inner.set_vote_hook(on);
    }

    /// Our vote on an open proposal of a group.
    pub fn vote(&mut self, id: &str, proposal_id: u32, yes: bool, now: f64) -> Result<JsValue, JsValue> {
        self.inner.vote(id, proposal_id, yes, ms(now)).map(|fx| to_js(&fx)).map_err(err)
    }

    /// Proposes adding accounts to a group.
    #[wasm_bindgen(js_name = addMembers)]
    pub fn add_members(&mut self, id: &str, accounts: js_sys::Array, now: f64) -> Result<JsValue, JsValue> {
        self.inner.add_members(id, &strings(accounts), ms(now)).map(|fx| to_js(&fx)).map_err(err)
    }

    /// Proposes removing accounts from a group.
    #[wasm_bindgen(js_name = removeMembers)]
    pub fn remove_members(
        &mut self,
        id: &str,
        accounts: js_sys::Array,
        now: f64,
    ) -> Result<JsValue, JsValue> {
        self.inner.remove_members(id, &strings(accounts), ms(now)).map(|fx| to_js(&fx)).map_err(err)
    }

    /// Leaves a group.
    #[wasm_bindgen(js_name = leaveGroup)]
    pub fn leave_group(&mut self, id: &str, now: f64) -> Result<JsValue, JsValue> {
        self.inner.leave_group(id, ms(now)).map(|fx| to_js(&fx)).map_err(err)
    }

    /// Proposes a new name and description.
    #[wasm_bindgen(js_name = setGroupMetadata)]
    pub fn set_group_metadata(
        &mut self,
        id: &str,
        name: &str,
        description: &str,
        now: f64,
    ) -> Result<JsValue, JsValue> {
        self.inner.set_group_metadata(id, name, description, ms(now)).map(|fx| to_js(&fx)).map_err(err)
    }

    /// A conversation's members: `Member[]`.
    #[wasm_bindgen(js_name = members)]
    pub fn group_members(&self, id: &str) -> Result<JsValue, JsValue> {
        self.inner.group_members(id).map(|m| to_js(&m)).map_err(err)
    }

    /// A group's stewards this epoch (account ids).
    #[wasm_bindgen(js_name = groupStewards)]
    pub fn group_stewards(&self, id: &str) -> Result<Vec<String>, JsValue> {
        self.inner.group_stewards(id).map_err(err)
    }

    /// Runs the timers due at `now` (call it at an effect's `wakeAt`).
    #[wasm_bindgen]
    pub fn tick(&mut self, now: f64) -> JsValue {
        to_js(&self.inner.tick(ms(now)))
    }
}

/// The 14/WAKU2-MESSAGE hash (hex) of a message with a timestamp in Unix ns.
#[wasm_bindgen(js_name = wakuMessageHash)]
pub fn waku_message_hash(pubsub: &str, payload: &[u8], content_topic: &str, timestamp_ns: i64) -> String {
    hex::encode(message_hash(pubsub, payload, content_topic, None, Some(timestamp_ns)))
}

/// The autosharded pubsub topic of a content topic; throws on a malformed topic.
#[wasm_bindgen(js_name = pubsubTopic)]
pub fn pubsub_topic_js(cluster: u32, content_topic: &str, shards: u32) -> Result<String, JsValue> {
    pubsub_topic(cluster, content_topic, u64::from(shards)).map_err(err)
}

/// Checks a content topic's form; throws `{ code: "INVALID_ARGUMENT" }` otherwise.
#[wasm_bindgen(js_name = validateContentTopic)]
pub fn validate_content_topic(content_topic: &str) -> Result<(), JsValue> {
    ContentTopic::parse(content_topic).map(|_| ()).map_err(err)
}

/// The size of the encoded WakuMessage carrying `payload_len` bytes on a topic.
#[wasm_bindgen(js_name = encodedMessageSize)]
pub fn encoded_message_size_js(content_topic: &str, payload_len: usize) -> usize {
    encoded_message_size(content_topic, payload_len)
}
