//! The client state machine: one installation of one account (DESIGN.md §1).
//!
//! Every entry point takes its inputs (a command, inbound bytes, the time) and
//! returns [`Effects`]; nothing here awaits, reads a clock or does I/O.
//! Randomness comes from the injected RNG, except what openmls draws from its
//! own provider. Routing follows PROTOCOL.md §2.5: own inbox hint → invite,
//! known conversation hint → that conversation, anything else is dropped.
//! Bad input from the network never changes state: it is dropped, with an
//! `Error` event when it was addressed to us.

use std::collections::{BTreeMap, HashMap, VecDeque};

use crate::core::conversation::mls_store::Provider;
use openmls::prelude::tls_codec::Serialize as _;
use openmls::prelude::KeyPackage;
use openmls_traits::OpenMlsProvider;
use prost::Message as _;
use rand_core::CryptoRngCore;

use super::account::{AccountKey, DelegateCredential, DeviceBundle, InstallationKey};
use super::account_log::AccountLog;
use super::address::{blake2b, AccountId, ConversationId, InstallationId, MessageId, CHAT_TOPIC_PREFIX};
use super::conversation::mls_store::Secret;
use super::conversation::{mls, ConversationMeta, DirectConversation, GroupConversation, Inbound};
use super::directory::{self, Directory, ACCOUNT_TOPIC};
use super::effects::{ChatMessage, ConversationInfo, Effects, Event, Outbound, SenderInfo};
use super::error::{CoreError, Result};
use super::sds::Channel;
use super::segment::{self, Reassembler};
use super::store::{
    decode_record, encode, migrate, mls_logical_key, AccountRecord, ConversationRecord, LoadedRecord,
    MessageIndexRecord, MessageRecord, MetaRecord, MlsRecord, OutboxRecord, SeenRecord, Store, StoreCipher,
    StoreOp, SCHEMA_VERSION, SINGLETON,
};
mod archive;
mod checkpoint;
mod contacts;
mod delivery;
mod devices;
mod direct;
mod group;
mod group_output;
mod joining;
mod links;
mod outbox;
mod recovery;
mod register;
mod registry;
mod reliability;
pub(crate) mod signals;
mod storage;

pub use links::Linking;
pub use outbox::{FULL_ACK_MAX, RETRANSMIT_DELAYS_MS};
pub use recovery::RECOVERY_PREFIX;
pub use register::REPUBLISH_MS;
pub use reliability::{backoff, HOLD_MS, LOOKUP_TRIES};

use super::wire::{
    decode, encrypted_payload, inbox_v2_frame, EncryptedPayload, EnvelopeV1, GroupV1HeavyInvite,
    InboxV2Frame, ReliablePayload,
};

/// How many handled envelope digests are remembered (and persisted) for de-duplication:
/// a replay within this window is dropped before any MLS work.
const SEEN_CAP: usize = 16_384;
/// How many refused envelope digests are remembered in memory.
const REFUSED_CAP: usize = 4_096;

/// A message held until the directory confirms (or not) its sender's account.
#[derive(Debug)]
struct Pending {
    account: AccountId,
    message: ChatMessage,
    installation: InstallationId,
    seq: u64,
}

/// One installation's whole chat state.
pub struct Client {
    rng: Box<dyn CryptoRngCore>,
    provider: Provider,
    account: AccountKey,
    installation: InstallationKey,
    credential: DelegateCredential,
    bundle: DeviceBundle,
    /// The account's log (libchat's proposed format), kept in step with `bundle`.
    log: AccountLog,
    key_package: KeyPackage,
    directory: Directory,
    conversations: BTreeMap<ConversationId, DirectConversation>,
    groups: BTreeMap<ConversationId, GroupConversation>,
    seen: HashMap<[u8; 32], u64>,
    seen_order: VecDeque<[u8; 32]>,
    seen_counter: u64,
    /// Digests of envelopes refused this session (bad input): dropped if they come again,
    /// never persisted (a stranger's garbage costs no write), bounded.
    refused: std::collections::HashSet<[u8; 32]>,
    refused_order: VecDeque<[u8; 32]>,
    pending: Vec<Pending>,
    cipher: StoreCipher,
    /// The openmls entries as last persisted: what a call changed is the difference.
    mls_mirror: crate::core::conversation::mls_store::Entries,
    /// openmls's write count when the mirror last matched its storage.
    mls_synced: u64,
    /// How often openmls's storage was put back from the mirror (a cost refused input
    /// should not cause: tests read it).
    mls_rollbacks: u64,
    outbox: BTreeMap<u64, OutboxRecord>,
    next_outbox: u64,
    reassembler: Reassembler,
    /// Welcomes waiting for their ratchet tree, and what their group topic brought meanwhile.
    joins: joining::Joins,
    /// Causal holds, missing messages, re-sends and retries (`reliability`).
    rel: reliability::Reliability,
    /// What the open call may change, as it was (`checkpoint`).
    checkpoint: Option<checkpoint::Checkpoint>,
    /// The app decides our votes on permitted group proposals (`Event::VoteRequest`).
    votes_by_app: bool,
    /// Link codes handed out and not yet used up (`devices`).
    links: Vec<links::OpenLink>,
    /// When each installation of the account was first seen in its list.
    added_at: BTreeMap<InstallationId, u64>,
    /// Another installation removed this one: every call fails.
    removed: bool,
    /// The link this installation came from, while the archive may still come on it.
    link_in: Option<(crate::core::link::LinkSecret, crate::core::link::SessionKey, u64)>,
    /// Archived messages of chats not joined yet, and their content bytes.
    archive_waiting: Vec<ChatMessage>,
    archive_waiting_bytes: usize,
    /// Also publish libchat's plain directory records (the app's choice: libchat clients
    /// find this account, and anyone can link its installations to it).
    public_records: bool,
    /// The registry this installation publishes to and reads from instead of the delivery
    /// topics (`ChatOptions.directory`), with its requests in flight.
    registry: Option<crate::core::directory::registry::Registry>,
    /// Read receipts and typing (`signals`).
    signals: signals::Signals,
    /// When the directory records were last published (ms; 0 before the first time).
    announced_at: u64,
    /// Contacts and blocked accounts (issue 14), persisted in the `contacts` store.
    contacts: BTreeMap<AccountId, crate::core::store::ContactRecord>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("account", &self.account.id())
            .field("installation", &self.installation.id())
            .field("conversations", &self.conversations.len())
            .finish_non_exhaustive()
    }
}

impl Client {
    /// A new account with its first installation, encrypted at rest under
    /// `store_key`. The effects persist it, publish the device bundle and key
    /// package to the directory and subscribe the inbox.
    pub fn create(
        mut rng: Box<dyn CryptoRngCore>,
        store_key: &[u8; 32],
        now_ms: u64,
    ) -> Result<(Self, Effects)> {
        let account = AccountKey::generate(rng.as_mut());
        let installation = InstallationKey::generate(rng.as_mut());
        Self::from_keys(rng, store_key, account, installation, now_ms)
    }

    /// A new client from existing keys (tests, and an installation that is re-created).
    pub fn from_keys(
        rng: Box<dyn CryptoRngCore>,
        store_key: &[u8; 32],
        account: AccountKey,
        installation: InstallationKey,
        now_ms: u64,
    ) -> Result<(Self, Effects)> {
        // libchat publishes an account's first bundle at lamport 0.
        let bundle = account.sign_bundle(0, vec![installation.id()])?;
        Self::with_bundle(rng, store_key, account, installation, (bundle, None), now_ms)
    }

    /// A new installation whose account's signed list is `bundle` (a fresh account's
    /// own, or the one a link granted).
    fn with_bundle(
        rng: Box<dyn CryptoRngCore>,
        store_key: &[u8; 32],
        account: AccountKey,
        installation: InstallationKey,
        (bundle, log): (DeviceBundle, Option<AccountLog>),
        now_ms: u64,
    ) -> Result<(Self, Effects)> {
        let provider = Provider::new().map_err(CoreError::mls)?;
        let credential = DelegateCredential { installation: installation.id(), account: Some(account.id()) };
        let kp_bundle = mls::new_key_package(&provider, &installation, &credential)?;
        let key_package = kp_bundle.key_package().clone();
        let mut client =
            Self::assemble(rng, provider, store_key, account, installation, (bundle, log), key_package)?;
        for d in &client.bundle.devices {
            client.added_at.insert(d.clone(), now_ms);
        }
        let mut fx = Effects::default();
        let meta = MetaRecord { schema_version: SCHEMA_VERSION };
        fx.store.push(client.cipher.put(client.rng.as_mut(), Store::Meta, SINGLETON, &encode(&meta))?);
        let record = client.account_record()?;
        fx.store.push(client.cipher.put(client.rng.as_mut(), Store::Account, SINGLETON, &encode(&record))?);
        client.announce_into(&mut fx, now_ms)?;
        client.sync_mls(&mut fx)?;
        fx.wake_at = client.next_wake(now_ms);
        Ok((client, fx))
    }

    fn assemble(
        rng: Box<dyn CryptoRngCore>,
        provider: Provider,
        store_key: &[u8; 32],
        account: AccountKey,
        installation: InstallationKey,
        (bundle, log): (DeviceBundle, Option<AccountLog>),
        key_package: KeyPackage,
    ) -> Result<Self> {
        let credential = DelegateCredential { installation: installation.id(), account: Some(account.id()) };
        let mut directory = Directory::default();
        directory.pin(&account.id());
        directory.accept_bundle(bundle.clone())?;
        // Our own log: as stored or granted, else a first one that lists what the bundle does.
        let log = match log {
            Some(l) => l,
            None => AccountLog::first(&account, &bundle.devices)?,
        };
        directory.accept_log(log.clone())?;
        Ok(Client {
            rng,
            provider,
            account,
            installation,
            credential,
            bundle,
            log,
            key_package,
            directory,
            conversations: BTreeMap::new(),
            groups: BTreeMap::new(),
            seen: HashMap::new(),
            seen_order: VecDeque::new(),
            seen_counter: 0,
            refused: Default::default(),
            refused_order: VecDeque::new(),
            pending: Vec::new(),
            cipher: StoreCipher::new(store_key),
            mls_mirror: HashMap::new(),
            mls_synced: 0,
            mls_rollbacks: 0,
            outbox: BTreeMap::new(),
            next_outbox: 1,
            reassembler: Reassembler::default(),
            joins: joining::Joins::default(),
            rel: reliability::Reliability::default(),
            checkpoint: None,
            votes_by_app: false,
            links: Vec::new(),
            added_at: BTreeMap::new(),
            removed: false,
            link_in: None,
            archive_waiting: Vec::new(),
            archive_waiting_bytes: 0,
            public_records: false,
            registry: None,
            signals: signals::Signals::default(),
            contacts: BTreeMap::new(),
            announced_at: 0,
        })
    }

    /// The chat channel and bookkeeping of a direct or group conversation.
    fn channel_meta(&mut self, id: &ConversationId) -> Option<(&mut Channel, &mut ConversationMeta)> {
        if let Some(c) = self.conversations.get_mut(id) {
            return Some((&mut c.channel, &mut c.meta));
        }
        self.groups.get_mut(id).map(|g| (&mut g.channel, &mut g.meta))
    }

    fn knows(&self, id: &ConversationId) -> bool {
        self.conversations.contains_key(id) || self.groups.contains_key(id)
    }

    /// The account address.
    pub fn account_id(&self) -> AccountId {
        self.account.id()
    }

    /// This installation's id.
    pub fn installation_id(&self) -> InstallationId {
        self.installation.id()
    }

    /// The lookup of `account` is done: release the messages waiting on it.
    pub fn lookup_complete(&mut self, account: &str) -> Effects {
        self.lookup_complete_at(account, 0)
    }

    /// [`Client::lookup_complete`] at a time (when a newer list of our own account
    /// came, its new installations are dated then).
    pub fn lookup_complete_at(&mut self, account: &str, now_ms: u64) -> Effects {
        self.lookup_settled(account);
        let Ok(account) = AccountId::parse(account) else { return Effects::default() };
        let mut fx = Effects::default();
        // What the lookup read is kept across restarts.
        if let Err(e) = self.flush_directory(&mut fx) {
            fx.events.push(Event::Error { code: e.code().as_str(), message: e.to_string() });
        }
        if account == self.account.id() {
            if let Err(e) = self.follow_own_bundle(now_ms, &mut fx) {
                fx.events.push(Event::Error { code: e.code().as_str(), message: e.to_string() });
            }
        }
        // A direct chat with this account may be verified now (and a contact's chat that
        // waited for it is no longer a request).
        let contact = self.is_contact(&account);
        let verified_requests: Vec<ConversationId> = self
            .conversations
            .values()
            .filter(|c| c.peer == account && c.meta.request && contact && direct_verified(c, &self.directory))
            .map(|c| c.id().clone())
            .collect();
        for id in verified_requests {
            if let Some(c) = self.conversations.get_mut(&id) {
                c.meta.request = false;
            }
            if let Err(e) = self.put_conversation(&id, &mut fx) {
                fx.events.push(Event::Error { code: e.code().as_str(), message: e.to_string() });
            }
        }
        for c in self.conversations.values().filter(|c| c.peer == account) {
            fx.events.push(Event::Conversation(info(c, &self.directory)));
        }
        let (ready, rest): (Vec<_>, Vec<_>) =
            std::mem::take(&mut self.pending).into_iter().partition(|p| p.account == account);
        self.pending = rest;
        let mut touched: Vec<ConversationId> = Vec::new();
        for mut p in ready {
            if let Ok(id) = ConversationId::parse(&p.message.conversation_id) {
                if !touched.contains(&id) {
                    touched.push(id);
                }
            }
            // Blocked while its sender was looked up: neither kept nor shown (it was
            // stored when it came, unread, to survive a restart).
            if self.blocked(Some(&p.account), std::slice::from_ref(&p.installation)) {
                if let Err(e) = self.forget_message(&p.message, p.seq, &mut fx) {
                    fx.events.push(Event::Error { code: e.code().as_str(), message: e.to_string() });
                }
                continue;
            }
            if self.directory.confirms(&p.account, &p.installation) {
                p.message.sender.account_id = Some(p.account.to_hex());
                // Sent by another installation of ours: outgoing, never unread.
                p.message.outgoing = p.account == self.account.id();
                if let Err(e) = self.put_message(&p.message, p.seq, &mut fx) {
                    fx.events.push(Event::Error { code: e.code().as_str(), message: e.to_string() });
                }
            }
            fx.events.push(Event::Message(p.message));
        }
        // Messages held for causal order behind these may go now; the records change.
        for id in touched {
            if let Err(e) = self.release_after_lookup(&id, &mut fx) {
                fx.events.push(Event::Error { code: e.code().as_str(), message: e.to_string() });
            }
        }
        fx
    }

    /// Every conversation, the most recently active first (its last message, else when it
    /// was created or joined), then by id.
    pub fn conversations(&self) -> Vec<ConversationInfo> {
        let mut all: Vec<ConversationInfo> =
            self.conversations.values().map(|c| info(c, &self.directory)).collect();
        all.extend(self.groups.values().map(group::group_info));
        let activity =
            |c: &ConversationInfo| c.last_message_at.map_or(c.created_at, |t| whole_ms(t).max(c.created_at));
        all.sort_by(|a, b| activity(b).cmp(&activity(a)).then_with(|| a.id.cmp(&b.id)));
        all
    }

    /// The account and installation seeds, so tests can scan storage for them.
    #[cfg(test)]
    pub(crate) fn secret_seeds_for_tests(&self) -> ([u8; 32], [u8; 32]) {
        (*self.account.seed(), *self.installation.seed())
    }

    /// Whether this client holds the conversation.
    pub fn has_conversation(&self, id: &str) -> bool {
        ConversationId::parse(id).is_ok_and(|id| self.knows(&id))
    }

    /// Whether a conversation has recently received (or sent) a message: the driver stops
    /// reading a missing message back from the store once it has come, even while it is
    /// held for its sender's confirmation.
    pub fn has_message(&self, conversation: &str, message_id: &str) -> bool {
        ConversationId::parse(conversation).is_ok_and(|id| self.seen_message(&id, message_id))
    }

    /// Encrypts and sends `content` to a conversation. The message is stored in
    /// the history and the envelope in the outbox, in the same effects.
    pub fn send(&mut self, conversation: &str, content: &[u8], now_ms: u64) -> Result<(String, Effects)> {
        let (id, mut fx) = self.guarded(|c| {
            c.check_active()?;
            let id = ConversationId::parse(conversation)?;
            if c.groups.contains_key(&id) {
                c.send_group(&id, content, now_ms)
            } else {
                c.send_direct(&id, content, now_ms)
            }
        })?;
        fx.wake_at = self.next_wake(now_ms);
        Ok((id, fx))
    }

    /// Sends typed content (`core::content`): plain text raw, anything else framed, with
    /// what it answers or reacts to.
    pub fn send_content(
        &mut self,
        conversation: &str,
        content: &crate::core::content::Content,
        now_ms: u64,
    ) -> Result<(String, Effects)> {
        let wire = crate::core::content::encode(content)?;
        self.send(conversation, &wire, now_ms)
    }

    /// The history entry of a message this installation sends.
    fn outgoing(&self, id: &ConversationId, message_id: &str, content: &[u8], now_ms: u64) -> ChatMessage {
        let c = crate::core::content::decode(content);
        ChatMessage {
            id: message_id.to_owned(),
            conversation_id: id.as_str().to_owned(),
            sender: SenderInfo {
                account_id: Some(self.account.id().to_hex()),
                installation_id: self.installation.id().to_hex(),
            },
            content: c.body,
            content_type: c.content_type,
            reply_to: c.reply_to,
            remove: c.remove,
            sent_at: now_ms as f64,
            received_at: now_ms as f64,
            outgoing: true,
        }
    }

    /// Handles one message from the network. Never fails: problems become `Error` events.
    pub fn receive(&mut self, content_topic: &str, payload: &[u8], sent_at_ms: u64, now_ms: u64) -> Effects {
        let mut fx = self.receive_inner(content_topic, payload, sent_at_ms, now_ms);
        if fx.wake_at.is_none() && (!fx.events.is_empty() || !fx.store.is_empty()) {
            fx.wake_at = self.next_wake(now_ms);
        }
        fx
    }

    fn receive_inner(
        &mut self,
        content_topic: &str,
        payload: &[u8],
        sent_at_ms: u64,
        now_ms: u64,
    ) -> Effects {
        if Self::is_directory_topic(content_topic) {
            let _ = self.ingest_directory(content_topic, payload);
            return Effects::default();
        }
        if !content_topic.starts_with(CHAT_TOPIC_PREFIX) {
            return Effects::default();
        }
        if self.link_in_topic(content_topic) {
            return self.guarded(|c| c.handle_link_in(payload, now_ms)).unwrap_or_else(|e| Effects {
                events: vec![Event::Error { code: e.code().as_str(), message: e.to_string() }],
                ..Effects::default()
            });
        }
        if self.link_topic(content_topic) {
            // Bracketed: a chat the new installation could not be added to is put back.
            return self.guarded(|c| c.handle_link(content_topic, payload, now_ms)).unwrap_or_else(|e| {
                Effects {
                    events: vec![Event::Error { code: e.code().as_str(), message: e.to_string() }],
                    ..Effects::default()
                }
            });
        }
        let digest = fx_digest(content_topic, payload);
        if self.seen.contains_key(&digest) || self.refused.contains(&digest) {
            return Effects::default();
        }
        self.begin();
        let routed = self.route(content_topic, payload, sent_at_ms, now_ms).and_then(|fx| match fx {
            Some(mut fx) => {
                self.sync_mls(&mut fx)?;
                Ok(Some(fx))
            }
            None => Ok(None),
        });
        match &routed {
            Ok(_) => self.end(),
            Err(_) => self.rewind(),
        }
        match routed {
            Ok(Some(mut fx)) => {
                if let Err(e) = self.remember(&digest, &mut fx) {
                    fx.events.push(Event::Error { code: e.code().as_str(), message: e.to_string() });
                }
                // Lists a group's tree or request carried: kept across restarts (only once
                // the call succeeded, so that a rewound call leaves them to the next).
                if let Err(e) = self.flush_directory(&mut fx) {
                    fx.events.push(Event::Error { code: e.code().as_str(), message: e.to_string() });
                }
                // A join brings back what the group topic carried while its tree was awaited.
                for (topic, payload, sent_at) in self.joins.take_replay() {
                    fx.extend(self.receive(&topic, &payload, sent_at, now_ms));
                }
                fx
            }
            // Not ours (shared inbox space, an unknown hint): drop silently and
            // do not remember it, so a later replay can still be handled.
            Ok(None) => Effects::default(),
            Err(e) => {
                // Nothing of this call is kept (rewound above): state stays as it was.
                self.refuse(digest);
                let mut fx = Effects::default();
                // A blocked account's invite is dropped without a word.
                if e != CoreError::Blocked {
                    fx.events.push(Event::Error { code: e.code().as_str(), message: e.to_string() });
                }
                fx
            }
        }
    }
}

pub(crate) fn group_envelope(id: &ConversationId, mls_message: Vec<u8>) -> Vec<u8> {
    EnvelopeV1 {
        conversation_hint: id.as_str().to_owned(),
        salt: 0,
        payload: EncryptedPayload::plaintext(mls_message).encode_to_vec(),
    }
    .encode_to_vec()
}

pub(crate) fn fx_digest(topic: &str, payload: &[u8]) -> [u8; 32] {
    blake2b::<32>(&[topic.as_bytes(), b"|", payload])
}

fn info(c: &DirectConversation, directory: &Directory) -> ConversationInfo {
    ConversationInfo {
        verified: direct_verified(c, directory),
        id: c.id().as_str().to_owned(),
        kind: "direct",
        peer: Some(c.peer.to_hex()),
        name: None,
        description: None,
        last_message_at: (c.meta.last_message_at > 0).then_some(c.meta.last_message_at as f64),
        last_message: (!c.meta.last_preview.is_empty()).then(|| c.meta.last_preview.clone()),
        created_at: c.meta.created_at,
        unread: c.meta.unread,
        request: c.meta.request,
    }
}

/// Whether every installation of a direct chat that claims the peer's account is on the
/// peer's signed device list (and there is one): a Welcome whose credential claims
/// someone's account does not make that account's chat.
pub(super) fn direct_verified(c: &DirectConversation, directory: &Directory) -> bool {
    let mut claims = c.members().into_iter().filter(|m| m.account.as_ref() == Some(&c.peer)).peekable();
    claims.peek().is_some() && claims.all(|m| directory.confirms(&c.peer, &m.installation))
}

/// A time in ms as the API carries it (f64) as a whole `u64`: negative and NaN are 0,
/// beyond `u64::MAX` is `u64::MAX`.
#[allow(
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    reason = "a float-to-int `as` saturates, NaN is 0"
)]
pub(crate) fn whole_ms(t: f64) -> u64 {
    t as u64
}
