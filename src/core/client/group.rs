//! The client's group calls: create, propose (add, remove, leave, metadata), send,
//! receive, join from a Welcome, and the timers (`tick`). The de-MLS logic is in
//! `conversation::group` and `demls`; this file routes bytes, and `group_output`
//! turns a [`GroupOutput`] into effects (outbox, Welcomes to inboxes, events, storage).

use openmls::prelude::KeyPackage;
use openmls_traits::OpenMlsProvider;

use super::Client;
use crate::core::address::{AccountId, ConversationId, InstallationId};
use crate::core::conversation::group::member_id;
use crate::core::conversation::{ConversationMeta, GroupConversation, GroupOutput, Metadata};
use crate::core::demls::Config;
use crate::core::effects::{ConversationInfo, Effects, Event, MemberInfo};
use crate::core::error::{CoreError, Result};
use crate::core::wire::{
    decode, encrypted_payload, group_proposal::Request, AddAccount, EncryptedPayload, GroupMetadata,
    GroupProposal, RemoveAccount,
};

/// How a group appears in the conversation list.
pub(super) fn group_info(g: &GroupConversation) -> ConversationInfo {
    let m = g.metadata();
    ConversationInfo {
        id: g.id().as_str().to_owned(),
        kind: "group",
        peer: None,
        name: Some(m.name),
        description: Some(m.description),
        last_message_at: (g.meta.last_message_at > 0).then_some(g.meta.last_message_at as f64),
        last_message: (!g.meta.last_preview.is_empty()).then(|| g.meta.last_preview.clone()),
        created_at: g.meta.created_at,
        unread: g.meta.unread,
        verified: true,
        request: g.meta.request,
    }
}

impl Client {
    /// The key packages of every installation of `account` the directory holds.
    fn account_key_packages(&mut self, account: &AccountId) -> Result<Vec<KeyPackage>> {
        let devices = self
            .directory
            .bundle(account)
            .ok_or_else(|| CoreError::UnknownAccount(account.to_hex()))?
            .devices
            .clone();
        let crypto = self.provider.crypto();
        let kps: Vec<KeyPackage> =
            devices.iter().filter_map(|d| self.directory.key_package(d, crypto)).collect();
        if kps.is_empty() {
            return Err(CoreError::UnknownAccount(format!("{}: no key package found", account.to_hex())));
        }
        Ok(kps)
    }

    fn parse_accounts(&self, accounts: &[String]) -> Result<Vec<AccountId>> {
        let mut out: Vec<AccountId> = Vec::new();
        for a in accounts {
            let a = AccountId::parse(a)?;
            if a != self.account.id() && !out.contains(&a) {
                out.push(a);
            }
        }
        Ok(out)
    }

    /// Creates a named group with every installation of `members` (and our other
    /// installations). The directory must hold their records (the driver looks them up).
    pub fn create_group(
        &mut self,
        name: &str,
        description: &str,
        members: &[String],
        config: Option<Config>,
        now_ms: u64,
    ) -> Result<(String, Effects)> {
        self.guarded(|c| {
            c.check_active()?;
            c.create_group_inner(name, description, members, config.unwrap_or_default(), now_ms)
        })
    }

    fn create_group_inner(
        &mut self,
        name: &str,
        description: &str,
        members: &[String],
        config: Config,
        now_ms: u64,
    ) -> Result<(String, Effects)> {
        let metadata = Metadata::new(name, description)?;
        if !config.is_valid() {
            return Err(CoreError::InvalidArgument(
                "group timers must be positive and stewards at least 1".into(),
            ));
        }
        let mut key_packages = Vec::new();
        for a in self.parse_accounts(members)? {
            key_packages.extend(self.account_key_packages(&a)?);
        }
        let me = self.installation.id();
        for d in self.bundle.devices.clone().iter().filter(|d| **d != me) {
            key_packages.extend(self.directory.key_package(d, self.provider.crypto()));
        }
        let mut nonce = [0u8; 16];
        self.rng.fill_bytes(&mut nonce);
        let (mut g, out) = GroupConversation::create(
            &self.provider,
            &self.installation,
            &self.credential,
            nonce,
            &metadata,
            config,
            key_packages,
        )?;
        g.meta = ConversationMeta { created_at: now_ms, ..ConversationMeta::default() };
        let id = g.id().clone();
        let mut fx = Effects { subscribe: vec![id.topic().as_str().to_owned()], ..Effects::default() };
        fx.events.push(Event::Conversation(group_info(&g)));
        self.groups.insert(id.clone(), g);
        self.apply_group_output(&id, out, now_ms, &mut fx)?;
        self.sync_mls(&mut fx)?;
        Ok((id.as_str().to_owned(), fx))
    }

    /// Asks every group we are in to add a newly linked installation of our account
    /// (an Add for our own account with its key package and our signed list: permitted
    /// whatever the group's permissions, voted YES by members without asking their app).
    pub(super) fn add_own_installation_to_groups(&mut self, kp: &KeyPackage, now_ms: u64, fx: &mut Effects) {
        let ids: Vec<String> =
            self.groups.iter().filter(|(_, g)| !g.left).map(|(id, _)| id.as_str().to_owned()).collect();
        let Ok(bytes) = openmls::prelude::tls_codec::Serialize::tls_serialize_detached(kp) else { return };
        for id in ids {
            let add = AddAccount {
                account: self.account.id().as_bytes().to_vec(),
                key_packages: vec![bytes.clone()],
                account_bundle: crate::core::directory::account_submission(&self.bundle),
            };
            let pid = self.random_proposal_id();
            match self.propose(&id, Request::Add(add), pid, now_ms) {
                Ok(more) => fx.extend(more),
                Err(e) => fx.events.push(Event::Error { code: e.code().as_str(), message: e.to_string() }),
            }
        }
    }

    /// Asks every group we are in to take out an installation our signed list no longer
    /// shows (a removed or revoked device), with that list as the proof.
    pub(super) fn remove_own_installation_from_groups(
        &mut self,
        gone: &InstallationId,
        now_ms: u64,
        fx: &mut Effects,
    ) {
        let ids: Vec<String> = self
            .groups
            .iter()
            .filter(|(_, g)| !g.left && g.credentials().iter().any(|c| c.installation == *gone))
            .map(|(id, _)| id.as_str().to_owned())
            .collect();
        for id in ids {
            let r = crate::core::wire::RemoveInstallations {
                account: self.account.id().as_bytes().to_vec(),
                installations: vec![gone.as_bytes().to_vec()],
                account_bundle: crate::core::directory::account_submission(&self.bundle),
            };
            let pid = self.random_proposal_id();
            match self.propose(&id, Request::RemoveInstallations(r), pid, now_ms) {
                Ok(more) => fx.extend(more),
                Err(e) => fx.events.push(Event::Error { code: e.code().as_str(), message: e.to_string() }),
            }
        }
    }

    fn propose(&mut self, id: &str, request: Request, proposal_id: u32, now_ms: u64) -> Result<Effects> {
        let p = GroupProposal { proposal_id, request: Some(request), created_at: now_ms };
        self.group_call(id, now_ms, |c, g| g.propose(c.provider, c.installation, c.credential, p, now_ms))
    }

    /// One call on a group we are a member of, in a guarded bracket: its output applied
    /// and persisted.
    fn group_call(
        &mut self,
        id: &str,
        now_ms: u64,
        f: impl FnOnce(&ClientKeys<'_>, &mut GroupConversation) -> Result<GroupOutput>,
    ) -> Result<Effects> {
        self.guarded(|c| {
            let id = ConversationId::parse(id)?;
            c.touch(&id);
            let keys = ClientKeys {
                provider: &c.provider,
                installation: &c.installation,
                credential: &c.credential,
            };
            let g = c
                .groups
                .get_mut(&id)
                .ok_or_else(|| CoreError::UnknownConversation(id.as_str().to_owned()))?;
            if g.left {
                return Err(CoreError::NotAMember(id.as_str().to_owned()));
            }
            let out = f(&keys, g)?;
            let mut fx = Effects::default();
            c.apply_group_output(&id, out, now_ms, &mut fx)?;
            c.sync_mls(&mut fx)?;
            Ok(fx)
        })
    }

    fn random_proposal_id(&mut self) -> u32 {
        self.rng.next_u32()
    }

    /// Opens one Add proposal per account (every installation of it is added when committed).
    pub fn add_members(&mut self, id: &str, accounts: &[String], now_ms: u64) -> Result<Effects> {
        let mut fx = Effects::default();
        for a in self.parse_accounts(accounts)? {
            let key_packages = self
                .account_key_packages(&a)?
                .iter()
                .map(openmls::prelude::tls_codec::Serialize::tls_serialize_detached)
                .collect::<std::result::Result<Vec<_>, _>>()
                .map_err(CoreError::mls)?;
            let pid = self.random_proposal_id();
            let bundle = self.directory.bundle(&a).ok_or_else(|| CoreError::UnknownAccount(a.to_hex()))?;
            let account_bundle = crate::core::directory::account_submission(bundle);
            let add = AddAccount { account: a.as_bytes().to_vec(), key_packages, account_bundle };
            fx.extend(self.propose(id, Request::Add(add), pid, now_ms)?);
        }
        Ok(fx)
    }

    /// Opens one Remove proposal per account.
    pub fn remove_members(&mut self, id: &str, accounts: &[String], now_ms: u64) -> Result<Effects> {
        let mut fx = Effects::default();
        for a in self.parse_accounts(accounts)? {
            let pid = self.random_proposal_id();
            fx.extend(self.propose(
                id,
                Request::Remove(RemoveAccount { account: a.as_bytes().to_vec() }),
                pid,
                now_ms,
            )?);
        }
        Ok(fx)
    }

    /// Leaves the group: a self-removal that a steward commits (§3.8).
    pub fn leave_group(&mut self, id: &str, now_ms: u64) -> Result<Effects> {
        let account = self.account.id();
        let digest =
            sha2::Digest::finalize(sha2::Digest::chain_update(sha2::Sha256::default(), account.as_bytes()));
        let pid = digest.first_chunk::<4>().map_or(0, |b| u32::from_be_bytes(*b));
        self.propose(id, Request::Leave(RemoveAccount { account: account.as_bytes().to_vec() }), pid, now_ms)
    }

    /// Lets the app decide our votes on permitted proposals of other members: each raises
    /// `Event::VoteRequest`, answered with [`Client::vote`]. Unanswered, our silence counts
    /// as YES at the consensus timeout (de-MLS's liveness rule), as the default policy
    /// would have voted. Requests the permissions forbid, or that cannot be done, are
    /// voted NO without asking.
    pub fn set_vote_hook(&mut self, on: bool) {
        self.votes_by_app = on;
    }

    /// Our vote on an open proposal of a group (the app's answer to a `VoteRequest`).
    pub fn vote(&mut self, id: &str, proposal_id: u32, yes: bool, now_ms: u64) -> Result<Effects> {
        self.group_call(id, now_ms, |c, g| {
            g.cast_vote(c.provider, c.installation, c.credential, proposal_id, yes, now_ms)
        })
    }

    /// Proposes a new name and description.
    pub fn set_group_metadata(
        &mut self,
        id: &str,
        name: &str,
        description: &str,
        now_ms: u64,
    ) -> Result<Effects> {
        Metadata::new(name, description)?;
        let pid = self.random_proposal_id();
        let m = GroupMetadata { name: name.to_owned(), description: description.to_owned() };
        self.propose(id, Request::Metadata(m), pid, now_ms)
    }

    /// A conversation's members by account (for a group with steward and pending flags).
    pub fn group_members(&self, id: &str) -> Result<Vec<MemberInfo>> {
        let id = ConversationId::parse(id)?;
        if let Some(g) = self.groups.get(&id) {
            return Ok(members_of(g, &self.directory));
        }
        // A direct chat: both accounts, no stewards.
        let c = self
            .conversations
            .get(&id)
            .ok_or_else(|| CoreError::UnknownConversation(id.as_str().to_owned()))?;
        let mut by: std::collections::BTreeMap<AccountId, Vec<InstallationId>> = Default::default();
        for cred in c.members() {
            if let Some(a) = cred.account {
                by.entry(a).or_default().push(cred.installation);
            }
        }
        Ok(by
            .into_iter()
            .map(|(a, installations)| MemberInfo {
                verified: installations.iter().all(|i| self.directory.confirms(&a, i)),
                account_id: a.to_hex(),
                installations: installations.iter().map(InstallationId::to_hex).collect(),
                steward: false,
                pending: false,
            })
            .collect())
    }

    /// The accounts of a group's stewards this epoch, the epoch steward's first.
    pub fn group_stewards(&self, id: &str) -> Result<Vec<String>> {
        let id = ConversationId::parse(id)?;
        let g = self.groups.get(&id).ok_or_else(|| CoreError::UnknownConversation(id.as_str().to_owned()))?;
        Ok(g.steward_accounts().iter().map(AccountId::to_hex).collect())
    }

    /// A group's epoch (tests and diagnostics).
    pub fn group_epoch(&self, id: &str) -> Option<u64> {
        ConversationId::parse(id).ok().and_then(|id| self.groups.get(&id)).map(GroupConversation::epoch)
    }

    /// Whether this installation was removed from (or left) the group.
    pub fn has_left_group(&self, id: &str) -> bool {
        ConversationId::parse(id).ok().and_then(|id| self.groups.get(&id)).is_some_and(|g| g.left)
    }

    /// The delivery address of a group (its topic is `/logos-chat/1/{address}/proto`).
    pub fn group_topic_address(&self, id: &str) -> String {
        ConversationId::parse(id).map(|id| id.delivery_address()).unwrap_or_default()
    }

    /// This member's local score of another account's installation (first one found).
    pub fn group_score(&self, id: &str, account: &str) -> i64 {
        let (Ok(id), Ok(account)) = (ConversationId::parse(id), AccountId::parse(account)) else { return 0 };
        let Some(g) = self.groups.get(&id) else { return 0 };
        g.credentials()
            .iter()
            .filter(|c| c.account.as_ref() == Some(&account))
            .map(|c| g.gov.scores.get(&member_id(c)))
            .min()
            .unwrap_or(crate::core::demls::score::DEFAULT_SCORE)
    }

    /// A steward that commits an add nobody proposed (tests of commit validation).
    #[cfg(test)]
    pub(crate) fn rogue_add_for_tests(&mut self, id: &str, account: &str, now_ms: u64) -> Result<Effects> {
        let id = ConversationId::parse(id)?;
        let kps = self.account_key_packages(&AccountId::parse(account)?)?;
        let g =
            self.groups.get_mut(&id).ok_or_else(|| CoreError::UnknownConversation(id.as_str().to_owned()))?;
        let out = g.rogue_commit_for_tests(&self.provider, &self.installation, kps)?;
        let mut fx = Effects::default();
        self.apply_group_output(&id, out, now_ms, &mut fx)?;
        self.sync_mls(&mut fx)?;
        Ok(fx)
    }

    pub(super) fn send_group(
        &mut self,
        id: &ConversationId,
        content: &[u8],
        now_ms: u64,
    ) -> Result<(String, Effects)> {
        self.touch(id);
        let sender_id = self.credential.identity_id();
        let g =
            self.groups.get_mut(id).ok_or_else(|| CoreError::UnknownConversation(id.as_str().to_owned()))?;
        if g.left {
            return Err(CoreError::NotAMember(id.as_str().to_owned()));
        }
        let mut channel = g.channel.clone();
        let reliable = channel.wrap(id.as_str(), &sender_id, content.to_vec());
        let out = g.send_chat(&self.provider, &self.installation, reliable.clone())?;
        g.channel = channel;
        let mut fx = Effects::default();
        let message = self.outgoing(id, &reliable.message_id, content, now_ms);
        self.store_message(&message, &mut fx)?;
        self.apply_group_output(id, out, now_ms, &mut fx)?;
        self.sync_mls(&mut fx)?;
        Ok((reliable.message_id, fx))
    }

    pub(super) fn handle_group_v2(
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
        self.touch(id);
        let g =
            self.groups.get_mut(id).ok_or_else(|| CoreError::UnknownConversation(id.as_str().to_owned()))?;
        let out =
            g.process(&self.provider, &self.installation, &self.credential, &p.payload, sent_at_ms, now_ms)?;
        let mut fx = Effects::default();
        if let Some((sender, reliable)) = &out.chat {
            fx.extend(self.deliver_chat(id, sender, reliable.clone(), sent_at_ms, now_ms)?);
        }
        self.apply_group_output(id, out, now_ms, &mut fx)?;
        Ok(fx)
    }

    /// Runs every group's timers due at `now` (the driver calls it at `wake_at`).
    pub fn tick(&mut self, now_ms: u64) -> Effects {
        let ids: Vec<ConversationId> = self.groups.keys().cloned().collect();
        let mut fx = Effects::default();
        for id in ids {
            let r = self.guarded(|c| {
                c.touch(&id);
                let Some(g) = c.groups.get_mut(&id) else { return Ok(Effects::default()) };
                let out = g.tick(&c.provider, &c.installation, &c.credential, now_ms)?;
                let mut fx = Effects::default();
                c.apply_group_output(&id, out, now_ms, &mut fx)?;
                c.sync_mls(&mut fx)?;
                Ok(fx)
            });
            match r {
                Ok(f) => fx.extend(f),
                Err(e) => fx.events.push(Event::Error { code: e.code().as_str(), message: e.to_string() }),
            }
        }
        let r = self.guarded(|c| {
            let mut fx = Effects::default();
            c.reliability_tick(now_ms, &mut fx)?;
            c.typing_due(now_ms, &mut fx);
            c.republish_due(now_ms, &mut fx)?;
            c.flush_directory(&mut fx)?;
            Ok(fx)
        });
        match r {
            Ok(f) => fx.extend(f),
            Err(e) => fx.events.push(Event::Error { code: e.code().as_str(), message: e.to_string() }),
        }
        fx.wake_at = self.next_wake(now_ms);
        fx
    }

    /// The earliest timer: groups' de-MLS timers and the reliability ones.
    pub(super) fn next_wake(&self, now_ms: u64) -> Option<f64> {
        let groups = self.groups.values().filter_map(|g| g.wake_at(now_ms));
        groups
            .chain(self.reliability_wake())
            .chain(self.republish_at())
            .chain(self.typing_wake())
            .min()
            .map(|t| t as f64)
    }
}

pub(super) fn members_of(
    g: &GroupConversation,
    directory: &crate::core::directory::Directory,
) -> Vec<MemberInfo> {
    let stewards = g.stewards();
    let steward_accounts: Vec<AccountId> = g
        .credentials()
        .into_iter()
        .filter(|c| stewards.contains(&member_id(c)))
        .filter_map(|c| c.account)
        .collect();
    g.members()
        .into_iter()
        .map(|(a, installations)| MemberInfo {
            steward: steward_accounts.contains(&a),
            verified: installations.iter().all(|i| directory.confirms(&a, i)),
            account_id: a.to_hex(),
            installations: installations.iter().map(InstallationId::to_hex).collect(),
            pending: false,
        })
        .collect()
}

/// The keys a group call borrows while the group itself is borrowed mutably.
struct ClientKeys<'a> {
    provider: &'a crate::core::conversation::mls_store::Provider,
    installation: &'a crate::core::account::InstallationKey,
    credential: &'a crate::core::account::DelegateCredential,
}

#[cfg(test)]
impl Client {
    /// Proposes adding `account` with the given key packages and signed list, as a
    /// misbehaving member would.
    pub(crate) fn propose_add_for_tests(
        &mut self,
        id: &str,
        account: &AccountId,
        key_packages: Vec<Vec<u8>>,
        account_bundle: Vec<u8>,
        now_ms: u64,
    ) -> Effects {
        let add = AddAccount { account: account.as_bytes().to_vec(), key_packages, account_bundle };
        let pid = self.random_proposal_id();
        self.propose(id, Request::Add(add), pid, now_ms).unwrap()
    }

    /// Proposes a request of our choosing, as a misbehaving member would.
    pub(crate) fn propose_request_for_tests(&mut self, id: &str, request: Request, now_ms: u64) -> Effects {
        let pid = self.random_proposal_id();
        self.propose(id, request, pid, now_ms).unwrap()
    }

    /// A key package of this installation whose credential claims `claimed`'s account.
    pub(crate) fn forged_key_package_for_tests(&self, claimed: &AccountId) -> Vec<u8> {
        let cred = crate::core::account::DelegateCredential {
            installation: self.installation.id(),
            account: Some(claimed.clone()),
        };
        let kp = crate::core::conversation::mls::new_key_package(&self.provider, &self.installation, &cred)
            .unwrap();
        openmls::prelude::tls_codec::Serialize::tls_serialize_detached(kp.key_package()).unwrap()
    }

    /// The signed list of an account as the directory holds it (an encoded submission).
    pub(crate) fn account_submission_for_tests(&self, account: &AccountId) -> Vec<u8> {
        crate::core::directory::account_submission(self.directory.bundle(account).unwrap())
    }
}
