//! The client state machine: one installation of one account (DESIGN.md §1).
//!
//! Every entry point takes its inputs (a command, inbound bytes, the time) and
//! returns [`Effects`]; nothing here awaits, reads a clock or does I/O.
//! Randomness comes from the injected RNG, except what openmls draws from its
//! own provider. Routing follows PROTOCOL.md §2.5: own inbox hint → invite,
//! known conversation hint → that conversation, anything else is dropped.
//! Bad input from the network never changes state: it is dropped, with an
//! `Error` event when it was addressed to us.

use std::collections::{BTreeMap, HashSet, VecDeque};

use openmls::prelude::KeyPackage;
use openmls_libcrux_crypto::Provider;
use openmls_traits::OpenMlsProvider;
use prost::Message as _;
use rand_core::CryptoRngCore;

use super::account::{AccountKey, DelegateCredential, DeviceBundle, InstallationKey};
use super::address::{blake2b, AccountId, ConversationId, InstallationId, MessageId, CHAT_TOPIC_PREFIX};
use super::conversation::{mls, DirectConversation, Inbound};
use super::directory::{self, Directory, ACCOUNT_TOPIC, KEYPACKAGE_TOPIC};
use super::effects::{ChatMessage, ConversationInfo, Effects, Event, Outbound, SenderInfo};
use super::error::{CoreError, Result};
use super::wire::{
    decode, encrypted_payload, inbox_v2_frame, EncryptedPayload, EnvelopeV1, GroupV1HeavyInvite,
    InboxV2Frame, ReliablePayload,
};

/// How many inbound envelope digests are remembered for de-duplication.
const SEEN_CAP: usize = 8192;

/// A message held until the directory confirms (or not) its sender's account.
#[derive(Debug)]
struct Pending {
    account: AccountId,
    message: ChatMessage,
    installation: InstallationId,
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
    seen: HashSet<[u8; 32]>,
    seen_order: VecDeque<[u8; 32]>,
    pending: Vec<Pending>,
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
    /// A new account with its first installation. The effects publish the
    /// device bundle and key package to the directory and subscribe the inbox.
    pub fn create(mut rng: Box<dyn CryptoRngCore>, now_ms: u64) -> Result<(Self, Effects)> {
        let account = AccountKey::generate(rng.as_mut());
        let installation = InstallationKey::generate(rng.as_mut());
        Self::from_keys(rng, account, installation, now_ms)
    }

    /// A client from existing keys (tests; the storage issue restores this way).
    pub fn from_keys(
        rng: Box<dyn CryptoRngCore>,
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
        let mut directory = Directory::default();
        directory.accept_bundle(bundle.clone())?;
        let client = Client {
            rng,
            provider,
            account,
            installation,
            credential,
            bundle,
            key_package,
            directory,
            conversations: BTreeMap::new(),
            seen: HashSet::new(),
            seen_order: VecDeque::new(),
            pending: Vec::new(),
        };
        let fx = client.announce(now_ms)?;
        Ok((client, fx))
    }

    /// Publishes the device bundle and key package again and subscribes the inbox.
    pub fn announce(&self, now_ms: u64) -> Result<Effects> {
        let kp = directory::key_package_submission(&self.installation, now_ms, &self.key_package)?;
        Ok(Effects {
            subscribe: vec![self.installation.id().inbox_topic().as_str().to_owned()],
            publish: vec![
                Outbound {
                    content_topic: ACCOUNT_TOPIC.into(),
                    payload: directory::account_submission(&self.bundle),
                },
                Outbound { content_topic: KEYPACKAGE_TOPIC.into(), payload: kp },
            ],
            ..Effects::default()
        })
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
            }
            fx.events.push(Event::Message(p.message));
        }
        fx
    }

    /// Every conversation, in id order.
    pub fn conversations(&self) -> Vec<ConversationInfo> {
        self.conversations.values().map(info).collect()
    }

    /// (entries, bytes) held in the MLS store: what a restart would have to persist.
    pub fn storage_footprint(&self) -> (usize, usize) {
        self.provider
            .storage()
            .values
            .read()
            .map_or((0, 0), |v| (v.len(), v.iter().map(|(k, x)| k.len() + x.len()).sum()))
    }

    /// Whether this client holds the conversation.
    pub fn has_conversation(&self, id: &str) -> bool {
        ConversationId::parse(id).is_ok_and(|id| self.conversations.contains_key(&id))
    }

    /// Starts (or returns the existing) 1:1 chat with `account`. The directory
    /// must already hold the peer's bundle and key packages (the driver looks
    /// them up first). Fails with `UnknownAccount` when it does not.
    pub fn start_direct(&mut self, account: &str, _now_ms: u64) -> Result<(String, Effects)> {
        let peer = AccountId::parse(account)?;
        if peer == self.account.id() {
            return Err(CoreError::InvalidArgument("cannot start a direct chat with yourself".into()));
        }
        if let Some(c) = self.conversations.values().find(|c| c.peer == peer) {
            return Ok((c.id().as_str().to_owned(), Effects::default()));
        }
        let peer_bundle =
            self.directory.bundle(&peer).ok_or_else(|| CoreError::UnknownAccount(peer.to_hex()))?;
        let me = self.installation.id();
        let mut invitees: Vec<InstallationId> = peer_bundle.devices.clone();
        invitees.extend(self.bundle.devices.iter().filter(|d| **d != me).cloned());
        let mut key_packages: Vec<KeyPackage> = Vec::new();
        let mut recipients: Vec<InstallationId> = Vec::new();
        for d in invitees {
            if let Some(kp) = self.directory.key_package(&d) {
                key_packages.push(kp.clone());
                recipients.push(d);
            }
        }
        if !recipients.iter().any(|r| peer_bundle.devices.contains(r)) {
            return Err(CoreError::UnknownAccount(format!("{}: no key package found", peer.to_hex())));
        }
        let mut group_id = [0u8; 16];
        self.rng.fill_bytes(&mut group_id);
        let (convo, commit, welcome) = DirectConversation::create(
            &self.provider,
            &self.installation,
            &self.credential,
            peer,
            group_id,
            &key_packages,
        )?;
        let id = convo.id().clone();
        let mut fx = Effects { subscribe: vec![id.topic().as_str().to_owned()], ..Effects::default() };
        let invite = InboxV2Frame {
            payload: Some(inbox_v2_frame::Payload::GroupV1(GroupV1HeavyInvite { welcome_bytes: welcome })),
        }
        .encode_to_vec();
        for r in &recipients {
            let env =
                EnvelopeV1 { conversation_hint: r.inbox_conversation_id(), salt: 0, payload: invite.clone() };
            fx.publish.push(Outbound {
                content_topic: r.inbox_topic().as_str().to_owned(),
                payload: env.encode_to_vec(),
            });
        }
        let commit_env = group_envelope(&id, commit);
        self.remember(&fx_digest(id.topic().as_str(), &commit_env));
        fx.publish.push(Outbound { content_topic: id.topic().as_str().to_owned(), payload: commit_env });
        fx.events.push(Event::Conversation(info(&convo)));
        self.conversations.insert(id.clone(), convo);
        Ok((id.as_str().to_owned(), fx))
    }

    /// Encrypts and sends `content` to a conversation.
    pub fn send(&mut self, conversation: &str, content: &[u8], _now_ms: u64) -> Result<(String, Effects)> {
        let id = ConversationId::parse(conversation)?;
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
        self.remember(&fx_digest(&topic, &env));
        let fx =
            Effects { publish: vec![Outbound { content_topic: topic, payload: env }], ..Effects::default() };
        Ok((reliable.message_id, fx))
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
        if self.seen.contains(&digest) {
            return Effects::default();
        }
        match self.route(payload, sent_at_ms, now_ms) {
            Ok(Some(fx)) => {
                self.remember(&digest);
                fx
            }
            // Not ours (shared inbox space, an unknown hint): drop silently and
            // do not remember it, so a later replay can still be handled.
            Ok(None) => Effects::default(),
            Err(e) => {
                self.remember(&digest);
                Effects {
                    events: vec![Event::Error { code: e.code().as_str(), message: e.to_string() }],
                    ..Effects::default()
                }
            }
        }
    }

    fn route(&mut self, payload: &[u8], sent_at_ms: u64, now_ms: u64) -> Result<Option<Effects>> {
        // Undecodable bytes on our topics are reported.
        let env: EnvelopeV1 = decode("envelope", payload)?;
        if env.conversation_hint == self.installation.id().inbox_conversation_id() {
            return self.handle_invite(&env.payload);
        }
        let Ok(id) = ConversationId::parse(&env.conversation_hint) else { return Ok(None) };
        if !self.conversations.contains_key(&id) {
            return Ok(None);
        }
        self.handle_group_message(&id, &env.payload, sent_at_ms, now_ms).map(Some)
    }

    fn handle_invite(&mut self, frame: &[u8]) -> Result<Option<Effects>> {
        // The inbox address is shared broadcast space: frames that do not decode are ignored (§2.6).
        let Ok(frame) = InboxV2Frame::decode(frame) else { return Ok(None) };
        let Some(inbox_v2_frame::Payload::GroupV1(invite)) = frame.payload else { return Ok(None) };
        let convo = DirectConversation::join(&self.provider, &invite.welcome_bytes, &self.account.id())?;
        let id = convo.id().clone();
        if self.conversations.contains_key(&id) {
            return Ok(Some(Effects::default()));
        }
        let fx = Effects {
            subscribe: vec![id.topic().as_str().to_owned()],
            events: vec![Event::Conversation(info(&convo))],
            ..Effects::default()
        };
        self.conversations.insert(id, convo);
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
        let own = self.account.id();
        let convo = self
            .conversations
            .get_mut(id)
            .ok_or_else(|| CoreError::UnknownConversation(id.as_str().to_owned()))?;
        let (sender, plaintext) = match convo.process(&self.provider, &p.payload)? {
            Inbound::Application { sender, plaintext } => (sender, plaintext),
            Inbound::Commit | Inbound::Ignored => return Ok(Effects::default()),
        };
        let reliable: ReliablePayload = decode("reliable payload", &plaintext)?;
        if reliable.channel_id != id.as_str() {
            return Err(CoreError::Verify("payload names another conversation"));
        }
        let mut fx = Effects::default();
        if convo.channel.has_seen(&reliable.message_id) {
            return Ok(fx);
        }
        let report = convo.channel.receive(&reliable);
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
        let content_type = if std::str::from_utf8(&reliable.content).is_ok() {
            "text/plain"
        } else {
            "application/octet-stream"
        };
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
        match sender.account {
            Some(account) if self.directory.confirms(&account, &sender.installation) => {
                message.sender.account_id = Some(account.to_hex());
                fx.events.push(Event::Message(message));
            }
            Some(account) => {
                if !self.pending.iter().any(|p| p.account == account) {
                    fx.lookups.push(account.to_hex());
                }
                self.pending.push(Pending { account, message, installation: sender.installation });
            }
            None => fx.events.push(Event::Message(message)),
        }
        Ok(fx)
    }

    fn remember(&mut self, digest: &[u8; 32]) {
        if self.seen.insert(*digest) {
            self.seen_order.push_back(*digest);
            if self.seen_order.len() > SEEN_CAP {
                if let Some(old) = self.seen_order.pop_front() {
                    self.seen.remove(&old);
                }
            }
        }
    }
}

fn group_envelope(id: &ConversationId, mls_message: Vec<u8>) -> Vec<u8> {
    EnvelopeV1 {
        conversation_hint: id.as_str().to_owned(),
        salt: 0,
        payload: EncryptedPayload::plaintext(mls_message).encode_to_vec(),
    }
    .encode_to_vec()
}

fn fx_digest(topic: &str, payload: &[u8]) -> [u8; 32] {
    blake2b::<32>(&[topic.as_bytes(), b"|", payload])
}

fn info(c: &DirectConversation) -> ConversationInfo {
    ConversationInfo {
        id: c.id().as_str().to_owned(),
        kind: "direct",
        peer: Some(c.peer.to_hex()),
        last_message_at: None,
        unread: 0,
    }
}
