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

use openmls::prelude::tls_codec::Serialize as _;
use openmls::prelude::KeyPackage;
use openmls_libcrux_crypto::Provider;
use openmls_traits::OpenMlsProvider;
use prost::Message as _;
use rand_core::CryptoRngCore;

use super::account::{AccountKey, DelegateCredential, DeviceBundle, InstallationKey};
use super::address::{blake2b, AccountId, ConversationId, InstallationId, MessageId, CHAT_TOPIC_PREFIX};
use super::conversation::{mls, ConversationMeta, DirectConversation, GroupConversation, Inbound};
use super::directory::{self, Directory, ACCOUNT_TOPIC, KEYPACKAGE_TOPIC};
use super::effects::{ChatMessage, ConversationInfo, Effects, Event, Outbound, SenderInfo};
use super::error::{CoreError, Result};
use super::sds::Channel;
use super::store::{
    decode_record, encode, migrate, mls_logical_key, AccountRecord, ConversationRecord, LoadedRecord,
    MessageIndexRecord, MessageRecord, MetaRecord, MlsRecord, OutboxRecord, SeenRecord, Store, StoreCipher,
    StoreOp, SCHEMA_VERSION, SINGLETON,
};
mod group;

use super::wire::{
    decode, encrypted_payload, inbox_v2_frame, EncryptedPayload, EnvelopeV1, GroupV1HeavyInvite,
    InboxV2Frame, ReliablePayload,
};

/// How many handled envelope digests are remembered (and persisted) for de-duplication:
/// a replay within this window is dropped before any MLS work.
const SEEN_CAP: usize = 16_384;

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
    key_package: KeyPackage,
    directory: Directory,
    conversations: BTreeMap<ConversationId, DirectConversation>,
    groups: BTreeMap<ConversationId, GroupConversation>,
    seen: HashMap<[u8; 32], u64>,
    seen_order: VecDeque<[u8; 32]>,
    seen_counter: u64,
    pending: Vec<Pending>,
    cipher: StoreCipher,
    /// The openmls entries as last persisted: what a call changed is the difference.
    mls_mirror: HashMap<Vec<u8>, Vec<u8>>,
    outbox: BTreeMap<u64, OutboxRecord>,
    next_outbox: u64,
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
        let provider = Provider::new().map_err(CoreError::mls)?;
        let credential = DelegateCredential { installation: installation.id(), account: Some(account.id()) };
        // libchat publishes an account's first bundle at lamport 0.
        let bundle = account.sign_bundle(0, vec![installation.id()])?;
        let kp_bundle = mls::new_key_package(&provider, &installation, &credential)?;
        let key_package = kp_bundle.key_package().clone();
        let mut client =
            Self::assemble(rng, provider, store_key, account, installation, bundle, key_package)?;
        let mut fx = Effects::default();
        let meta = MetaRecord { schema_version: SCHEMA_VERSION };
        fx.store.push(client.cipher.put(client.rng.as_mut(), Store::Meta, SINGLETON, &encode(&meta))?);
        let record = client.account_record()?;
        fx.store.push(client.cipher.put(client.rng.as_mut(), Store::Account, SINGLETON, &encode(&record))?);
        client.announce_into(&mut fx, now_ms)?;
        client.sync_mls(&mut fx)?;
        Ok((client, fx))
    }

    fn assemble(
        rng: Box<dyn CryptoRngCore>,
        provider: Provider,
        store_key: &[u8; 32],
        account: AccountKey,
        installation: InstallationKey,
        bundle: DeviceBundle,
        key_package: KeyPackage,
    ) -> Result<Self> {
        let credential = DelegateCredential { installation: installation.id(), account: Some(account.id()) };
        let mut directory = Directory::default();
        directory.accept_bundle(bundle.clone())?;
        Ok(Client {
            rng,
            provider,
            account,
            installation,
            credential,
            bundle,
            key_package,
            directory,
            conversations: BTreeMap::new(),
            groups: BTreeMap::new(),
            seen: HashMap::new(),
            seen_order: VecDeque::new(),
            seen_counter: 0,
            pending: Vec::new(),
            cipher: StoreCipher::new(store_key),
            mls_mirror: HashMap::new(),
            outbox: BTreeMap::new(),
            next_outbox: 1,
        })
    }

    fn account_record(&self) -> Result<AccountRecord> {
        Ok(AccountRecord {
            account_seed: self.account.seed().to_vec(),
            installation_seed: self.installation.seed().to_vec(),
            bundle_lamport: self.bundle.lamport,
            key_package: self.key_package.tls_serialize_detached().map_err(CoreError::mls)?,
        })
    }

    /// Restores a client from every record of the stores loaded at start
    /// ([`Store::loaded_at_start`]). Fails with `StoreCorrupt` when a record does
    /// not authenticate or decode (a wrong store key looks the same), never resets.
    /// The effects re-subscribe every topic and re-publish the outbox.
    pub fn restore(
        rng: Box<dyn CryptoRngCore>,
        store_key: &[u8; 32],
        records: Vec<LoadedRecord>,
        now_ms: u64,
    ) -> Result<(Self, Effects)> {
        let cipher = StoreCipher::new(store_key);
        let mut by_store: BTreeMap<Store, Vec<Vec<u8>>> = BTreeMap::new();
        for (name, key, sealed) in records {
            let store = Store::from_name(&name)
                .ok_or_else(|| CoreError::StoreCorrupt(format!("unknown object store {name:?}")))?;
            by_store.entry(store).or_default().push(cipher.open(store, &key, &sealed)?);
        }
        let single = |store: Store, by: &BTreeMap<Store, Vec<Vec<u8>>>| -> Result<Vec<u8>> {
            match by.get(&store).map(Vec::as_slice) {
                Some([one]) => Ok(one.clone()),
                _ => Err(CoreError::StoreCorrupt(format!("expected one {} record", store.name()))),
            }
        };
        let meta: MetaRecord = decode_record("meta", &single(Store::Meta, &by_store)?)?;
        migrate(meta.schema_version)?;
        let acct: AccountRecord = decode_record("account", &single(Store::Account, &by_store)?)?;
        let seed = |b: &[u8]| <[u8; 32]>::try_from(b).map_err(|_| CoreError::StoreCorrupt("key seed".into()));
        let account = AccountKey::from_seed(&seed(&acct.account_seed)?);
        let installation = InstallationKey::from_seed(&seed(&acct.installation_seed)?);
        let bundle = account.sign_bundle(acct.bundle_lamport, vec![installation.id()])?;
        let provider = Provider::new().map_err(CoreError::mls)?;
        // The stored key package validates until its lifetime (84 days) ends; an
        // installation that was closed longer gets a fresh last-resort package, which
        // the next announce publishes.
        let stored_key_package = directory::parse_key_package(&acct.key_package, provider.crypto()).ok();
        let placeholder = match &stored_key_package {
            Some(kp) => kp.clone(),
            None => mls::new_key_package(
                &provider,
                &installation,
                &DelegateCredential { installation: installation.id(), account: Some(account.id()) },
            )?
            .key_package()
            .clone(),
        };
        let mut client =
            Self::assemble(rng, provider, store_key, account, installation, bundle, placeholder)?;
        {
            let mut values = client.provider.storage().values.write().map_err(CoreError::mls)?;
            for v in by_store.remove(&Store::Mls).unwrap_or_default() {
                let rec: MlsRecord = decode_record("mls", &v)?;
                values.insert(rec.key.clone(), rec.value.clone());
                client.mls_mirror.insert(rec.key, rec.value);
            }
        }
        let mut fx = Effects {
            subscribe: vec![client.installation.id().inbox_topic().as_str().to_owned()],
            ..Effects::default()
        };
        if stored_key_package.is_none() {
            // The fresh package (its private parts are in the provider, not yet in the
            // mirror) is persisted now, with the account record that names it.
            let record = client.account_record()?;
            fx.store.push(client.cipher.put(
                client.rng.as_mut(),
                Store::Account,
                SINGLETON,
                &encode(&record),
            )?);
            client.sync_mls(&mut fx)?;
        }
        for v in by_store.remove(&Store::Conversations).unwrap_or_default() {
            let rec: ConversationRecord = decode_record("conversation", &v)?;
            if rec.kind == "group" {
                let group = GroupConversation::restore(&client.provider, rec, now_ms)?;
                if !group.left {
                    fx.subscribe.push(group.id().topic().as_str().to_owned());
                }
                client.groups.insert(group.id().clone(), group);
                continue;
            }
            let convo = DirectConversation::restore(&client.provider, rec)?;
            fx.subscribe.push(convo.id().topic().as_str().to_owned());
            client.conversations.insert(convo.id().clone(), convo);
        }
        let mut seen: Vec<SeenRecord> = Vec::new();
        for v in by_store.remove(&Store::Seen).unwrap_or_default() {
            seen.push(decode_record("seen", &v)?);
        }
        seen.sort_by_key(|r| r.order);
        for r in seen {
            if let Ok(d) = <[u8; 32]>::try_from(r.digest.as_slice()) {
                client.seen.insert(d, r.order);
                client.seen_order.push_back(d);
                client.seen_counter = client.seen_counter.max(r.order + 1);
            }
        }
        fx.wake_at = client.next_wake(now_ms);
        for v in by_store.remove(&Store::Outbox).unwrap_or_default() {
            let rec: OutboxRecord = decode_record("outbox", &v)?;
            client.next_outbox = client.next_outbox.max(rec.id + 1);
            client.outbox.insert(rec.id, rec);
        }
        for rec in client.outbox.values() {
            fx.publish.push(Outbound {
                content_topic: rec.content_topic.clone(),
                payload: rec.payload.clone(),
                outbox_id: rec.id,
            });
        }
        Ok((client, fx))
    }

    /// Publishes the device bundle and key package again and subscribes the inbox.
    pub fn announce(&mut self, now_ms: u64) -> Result<Effects> {
        let mut fx = Effects::default();
        self.announce_into(&mut fx, now_ms)?;
        Ok(fx)
    }

    fn announce_into(&mut self, fx: &mut Effects, now_ms: u64) -> Result<()> {
        let kp = directory::key_package_submission(&self.installation, now_ms, &self.key_package)?;
        fx.subscribe.push(self.installation.id().inbox_topic().as_str().to_owned());
        self.enqueue(fx, ACCOUNT_TOPIC.into(), directory::account_submission(&self.bundle))?;
        self.enqueue(fx, KEYPACKAGE_TOPIC.into(), kp)
    }

    /// Puts an envelope in the persisted outbox and asks the driver to publish it.
    fn enqueue(&mut self, fx: &mut Effects, content_topic: String, payload: Vec<u8>) -> Result<()> {
        let id = self.next_outbox;
        self.next_outbox += 1;
        let rec = OutboxRecord { id, content_topic: content_topic.clone(), payload: payload.clone() };
        fx.store.push(self.cipher.put(self.rng.as_mut(), Store::Outbox, &id.to_be_bytes(), &encode(&rec))?);
        self.outbox.insert(id, rec);
        fx.publish.push(Outbound { content_topic, payload, outbox_id: id });
        Ok(())
    }

    /// Everything still in the outbox, oldest first (the driver retries these).
    pub fn pending_outbox(&self) -> Vec<Outbound> {
        self.outbox
            .values()
            .map(|r| Outbound {
                content_topic: r.content_topic.clone(),
                payload: r.payload.clone(),
                outbox_id: r.id,
            })
            .collect()
    }

    /// The transport accepted an outbox entry: it leaves the outbox.
    pub fn outbox_sent(&mut self, outbox_id: u64) -> Effects {
        let mut fx = Effects::default();
        if self.outbox.remove(&outbox_id).is_some() {
            fx.store.push(self.cipher.delete(Store::Outbox, &outbox_id.to_be_bytes()));
        }
        fx
    }

    /// Adds the openmls entries this call changed to the effects, and moves the mirror along.
    fn sync_mls(&mut self, fx: &mut Effects) -> Result<()> {
        let values = self.provider.storage().values.read().map_err(CoreError::mls)?;
        let mut changed: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
        for (k, v) in values.iter() {
            if self.mls_mirror.get(k) != Some(v) {
                changed.push((k.clone(), v.clone()));
            }
        }
        let removed: Vec<Vec<u8>> =
            self.mls_mirror.keys().filter(|k| !values.contains_key(*k)).cloned().collect();
        drop(values);
        for (k, v) in changed {
            let rec = MlsRecord { key: k.clone(), value: v.clone() };
            fx.store.push(self.cipher.put(
                self.rng.as_mut(),
                Store::Mls,
                &mls_logical_key(&k),
                &encode(&rec),
            )?);
            self.mls_mirror.insert(k, v);
        }
        for k in removed {
            fx.store.push(self.cipher.delete(Store::Mls, &mls_logical_key(&k)));
            self.mls_mirror.remove(&k);
        }
        Ok(())
    }

    /// Puts openmls's storage back to what was last persisted (after a failed call).
    fn rollback_mls(&mut self) {
        if let Ok(mut values) = self.provider.storage().values.write() {
            *values = self.mls_mirror.clone();
        }
        let provider = &self.provider;
        for c in self.conversations.values_mut() {
            let _ = c.reload(provider);
        }
        for g in self.groups.values_mut() {
            let _ = g.reload(provider);
        }
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

    fn put_conversation(&mut self, id: &ConversationId, fx: &mut Effects) -> Result<()> {
        let rec = match (self.conversations.get(id), self.groups.get(id)) {
            (Some(c), _) => c.record(),
            (None, Some(g)) => g.record(),
            (None, None) => return Ok(()),
        };
        fx.store.push(self.cipher.put(
            self.rng.as_mut(),
            Store::Conversations,
            id.as_str().as_bytes(),
            &encode(&rec),
        )?);
        Ok(())
    }

    /// Stores a message in its conversation's history; returns its sequence number.
    fn store_message(&mut self, m: &ChatMessage, fx: &mut Effects) -> Result<u64> {
        let id = ConversationId::parse(&m.conversation_id)?;
        let Some((_, meta)) = self.channel_meta(&id) else {
            return Err(CoreError::UnknownConversation(m.conversation_id.clone()));
        };
        let seq = meta.next_seq;
        meta.next_seq += 1;
        meta.last_message_at = meta.last_message_at.max(m.sent_at as u64);
        if !m.outgoing {
            meta.unread = meta.unread.saturating_add(1);
        }
        self.put_message(m, seq, fx)?;
        let index = MessageIndexRecord { conversation_id: m.conversation_id.clone(), seq };
        fx.store.push(self.cipher.put(
            self.rng.as_mut(),
            Store::MessageIndex,
            m.id.as_bytes(),
            &encode(&index),
        )?);
        self.put_conversation(&id, fx)?;
        Ok(seq)
    }

    fn put_message(&mut self, m: &ChatMessage, seq: u64, fx: &mut Effects) -> Result<()> {
        let rec = MessageRecord {
            id: m.id.clone(),
            conversation_id: m.conversation_id.clone(),
            sender_account: m.sender.account_id.clone().unwrap_or_default(),
            sender_installation: m.sender.installation_id.clone(),
            content: m.content.clone(),
            content_type: m.content_type.clone(),
            sent_at: m.sent_at as u64,
            received_at: m.received_at as u64,
            outgoing: m.outgoing,
            seq,
        };
        let key = self.cipher.message_key(&m.conversation_id, seq);
        let value = self.cipher.seal(self.rng.as_mut(), Store::Messages, &key, &encode(&rec))?;
        fx.store.push(StoreOp { store: Store::Messages.name(), key, value: Some(value) });
        Ok(())
    }

    /// The key range of a conversation's history before `before_seq` (exclusive), for
    /// the driver to read newest first with a limit.
    pub fn history_range(&self, conversation: &str, before_seq: Option<u64>) -> Result<(Vec<u8>, Vec<u8>)> {
        let id = ConversationId::parse(conversation)?;
        if !self.knows(&id) {
            return Err(CoreError::UnknownConversation(id.as_str().to_owned()));
        }
        let from = self.cipher.message_key(id.as_str(), 0);
        let to = match before_seq {
            Some(0) => return Ok((from.clone(), from)),
            Some(s) => self.cipher.message_key(id.as_str(), s - 1),
            None => self.cipher.message_key(id.as_str(), u64::MAX),
        };
        Ok((from, to))
    }

    /// The `message_index` key of a message id.
    pub fn message_index_key(&self, message_id: &str) -> Vec<u8> {
        self.cipher.key(Store::MessageIndex, message_id.as_bytes())
    }

    /// Opens a `message_index` record: (conversation, sequence).
    pub fn open_message_index(&self, key: &[u8], sealed: &[u8]) -> Result<(String, u64)> {
        let rec: MessageIndexRecord =
            decode_record("message index", &self.cipher.open(Store::MessageIndex, key, sealed)?)?;
        Ok((rec.conversation_id, rec.seq))
    }

    /// Opens `messages` records read from a range.
    pub fn open_messages(&self, records: &[(Vec<u8>, Vec<u8>)]) -> Result<Vec<ChatMessage>> {
        records
            .iter()
            .map(|(k, v)| {
                let rec: MessageRecord = decode_record("message", &self.cipher.open(Store::Messages, k, v)?)?;
                Ok(ChatMessage {
                    id: rec.id,
                    conversation_id: rec.conversation_id,
                    sender: SenderInfo {
                        account_id: (!rec.sender_account.is_empty()).then_some(rec.sender_account),
                        installation_id: rec.sender_installation,
                    },
                    content: rec.content,
                    content_type: rec.content_type,
                    sent_at: rec.sent_at as f64,
                    received_at: rec.received_at as f64,
                    outgoing: rec.outgoing,
                })
            })
            .collect()
    }

    /// Marks a conversation read up to now (local; read receipts come with their issue).
    pub fn mark_read(&mut self, conversation: &str) -> Result<Effects> {
        let id = ConversationId::parse(conversation)?;
        let (_, meta) =
            self.channel_meta(&id).ok_or_else(|| CoreError::UnknownConversation(id.as_str().to_owned()))?;
        meta.unread = 0;
        let mut fx = Effects::default();
        self.put_conversation(&id, &mut fx)?;
        Ok(fx)
    }

    /// The account address.
    pub fn account_id(&self) -> AccountId {
        self.account.id()
    }

    /// This installation's id.
    pub fn installation_id(&self) -> InstallationId {
        self.installation.id()
    }

    /// The topics a directory lookup reads.
    pub fn directory_topics() -> [&'static str; 2] {
        [ACCOUNT_TOPIC, KEYPACKAGE_TOPIC]
    }

    /// Records one directory record read by a lookup. Bad records are errors
    /// the driver may ignore: the directory topics are shared space.
    pub fn ingest_directory(&mut self, topic: &str, payload: &[u8]) -> Result<()> {
        self.directory.ingest(topic, payload, self.provider.crypto())
    }

    /// The lookup of `account` is done: release the messages waiting on it.
    pub fn lookup_complete(&mut self, account: &str) -> Effects {
        let Ok(account) = AccountId::parse(account) else { return Effects::default() };
        let mut fx = Effects::default();
        let (ready, rest): (Vec<_>, Vec<_>) =
            std::mem::take(&mut self.pending).into_iter().partition(|p| p.account == account);
        self.pending = rest;
        for mut p in ready {
            if self.directory.confirms(&p.account, &p.installation) {
                p.message.sender.account_id = Some(p.account.to_hex());
                if let Err(e) = self.put_message(&p.message, p.seq, &mut fx) {
                    fx.events.push(Event::Error { code: e.code().as_str(), message: e.to_string() });
                }
            }
            fx.events.push(Event::Message(p.message));
        }
        fx
    }

    /// Every conversation, in id order.
    pub fn conversations(&self) -> Vec<ConversationInfo> {
        let mut all: Vec<ConversationInfo> = self.conversations.values().map(info).collect();
        all.extend(self.groups.values().map(group::group_info));
        all.sort_by(|a, b| a.id.cmp(&b.id));
        all
    }

    /// (entries, bytes) held in the MLS store: what a restart would have to persist.
    pub fn storage_footprint(&self) -> (usize, usize) {
        self.provider
            .storage()
            .values
            .read()
            .map_or((0, 0), |v| (v.len(), v.iter().map(|(k, x)| k.len() + x.len()).sum()))
    }

    /// The account and installation seeds, so tests can scan storage for them.
    #[cfg(test)]
    pub(crate) fn secret_seeds_for_tests(&self) -> ([u8; 32], [u8; 32]) {
        (*self.account.seed(), *self.installation.seed())
    }

    /// Since when (ms) the driver needs a topic's history after a restart: a
    /// conversation's from ten minutes before its last message (clock skew), everything
    /// for the inbox and for conversations with no message yet.
    pub fn catch_up_since(&self, topic: &str) -> Option<u64> {
        let metas = self.conversations.values().map(|c| (c.id(), &c.meta));
        let metas = metas.chain(self.groups.values().map(|g| (g.id(), &g.meta)));
        metas
            .filter(|(id, _)| id.topic().as_str() == topic)
            .find_map(|(_, m)| (m.last_message_at > 0).then(|| m.last_message_at.saturating_sub(600_000)))
    }

    /// Whether this client holds the conversation.
    pub fn has_conversation(&self, id: &str) -> bool {
        ConversationId::parse(id).is_ok_and(|id| self.knows(&id))
    }

    /// Starts (or returns the existing) 1:1 chat with `account`. The directory
    /// must already hold the peer's bundle and key packages (the driver looks
    /// them up first). Fails with `UnknownAccount` when it does not.
    pub fn start_direct(&mut self, account: &str, now_ms: u64) -> Result<(String, Effects)> {
        let result = self.start_direct_inner(account, now_ms);
        if result.is_err() {
            self.rollback_mls();
        }
        result
    }

    fn start_direct_inner(&mut self, account: &str, now_ms: u64) -> Result<(String, Effects)> {
        let peer = AccountId::parse(account)?;
        if peer == self.account.id() {
            return Err(CoreError::InvalidArgument("cannot start a direct chat with yourself".into()));
        }
        if let Some(c) = self.conversations.values().find(|c| c.peer == peer) {
            return Ok((c.id().as_str().to_owned(), Effects::default()));
        }
        let peer_devices = self
            .directory
            .bundle(&peer)
            .ok_or_else(|| CoreError::UnknownAccount(peer.to_hex()))?
            .devices
            .clone();
        let me = self.installation.id();
        let mut invitees: Vec<InstallationId> = peer_devices.clone();
        invitees.extend(self.bundle.devices.iter().filter(|d| **d != me).cloned());
        let mut key_packages: Vec<KeyPackage> = Vec::new();
        let mut recipients: Vec<InstallationId> = Vec::new();
        for d in invitees {
            if let Some(kp) = self.directory.key_package(&d, self.provider.crypto()) {
                key_packages.push(kp);
                recipients.push(d);
            }
        }
        if !recipients.iter().any(|r| peer_devices.contains(r)) {
            return Err(CoreError::UnknownAccount(format!("{}: no key package found", peer.to_hex())));
        }
        let mut group_id = [0u8; 16];
        self.rng.fill_bytes(&mut group_id);
        let (mut convo, commit, welcome) = DirectConversation::create(
            &self.provider,
            &self.installation,
            &self.credential,
            peer,
            group_id,
            &key_packages,
        )?;
        convo.meta = ConversationMeta { created_at: now_ms, ..ConversationMeta::default() };
        let id = convo.id().clone();
        let mut fx = Effects { subscribe: vec![id.topic().as_str().to_owned()], ..Effects::default() };
        let invite = InboxV2Frame {
            payload: Some(inbox_v2_frame::Payload::GroupV1(GroupV1HeavyInvite { welcome_bytes: welcome })),
        }
        .encode_to_vec();
        for r in &recipients {
            let env =
                EnvelopeV1 { conversation_hint: r.inbox_conversation_id(), salt: 0, payload: invite.clone() };
            self.enqueue(&mut fx, r.inbox_topic().as_str().to_owned(), env.encode_to_vec())?;
        }
        let commit_env = group_envelope(&id, commit);
        self.remember(&fx_digest(id.topic().as_str(), &commit_env), &mut fx)?;
        self.enqueue(&mut fx, id.topic().as_str().to_owned(), commit_env)?;
        fx.events.push(Event::Conversation(info(&convo)));
        self.conversations.insert(id.clone(), convo);
        self.put_conversation(&id, &mut fx)?;
        self.sync_mls(&mut fx)?;
        Ok((id.as_str().to_owned(), fx))
    }

    /// Encrypts and sends `content` to a conversation. The message is stored in
    /// the history and the envelope in the outbox, in the same effects.
    pub fn send(&mut self, conversation: &str, content: &[u8], now_ms: u64) -> Result<(String, Effects)> {
        let result = self.send_inner(conversation, content, now_ms);
        if result.is_err() {
            self.rollback_mls();
        }
        result
    }

    fn send_inner(&mut self, conversation: &str, content: &[u8], now_ms: u64) -> Result<(String, Effects)> {
        let id = ConversationId::parse(conversation)?;
        if self.groups.contains_key(&id) {
            return self.send_group(&id, content, now_ms);
        }
        let sender_id = self.credential.identity_id();
        let convo = self
            .conversations
            .get_mut(&id)
            .ok_or_else(|| CoreError::UnknownConversation(id.as_str().to_owned()))?;
        // Wrap on a copy of the channel: the clock moves only if encryption succeeds.
        let mut channel = convo.channel.clone();
        let reliable = channel.wrap(id.as_str(), &sender_id, content.to_vec());
        let mls_bytes = convo.encrypt(&self.provider, &self.installation, &reliable.encode_to_vec())?;
        convo.channel = channel;
        let env = group_envelope(&id, mls_bytes);
        let topic = id.topic().as_str().to_owned();
        let mut fx = Effects::default();
        self.remember(&fx_digest(&topic, &env), &mut fx)?;
        let message = self.outgoing(&id, &reliable.message_id, content, now_ms);
        self.store_message(&message, &mut fx)?;
        self.enqueue(&mut fx, topic, env)?;
        self.sync_mls(&mut fx)?;
        Ok((reliable.message_id, fx))
    }

    /// The history entry of a message this installation sends.
    fn outgoing(&self, id: &ConversationId, message_id: &str, content: &[u8], now_ms: u64) -> ChatMessage {
        ChatMessage {
            id: message_id.to_owned(),
            conversation_id: id.as_str().to_owned(),
            sender: SenderInfo {
                account_id: Some(self.account.id().to_hex()),
                installation_id: self.installation.id().to_hex(),
            },
            content: content.to_vec(),
            content_type: content_type(content).to_owned(),
            sent_at: now_ms as f64,
            received_at: now_ms as f64,
            outgoing: true,
        }
    }

    /// Handles one message from the network. Never fails: problems become `Error` events.
    pub fn receive(&mut self, content_topic: &str, payload: &[u8], sent_at_ms: u64, now_ms: u64) -> Effects {
        if content_topic == ACCOUNT_TOPIC || content_topic == KEYPACKAGE_TOPIC {
            let _ = self.ingest_directory(content_topic, payload);
            return Effects::default();
        }
        if !content_topic.starts_with(CHAT_TOPIC_PREFIX) {
            return Effects::default();
        }
        let digest = fx_digest(content_topic, payload);
        if self.seen.contains_key(&digest) {
            return Effects::default();
        }
        let routed = self.route(payload, sent_at_ms, now_ms).and_then(|fx| match fx {
            Some(mut fx) => {
                self.sync_mls(&mut fx)?;
                Ok(Some(fx))
            }
            None => Ok(None),
        });
        match routed {
            Ok(Some(mut fx)) => {
                if let Err(e) = self.remember(&digest, &mut fx) {
                    fx.events.push(Event::Error { code: e.code().as_str(), message: e.to_string() });
                }
                fx
            }
            // Not ours (shared inbox space, an unknown hint): drop silently and
            // do not remember it, so a later replay can still be handled.
            Ok(None) => Effects::default(),
            Err(e) => {
                // Nothing of this call is kept: state stays as it was.
                self.rollback_mls();
                let mut fx = Effects::default();
                let _ = self.remember(&digest, &mut fx);
                fx.events.push(Event::Error { code: e.code().as_str(), message: e.to_string() });
                fx
            }
        }
    }

    fn route(&mut self, payload: &[u8], sent_at_ms: u64, now_ms: u64) -> Result<Option<Effects>> {
        // Undecodable bytes on our topics are reported.
        let env: EnvelopeV1 = decode("envelope", payload)?;
        if env.conversation_hint == self.installation.id().inbox_conversation_id() {
            return self.handle_invite(&env.payload, now_ms);
        }
        let Ok(id) = ConversationId::parse(&env.conversation_hint) else { return Ok(None) };
        if self.groups.contains_key(&id) {
            return self.handle_group_v2(&id, &env.payload, sent_at_ms, now_ms).map(Some);
        }
        if !self.conversations.contains_key(&id) {
            return Ok(None);
        }
        self.handle_group_message(&id, &env.payload, sent_at_ms, now_ms).map(Some)
    }

    fn handle_invite(&mut self, frame: &[u8], now_ms: u64) -> Result<Option<Effects>> {
        // The inbox address is shared broadcast space: frames that do not decode are ignored (§2.6).
        let Ok(frame) = InboxV2Frame::decode(frame) else { return Ok(None) };
        let invite = match frame.payload {
            Some(inbox_v2_frame::Payload::GroupV1(invite)) => invite,
            Some(inbox_v2_frame::Payload::GroupV2(welcome)) => return self.join_group(&welcome, now_ms),
            None => return Ok(None),
        };
        let mut convo =
            match DirectConversation::join(&self.provider, &invite.welcome_bytes, &self.account.id()) {
                Ok(c) => c,
                // A Welcome to a group we already hold: a replay of our inbox's history.
                Err(CoreError::Mls(why)) if why.contains("GroupAlreadyExists") => {
                    return Ok(Some(Effects::default()))
                }
                Err(e) => return Err(e),
            };
        let id = convo.id().clone();
        if self.conversations.contains_key(&id) {
            return Ok(Some(Effects::default()));
        }
        convo.meta.created_at = now_ms;
        let mut fx = Effects {
            subscribe: vec![id.topic().as_str().to_owned()],
            events: vec![Event::Conversation(info(&convo))],
            ..Effects::default()
        };
        self.conversations.insert(id.clone(), convo);
        self.put_conversation(&id, &mut fx)?;
        Ok(Some(fx))
    }

    fn handle_group_message(
        &mut self,
        id: &ConversationId,
        payload: &[u8],
        sent_at_ms: u64,
        now_ms: u64,
    ) -> Result<Effects> {
        let enc: EncryptedPayload = decode("encrypted payload", payload)?;
        let Some(encrypted_payload::Encryption::Plaintext(p)) = enc.encryption else {
            return Err(CoreError::decode("encrypted payload", "Gen-2 groups carry the plaintext arm"));
        };
        let convo = self
            .conversations
            .get_mut(id)
            .ok_or_else(|| CoreError::UnknownConversation(id.as_str().to_owned()))?;
        let (sender, plaintext) = match convo.process(&self.provider, &p.payload)? {
            Inbound::Application { sender, plaintext } => (sender, plaintext),
            Inbound::Commit => {
                let mut fx = Effects::default();
                self.put_conversation(id, &mut fx)?;
                return Ok(fx);
            }
            Inbound::Ignored | Inbound::Replay => return Ok(Effects::default()),
        };
        let reliable: ReliablePayload = decode("reliable payload", &plaintext)?;
        self.deliver_chat(id, &sender, reliable, sent_at_ms, now_ms)
    }

    /// Stores and reports one chat payload of a direct or group conversation from an
    /// authenticated member; its account shows once the directory confirms it.
    fn deliver_chat(
        &mut self,
        id: &ConversationId,
        sender: &DelegateCredential,
        reliable: ReliablePayload,
        sent_at_ms: u64,
        now_ms: u64,
    ) -> Result<Effects> {
        let own = self.account.id();
        if reliable.channel_id != id.as_str() {
            return Err(CoreError::Verify("payload names another conversation"));
        }
        let mut fx = Effects::default();
        let Some((channel, _)) = self.channel_meta(id) else {
            return Err(CoreError::UnknownConversation(id.as_str().to_owned()));
        };
        if channel.has_seen(&reliable.message_id) {
            return Ok(fx);
        }
        let report = channel.receive(&reliable);
        let by = SenderInfo { account_id: None, installation_id: sender.installation.to_hex() };
        for m in report.acked {
            fx.events.push(Event::Ack {
                conversation_id: id.as_str().to_owned(),
                message_id: m.as_str().to_owned(),
                by: by.clone(),
            });
        }
        for (m, hint) in report.missing {
            fx.events.push(Event::Missing {
                conversation_id: id.as_str().to_owned(),
                message_id: m.as_str().to_owned(),
                sender_id: (!hint.is_empty()).then_some(hint),
            });
        }
        let content_type = content_type(&reliable.content);
        let mut message = ChatMessage {
            id: MessageId(reliable.message_id).as_str().to_owned(),
            conversation_id: id.as_str().to_owned(),
            sender: by,
            content: reliable.content,
            content_type: content_type.to_owned(),
            sent_at: sent_at_ms as f64,
            received_at: now_ms as f64,
            outgoing: sender.account.as_ref() == Some(&own),
        };
        let confirmed =
            sender.account.as_ref().is_some_and(|a| self.directory.confirms(a, &sender.installation));
        if confirmed {
            message.sender.account_id = sender.account.as_ref().map(AccountId::to_hex);
        }
        let seq = self.store_message(&message, &mut fx)?;
        match sender.account.clone() {
            Some(account) if !confirmed => {
                if !self.pending.iter().any(|p| p.account == account) {
                    fx.lookups.push(account.to_hex());
                }
                self.pending.push(Pending {
                    account,
                    message,
                    installation: sender.installation.clone(),
                    seq,
                });
            }
            _ => fx.events.push(Event::Message(message)),
        }
        self.put_conversation(id, &mut fx)?;
        Ok(fx)
    }

    fn remember(&mut self, digest: &[u8; 32], fx: &mut Effects) -> Result<()> {
        if self.seen.contains_key(digest) {
            return Ok(());
        }
        let order = self.seen_counter;
        self.seen_counter += 1;
        self.seen.insert(*digest, order);
        self.seen_order.push_back(*digest);
        let rec = SeenRecord { digest: digest.to_vec(), order };
        fx.store.push(self.cipher.put(self.rng.as_mut(), Store::Seen, digest, &encode(&rec))?);
        while self.seen_order.len() > SEEN_CAP {
            if let Some(old) = self.seen_order.pop_front() {
                self.seen.remove(&old);
                fx.store.push(self.cipher.delete(Store::Seen, &old));
            }
        }
        Ok(())
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

fn info(c: &DirectConversation) -> ConversationInfo {
    ConversationInfo {
        id: c.id().as_str().to_owned(),
        kind: "direct",
        peer: Some(c.peer.to_hex()),
        name: None,
        description: None,
        last_message_at: (c.meta.last_message_at > 0).then_some(c.meta.last_message_at as f64),
        unread: c.meta.unread,
    }
}

/// libchat sends raw UTF-8 with no content-type framing: UTF-8 reads as text.
pub(crate) fn content_type(content: &[u8]) -> &'static str {
    if std::str::from_utf8(content).is_ok() {
        "text/plain"
    } else {
        "application/octet-stream"
    }
}
