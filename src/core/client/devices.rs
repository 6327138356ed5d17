//! An account as a set of installations (issue 13): link codes, the account's signed
//! device list as this installation knows it, and removal. A linked installation is added
//! to every direct chat of the account by our own MLS commit (peers accept a direct-chat
//! commit only when it changes the committer's own account, `DirectConversation`); an
//! installation that is removed learns it from the removing commit or from the list,
//! and stops (`INSTALLATION_REMOVED`).

use super::*;
use crate::core::effects::{HistoryRange, InstallationInfo};
use crate::core::link::{
    decode_request, Archive, Grant, Kind, LinkSecret, ARCHIVE_FRAME_BYTES, ARCHIVE_MAX_FRAMES, LINK_TTL_MS,
};

/// Where a linked installation's own history of a chat it was added to starts: the
/// archive from the installation that linked it goes in below, in its order.
const ARCHIVE_SEQ: u64 = 1 << 20;
/// What an archived message counts against the waiting bound: every field, and a fixed
/// overhead, so that empty messages cannot fill memory either.
fn archived_size(m: &ChatMessage) -> usize {
    m.content
        .len()
        .saturating_add(m.id.len())
        .saturating_add(m.conversation_id.len())
        .saturating_add(m.content_type.len())
        .saturating_add(m.sender.installation_id.len())
        .saturating_add(m.sender.account_id.as_ref().map_or(0, String::len))
        .saturating_add(128)
}

/// Most bytes of archived messages kept for chats not joined yet.
const ARCHIVE_WAITING_BYTES: usize = 4 << 20;

/// The prefix of a recovery secret (then the account key's seed in hex).
pub const RECOVERY_PREFIX: &str = "logos_recovery_";

/// Most link codes open at once (the oldest goes first).
const MAX_LINKS: usize = 4;

/// A code this installation handed out.
#[derive(Debug)]
pub(super) struct OpenLink {
    secret: LinkSecret,
    topic: String,
    expires: u64,
    /// The installation whose request used the code (a code serves one).
    claimed: Option<InstallationId>,
    /// Its key package came and it was added: later frames change nothing (the code
    /// stays until it expires, so that another device trying it is told at once).
    ready: bool,
}

/// A new device waiting for an installation of the account to answer its link code.
#[derive(Debug)]
pub struct Linking {
    // Both fields zeroize on drop.
    secret: LinkSecret,
    installation: InstallationKey,
}

impl Linking {
    /// Parses the code and draws this device's installation key; the effects subscribe
    /// to the link's topic and publish the request. Feed what that topic brings to
    /// [`Client::from_link`].
    pub fn start<R: CryptoRngCore + ?Sized>(rng: &mut R, code: &str) -> Result<(Self, Effects)> {
        let secret = LinkSecret::parse(code)?;
        let installation = InstallationKey::generate(rng);
        let request = secret.seal(rng, Kind::Request, installation.id().as_bytes())?;
        let topic = secret.topic();
        let fx = Effects {
            subscribe: vec![topic.clone()],
            publish: vec![Outbound { content_topic: topic, payload: request, outbox_id: 0 }],
            ..Effects::default()
        };
        Ok((Linking { secret, installation }, fx))
    }

    /// The link's content topic.
    pub fn topic(&self) -> String {
        self.secret.topic()
    }

    /// The request again (the transport may have lost it).
    pub fn request<R: CryptoRngCore + ?Sized>(&self, rng: &mut R) -> Result<Vec<u8>> {
        self.secret.seal(rng, Kind::Request, self.installation.id().as_bytes())
    }
}

impl Linking {
    /// The grant, if `frame` (read on the link's topic) is it; `Ok(None)` for the other
    /// frames there (our own request coming back, or anything that does not open);
    /// `INVALID_LINK` when the installation
    /// refused the code (used by another device, or expired).
    pub fn open_grant(&self, frame: &[u8]) -> Result<Option<Grant>> {
        // Anyone may publish on any topic: what does not open is not ours.
        let Ok((kind, plain)) = self.secret.open(frame) else { return Ok(None) };
        match kind {
            Kind::Grant => Grant::decode(&plain).map(Some),
            Kind::Refused if plain.as_slice() == self.installation.id().as_bytes() => {
                Err(CoreError::InvalidLink("the code was used by another device, or expired"))
            }
            _ => Ok(None),
        }
    }
}

impl Client {
    /// A new installation of the account a link's grant names; the effects persist it,
    /// announce it and tell the granting installation it is ready (its key package).
    pub fn from_link(
        rng: Box<dyn CryptoRngCore>,
        store_key: &[u8; 32],
        linking: Linking,
        grant: &Grant,
        now_ms: u64,
    ) -> Result<(Self, Effects)> {
        let account = AccountKey::from_seed(&grant.account_seed);
        let bundle = DeviceBundle::verify(&account.id(), &grant.bundle_payload, &grant.bundle_signature)
            .map_err(|_| CoreError::InvalidLink("the granted device list does not verify"))?;
        if !bundle.devices.contains(&linking.installation.id()) {
            return Err(CoreError::InvalidLink("the granted device list does not list this device"));
        }
        let Linking { secret, installation } = linking;
        let (mut client, mut fx) = Self::with_bundle(rng, store_key, account, installation, bundle, now_ms)?;
        // The recent history comes on the link's topic once we are in the chats.
        fx.subscribe.push(secret.topic());
        // Only while the code is good: after that, the topic is anyone's who saw the code.
        client.link_in = Some((secret.clone(), now_ms.saturating_add(LINK_TTL_MS)));
        let kp = client.key_package_bytes()?;
        let ready = secret.seal(client.rng.as_mut(), Kind::Ready, &kp)?;
        // Through the outbox (a public key package, sealed): published again until the
        // transport takes it.
        client.enqueue(&mut fx, secret.topic(), ready)?;
        Ok((client, fx))
    }

    /// The secret that restores this account on a new device when every device is lost
    /// (`Client::recover`): the account key itself, so it must be kept like one.
    pub fn export_recovery(&self) -> Result<zeroize::Zeroizing<String>> {
        self.check_active()?;
        let mut s = zeroize::Zeroizing::new(String::from(RECOVERY_PREFIX));
        s.push_str(&zeroize::Zeroizing::new(hex::encode(self.account.seed().as_slice())));
        Ok(s)
    }

    /// A new installation of the account a recovery secret holds, on a device that has
    /// none of its installations. `records` are the account-topic records the driver read
    /// (`directory_topics()[0]`): the newest signed list of the account is extended with
    /// this installation at a higher lamport, so the lost installations can then be
    /// revoked with `remove_installation`. A malformed secret is `INVALID_ARGUMENT`.
    pub fn recover(
        mut rng: Box<dyn CryptoRngCore>,
        store_key: &[u8; 32],
        secret: &str,
        records: &[Vec<u8>],
        now_ms: u64,
    ) -> Result<(Self, Effects)> {
        let bad = || CoreError::InvalidArgument("not a recovery secret".into());
        let hex_seed = secret.trim().strip_prefix(RECOVERY_PREFIX).ok_or_else(bad)?;
        let seed = zeroize::Zeroizing::new(
            <[u8; 32]>::try_from(hex::decode(hex_seed).map_err(|_| bad())?.as_slice()).map_err(|_| bad())?,
        );
        let account = AccountKey::from_seed(&seed);
        let installation = InstallationKey::generate(rng.as_mut());
        let mut known = Directory::default();
        let provider = Provider::new().map_err(CoreError::mls)?;
        for r in records {
            // The account topic is shared space: what does not verify is skipped.
            let _ = known.ingest(ACCOUNT_TOPIC, r, provider.crypto());
        }
        let (lamport, mut devices) = match known.bundle(&account.id()) {
            Some(b) => (b.lamport.saturating_add(1), b.devices.clone()),
            None => (0, Vec::new()),
        };
        devices.push(installation.id());
        let bundle = account.sign_bundle(lamport, devices)?;
        Self::with_bundle(rng, store_key, account, installation, bundle, now_ms)
    }

    fn key_package_bytes(&self) -> Result<Vec<u8>> {
        self.key_package.tls_serialize_detached().map_err(CoreError::mls)
    }

    /// Fails once another installation has removed this one.
    pub(super) fn check_active(&self) -> Result<()> {
        if self.removed {
            return Err(CoreError::InstallationRemoved);
        }
        Ok(())
    }

    /// The account's installations as this one knows them.
    pub fn installations(&self) -> Vec<InstallationInfo> {
        let me = self.installation.id();
        self.bundle
            .devices
            .iter()
            .map(|d| InstallationInfo {
                installation_id: d.to_hex(),
                current: *d == me,
                added_at: self.added_at.get(d).copied().unwrap_or_default() as f64,
            })
            .collect()
    }

    /// A one-time code a new device passes to `Linking::start` (valid 10 minutes). The
    /// effects follow the link's topic.
    pub fn create_link(&mut self, now_ms: u64) -> Result<(String, Effects)> {
        self.check_active()?;
        self.links.retain(|l| l.expires > now_ms);
        if self.links.len() >= MAX_LINKS {
            self.links.remove(0);
        }
        let secret = LinkSecret::generate(self.rng.as_mut());
        let code = secret.code();
        let topic = secret.topic();
        let fx = Effects { subscribe: vec![topic.clone()], ..Effects::default() };
        self.links.push(OpenLink {
            secret,
            topic,
            expires: now_ms.saturating_add(LINK_TTL_MS),
            claimed: None,
            ready: false,
        });
        Ok((code, fx))
    }

    /// Whether a topic is one of our open links'.
    pub(super) fn link_topic(&self, topic: &str) -> bool {
        self.links.iter().any(|l| l.topic == topic)
    }

    /// A frame on an open link's topic.
    pub(super) fn handle_link(&mut self, topic: &str, frame: &[u8], now_ms: u64) -> Result<Effects> {
        let i =
            self.links.iter().position(|l| l.topic == topic).ok_or(CoreError::InvalidLink("no such link"))?;
        let link = self.links.get(i).ok_or(CoreError::InvalidLink("no such link"))?;
        let (kind, plain) = link.secret.open(frame)?;
        if link.expires <= now_ms {
            let refusal = match kind {
                Kind::Request => Some(self.refuse_link(i, &decode_request(&plain)?)?),
                _ => None,
            };
            self.links.remove(i);
            let e = CoreError::InvalidLink("the code expired");
            let mut fx = Effects::default();
            fx.publish.extend(refusal);
            fx.events.push(Event::Error { code: e.code().as_str(), message: e.to_string() });
            return Ok(fx);
        }
        match kind {
            Kind::Grant | Kind::Refused | Kind::History => Ok(Effects::default()), // our own frames coming back
            Kind::Request => self.grant(i, decode_request(&plain)?, now_ms),
            Kind::Ready if link.ready => Ok(Effects::default()),
            Kind::Ready => {
                let claimed =
                    link.claimed.clone().ok_or(CoreError::InvalidLink("ready before any request"))?;
                let kp = directory::parse_key_package(&plain, self.provider.crypto())?;
                let leaf = kp.leaf_node();
                let cred = mls::member_credential(leaf.credential(), leaf.signature_key().as_slice())?;
                if cred.installation != claimed || cred.account.as_ref() != Some(&self.account.id()) {
                    return Err(CoreError::InvalidLink("a key package of another installation"));
                }
                self.directory.accept_key_package(&claimed, now_ms, kp.clone());
                let mut fx = Effects::default();
                self.add_own_installation(&claimed, &kp, now_ms, &mut fx)?;
                self.add_own_installation_to_groups(&kp, now_ms, &mut fx);
                if let Some(l) = self.links.get_mut(i) {
                    l.ready = true;
                }
                // The new installation gets the recent history of every chat it was added to.
                let mut ranges = Vec::new();
                let groups = self.groups.iter().filter(|(_, g)| !g.left).map(|(id, _)| id);
                for id in self.conversations.keys().chain(groups) {
                    let (from, to) = self.history_range(id.as_str(), None)?;
                    ranges.push(HistoryRange { conversation_id: id.as_str().to_owned(), from, to });
                }
                fx.events.push(Event::HistoryWanted { link: topic.to_owned(), ranges });
                Ok(fx)
            }
        }
    }

    /// Answers a request: the new installation joins the account's list, and gets the
    /// account key and the list. A repeated request from the same device is answered
    /// again (the grant may have been lost); one from another device is refused.
    fn grant(&mut self, i: usize, new: InstallationId, now_ms: u64) -> Result<Effects> {
        let link = self.links.get_mut(i).ok_or(CoreError::InvalidLink("no such link"))?;
        match &link.claimed {
            Some(c) if *c != new => {
                // Told, so that the other device fails at once instead of waiting.
                let e = CoreError::InvalidLink("the code was used already");
                let mut fx = Effects::default();
                fx.publish.push(self.refuse_link(i, &new)?);
                fx.events.push(Event::Error { code: e.code().as_str(), message: e.to_string() });
                return Ok(fx);
            }
            _ => link.claimed = Some(new.clone()),
        }
        let topic = link.topic.clone();
        let mut fx = Effects::default();
        if !self.bundle.devices.contains(&new) {
            let mut devices = self.bundle.devices.clone();
            devices.push(new);
            let bundle = self.account.sign_bundle(self.bundle.lamport.saturating_add(1), devices)?;
            self.adopt_bundle(bundle, now_ms, &mut fx)?;
            self.enqueue(&mut fx, ACCOUNT_TOPIC.into(), directory::account_submission(&self.bundle))?;
        }
        let grant = Grant {
            account_seed: self.account.seed(),
            bundle_payload: self.bundle.payload.clone(),
            bundle_signature: self.bundle.signature.to_vec(),
        };
        let link = self.links.get(i).ok_or(CoreError::InvalidLink("no such link"))?;
        let sealed = link.secret.seal(self.rng.as_mut(), Kind::Grant, &grant.encode())?;
        // Not through the outbox: the grant holds the account key, which is never stored
        // outside the sealed account record.
        fx.publish.push(Outbound { content_topic: topic, payload: sealed, outbox_id: 0 });
        Ok(fx)
    }

    /// Sends the new installation of a link the history rows the driver read
    /// (`Event::HistoryWanted`): sealed under the link, each chat's newest messages in
    /// one frame of at most 96 KiB, at most 32 frames.
    pub fn send_history(&mut self, link: &str, rows: &[(Vec<u8>, Vec<u8>)]) -> Result<Effects> {
        let i = self
            .links
            .iter()
            .position(|l| l.topic == link && l.ready)
            .ok_or(CoreError::InvalidLink("no linked installation waits for history"))?;
        let mut by_chat: BTreeMap<String, Vec<MessageRecord>> = BTreeMap::new();
        for row in rows {
            // A row that does not open (another profile's, a damaged one) is left out.
            let Ok(mut m) = self.open_messages(std::slice::from_ref(row)) else { continue };
            let Some(m) = m.pop() else { continue };
            let rec = MessageRecord { seq: 0, outgoing: false, ..super::reliability::message_record(&m, 0) };
            by_chat.entry(m.conversation_id).or_default().push(rec);
        }
        let mut frames: Vec<Archive> = Vec::new();
        for (_, mut msgs) in by_chat {
            // The newest that fit one frame, oldest first.
            let mut kept = Vec::new();
            let mut bytes = 0usize;
            while let Some(m) = msgs.pop() {
                let size = m.content.len().saturating_add(256);
                if bytes.saturating_add(size) > ARCHIVE_FRAME_BYTES {
                    break;
                }
                bytes = bytes.saturating_add(size);
                kept.push(m);
            }
            kept.reverse();
            let fits = frames.last().is_some_and(|f| {
                f.messages
                    .iter()
                    .map(|m| m.content.len().saturating_add(256))
                    .sum::<usize>()
                    .saturating_add(bytes)
                    <= ARCHIVE_FRAME_BYTES
            });
            match frames.last_mut() {
                Some(f) if fits => f.messages.extend(kept),
                _ => frames.push(Archive { messages: kept }),
            }
        }
        let link = self.links.get(i).ok_or(CoreError::InvalidLink("no such link"))?;
        let (secret, topic) = (link.secret.clone(), link.topic.clone());
        let mut fx = Effects::default();
        for f in frames.into_iter().filter(|f| !f.messages.is_empty()).take(ARCHIVE_MAX_FRAMES) {
            let plain = zeroize::Zeroizing::new(f.encode_to_vec());
            let payload = secret.seal(self.rng.as_mut(), Kind::History, &plain)?;
            fx.publish.push(Outbound { content_topic: topic.clone(), payload, outbox_id: 0 });
        }
        Ok(fx)
    }

    /// Whether a topic is the link this installation came from.
    pub(super) fn link_in_topic(&self, topic: &str) -> bool {
        self.link_in.as_ref().is_some_and(|(l, _)| l.topic() == topic)
    }

    /// A frame on the link we came from: recent history from the installation that
    /// linked us (sealed under the code, so from our own account). Each message goes
    /// into the history before what we received ourselves; those of chats we have not
    /// joined yet wait for the join (bounded).
    pub(super) fn handle_link_in(&mut self, frame: &[u8], now_ms: u64) -> Result<Effects> {
        let Some((secret, until)) = self.link_in.clone() else { return Ok(Effects::default()) };
        if now_ms >= until {
            self.link_in = None;
            self.archive_waiting.clear();
            self.archive_waiting_bytes = 0;
            return Ok(Effects::default());
        }
        let Ok((Kind::History, plain)) = secret.open(frame) else { return Ok(Effects::default()) };
        let archive =
            Archive::decode(plain.as_slice()).map_err(|e| CoreError::decode("history archive", e))?;
        let own = self.account.id().to_hex();
        let mut fx = Effects::default();
        let mut by_chat: BTreeMap<ConversationId, Vec<ChatMessage>> = BTreeMap::new();
        for rec in archive.messages {
            let Ok(id) = ConversationId::parse(&rec.conversation_id) else { continue };
            let mut m = super::reliability::chat_message(rec);
            m.outgoing = m.sender.account_id.as_deref() == Some(own.as_str());
            by_chat.entry(id).or_default().push(m);
        }
        for (id, msgs) in by_chat {
            if self.knows(&id) {
                self.store_archive(&id, msgs, &mut fx)?;
            } else {
                for m in msgs {
                    self.archive_waiting_bytes = self.archive_waiting_bytes.saturating_add(archived_size(&m));
                    self.archive_waiting.push(m);
                }
                while self.archive_waiting_bytes > ARCHIVE_WAITING_BYTES && !self.archive_waiting.is_empty() {
                    let m = self.archive_waiting.remove(0);
                    self.archive_waiting_bytes = self.archive_waiting_bytes.saturating_sub(archived_size(&m));
                }
            }
        }
        Ok(fx)
    }

    /// A chat was just joined: a linked installation starts its own history above the
    /// archive, and stores what of the archive waited for it.
    pub(super) fn joined_conversation(&mut self, id: &ConversationId, fx: &mut Effects) -> Result<()> {
        if self.link_in.is_none() {
            return Ok(());
        }
        if let Some((_, meta)) = self.channel_meta(id) {
            meta.next_seq = meta.next_seq.max(ARCHIVE_SEQ);
        }
        let (mine, rest): (Vec<ChatMessage>, Vec<ChatMessage>) = std::mem::take(&mut self.archive_waiting)
            .into_iter()
            .partition(|m| m.conversation_id == id.as_str());
        self.archive_waiting = rest;
        self.archive_waiting_bytes = self.archive_waiting.iter().map(archived_size).sum();
        if !mine.is_empty() {
            self.store_archive(id, mine, fx)?;
        }
        Ok(())
    }

    fn store_archive(&mut self, id: &ConversationId, msgs: Vec<ChatMessage>, fx: &mut Effects) -> Result<()> {
        self.touch(id);
        let n = u64::try_from(msgs.len()).unwrap_or(u64::MAX);
        let base = ARCHIVE_SEQ.saturating_sub(n);
        for (i, m) in (0u64..).zip(msgs) {
            if self.seen_message(id, &m.id) {
                continue; // it reached us itself too
            }
            self.store_message_at(&m, base.saturating_add(i), false, fx)?;
        }
        // Messages held for one of these may go now.
        self.release_after_lookup(id, fx)?;
        if let Some(c) = self.conversations.get(id) {
            fx.events.push(Event::Conversation(info(c, &self.directory)));
        } else if let Some(g) = self.groups.get(id) {
            fx.events.push(Event::Conversation(super::group::group_info(g)));
        }
        Ok(())
    }

    /// A refusal of a request from `device`, to publish on the link's topic.
    fn refuse_link(&mut self, i: usize, device: &InstallationId) -> Result<Outbound> {
        let link = self.links.get(i).ok_or(CoreError::InvalidLink("no such link"))?;
        let payload = link.secret.seal(self.rng.as_mut(), Kind::Refused, device.as_bytes())?;
        Ok(Outbound { content_topic: link.topic.clone(), payload, outbox_id: 0 })
    }

    /// Adds a linked installation of ours to every direct chat it is not in.
    fn add_own_installation(
        &mut self,
        id: &InstallationId,
        kp: &KeyPackage,
        now_ms: u64,
        fx: &mut Effects,
    ) -> Result<()> {
        let ids: Vec<ConversationId> = self
            .conversations
            .iter()
            .filter(|(_, c)| !c.has_installation(id))
            .map(|(k, _)| k.clone())
            .collect();
        let invite_for = |welcome: Vec<u8>| {
            InboxV2Frame {
                payload: Some(inbox_v2_frame::Payload::GroupV1(GroupV1HeavyInvite {
                    welcome_bytes: welcome,
                })),
            }
            .encode_to_vec()
        };
        for cid in ids {
            self.touch(&cid);
            let Some(convo) = self.conversations.get_mut(&cid) else { continue };
            let (commit, welcome) =
                convo.add_installations(&self.provider, &self.installation, std::slice::from_ref(kp))?;
            let env = group_envelope(&cid, commit);
            let topic = cid.topic().as_str().to_owned();
            self.remember(&fx_digest(&topic, &env), fx)?;
            self.enqueue(fx, topic, env)?;
            let invite = EnvelopeV1 {
                conversation_hint: id.inbox_conversation_id(),
                salt: 0,
                payload: invite_for(welcome),
            };
            self.enqueue(fx, id.inbox_topic().as_str().to_owned(), invite.encode_to_vec())?;
            self.put_conversation(&cid, fx)?;
        }
        self.sync_mls(fx)?;
        let _ = now_ms;
        Ok(())
    }

    /// Removes another installation of this account (a lost device is revoked the same
    /// way): a new signed list without it, published, and its leaf taken out of every
    /// direct chat, so it cannot read what follows.
    pub fn remove_installation(&mut self, installation: &str, now_ms: u64) -> Result<Effects> {
        self.guarded(|c| {
            c.check_active()?;
            let gone = InstallationId::parse(installation)?;
            if gone == c.installation.id() {
                return Err(CoreError::InvalidArgument("an installation cannot remove itself".into()));
            }
            if !c.bundle.devices.contains(&gone) {
                return Err(CoreError::InvalidArgument("not an installation of this account".into()));
            }
            let mut fx = Effects::default();
            let ids: Vec<ConversationId> = c.conversations.keys().cloned().collect();
            for cid in ids {
                c.touch(&cid);
                let Some(convo) = c.conversations.get_mut(&cid) else { continue };
                let Some(commit) = convo.remove_installation(&c.provider, &c.installation, &gone)? else {
                    continue;
                };
                let env = group_envelope(&cid, commit);
                let topic = cid.topic().as_str().to_owned();
                c.remember(&fx_digest(&topic, &env), &mut fx)?;
                c.enqueue(&mut fx, topic, env)?;
                c.put_conversation(&cid, &mut fx)?;
            }
            let devices: Vec<InstallationId> =
                c.bundle.devices.iter().filter(|d| **d != gone).cloned().collect();
            let bundle = c.account.sign_bundle(c.bundle.lamport.saturating_add(1), devices)?;
            c.adopt_bundle(bundle, now_ms, &mut fx)?;
            c.enqueue(&mut fx, ACCOUNT_TOPIC.into(), directory::account_submission(&c.bundle))?;
            c.links.retain(|l| l.claimed.as_ref() != Some(&gone));
            // Groups take it out by their own commit (the list proves it).
            c.remove_own_installation_from_groups(&gone, now_ms, &mut fx);
            c.sync_mls(&mut fx)?;
            Ok(fx)
        })
    }

    /// Fresh keys (post-compromise security): an MLS self-update in every direct chat
    /// (new leaf HPKE keys and path secrets; what the old keys could read stays readable
    /// in the history, which is stored decrypted under the store key), and a fresh
    /// last-resort key package, published, whose predecessor's private key is deleted.
    pub fn rotate_keys(&mut self, now_ms: u64) -> Result<Effects> {
        self.guarded(|c| {
            c.check_active()?;
            let mut fx = Effects::default();
            let ids: Vec<ConversationId> = c.conversations.keys().cloned().collect();
            for cid in ids {
                c.touch(&cid);
                let Some(convo) = c.conversations.get_mut(&cid) else { continue };
                let commit = convo.self_update(&c.provider, &c.installation)?;
                let env = group_envelope(&cid, commit);
                let topic = cid.topic().as_str().to_owned();
                c.remember(&fx_digest(&topic, &env), &mut fx)?;
                c.enqueue(&mut fx, topic, env)?;
                c.put_conversation(&cid, &mut fx)?;
            }
            let old = c.key_package.hash_ref(c.provider.crypto()).map_err(CoreError::mls)?;
            let fresh = mls::new_key_package(&c.provider, &c.installation, &c.credential)?;
            c.key_package = fresh.key_package().clone();
            openmls_traits::storage::StorageProvider::delete_key_package(c.provider.storage(), &old)
                .map_err(CoreError::mls)?;
            c.put_account(&mut fx)?;
            c.announce_into(&mut fx, now_ms)?;
            c.sync_mls(&mut fx)?;
            Ok(fx)
        })
    }

    /// Takes a newer signed list of our own account: persisted (rollback protection
    /// across restarts), reported; if it no longer lists us, we were removed.
    pub(super) fn adopt_bundle(&mut self, bundle: DeviceBundle, now_ms: u64, fx: &mut Effects) -> Result<()> {
        if bundle.account != self.account.id() || bundle.lamport < self.bundle.lamport {
            return Err(CoreError::Verify("not a newer list of this account"));
        }
        self.directory.accept_bundle(bundle.clone())?;
        for d in &bundle.devices {
            self.added_at.entry(d.clone()).or_insert(now_ms);
        }
        self.added_at.retain(|d, _| bundle.devices.contains(d));
        self.bundle = bundle;
        if !self.bundle.devices.contains(&self.installation.id()) {
            self.mark_removed(fx);
        }
        self.put_account(fx)?;
        fx.events.push(Event::Installations { installations: self.installations() });
        Ok(())
    }

    /// After a lookup of our own account: a newer list from another installation.
    pub(super) fn follow_own_bundle(&mut self, now_ms: u64, fx: &mut Effects) -> Result<()> {
        let Some(b) = self.directory.bundle(&self.account.id()) else { return Ok(()) };
        if b.lamport <= self.bundle.lamport {
            return Ok(());
        }
        let b = b.clone();
        self.adopt_bundle(b, now_ms, fx)
    }

    /// This installation was removed: it says so once and refuses every later call.
    pub(super) fn mark_removed(&mut self, fx: &mut Effects) {
        if self.removed {
            return;
        }
        self.removed = true;
        self.links.clear();
        fx.events.push(Event::Error {
            code: CoreError::InstallationRemoved.code().as_str(),
            message: CoreError::InstallationRemoved.to_string(),
        });
    }

    /// Persists the account record.
    pub(super) fn put_account(&mut self, fx: &mut Effects) -> Result<()> {
        let record = self.account_record()?;
        fx.store.push(self.cipher.put(self.rng.as_mut(), Store::Account, SINGLETON, &encode(&record))?);
        Ok(())
    }
}

#[cfg(test)]
impl Client {
    /// Adds another account's installation to a direct chat by our own commit, as a
    /// misbehaving member would: peers must refuse it.
    pub(crate) fn add_foreign_for_tests(&mut self, conversation: &str, other: &InstallationId) -> Effects {
        let id = ConversationId::parse(conversation).unwrap();
        let kp = self.directory.key_package(other, self.provider.crypto()).unwrap();
        let convo = self.conversations.get_mut(&id).unwrap();
        let (commit, _) = convo.add_installations(&self.provider, &self.installation, &[kp]).unwrap();
        let mut fx = Effects::default();
        self.enqueue(&mut fx, id.topic().as_str().to_owned(), group_envelope(&id, commit)).unwrap();
        self.sync_mls(&mut fx).unwrap();
        fx
    }

    /// The epoch of a direct chat.
    pub(crate) fn direct_epoch_for_tests(&self, conversation: &str) -> u64 {
        self.conversations[&ConversationId::parse(conversation).unwrap()].epoch()
    }

    /// Starts a direct chat whose Welcome claims `claimed` as our account: an impostor.
    pub(crate) fn start_impostor_for_tests(&mut self, peer: &str, claimed: &AccountId) -> Effects {
        let peer = AccountId::parse(peer).unwrap();
        let devices = self.directory.bundle(&peer).unwrap().devices.clone();
        let kps: Vec<KeyPackage> =
            devices.iter().filter_map(|d| self.directory.key_package(d, self.provider.crypto())).collect();
        let credential =
            DelegateCredential { installation: self.installation.id(), account: Some(claimed.clone()) };
        let (convo, _commit, welcome) = DirectConversation::create(
            &self.provider,
            &self.installation,
            &credential,
            peer,
            [0x66; 16],
            &kps,
        )
        .unwrap();
        let invite = InboxV2Frame {
            payload: Some(inbox_v2_frame::Payload::GroupV1(GroupV1HeavyInvite { welcome_bytes: welcome })),
        }
        .encode_to_vec();
        let mut fx = Effects::default();
        for d in devices {
            let env =
                EnvelopeV1 { conversation_hint: d.inbox_conversation_id(), salt: 0, payload: invite.clone() };
            self.enqueue(&mut fx, d.inbox_topic().as_str().to_owned(), env.encode_to_vec()).unwrap();
        }
        let id = convo.id().clone();
        fx.subscribe.push(id.topic().as_str().to_owned());
        self.conversations.insert(id, convo);
        self.sync_mls(&mut fx).unwrap();
        fx
    }
}
