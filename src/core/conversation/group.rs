//! Group chat on de-MLS (PROTOCOL.md §2.8, §3): one MLS group, its governance state and
//! the candidate commits of the current epoch.
//!
//! Every message on the group's topic is an MLS PrivateMessage (PRIV1): chat, proposals,
//! votes and the sync inside a Welcome are application messages, commits are handshake
//! messages. Members vote on every proposal; only the epoch's stewards commit, when the
//! commit window after the first approval ends; members collect candidates until every
//! listed steward's is in or the freeze ends, then all pick the same one
//! (`demls::select`) after checking it commits exactly the approved actions. Never does
//! I/O: the client routes bytes and time in, and publishes what comes out.

use std::collections::BTreeSet;

use openmls::prelude::tls_codec::{Deserialize as _, Serialize as _};
use openmls::prelude::*;
use openmls_libcrux_crypto::Provider;
use prost::Message as _;

use super::metadata::Metadata;
use super::{mls, ConversationMeta};
use crate::core::account::{DelegateCredential, InstallationKey};
use crate::core::address::{AccountId, ConversationId, InstallationId};
use crate::core::demls::{steward_list, CandidateKey, Config, Governance, GovernanceRecord, ScoreEvent};
use crate::core::directory::parse_key_package;
use crate::core::error::{CoreError, Result};
use crate::core::sds::Channel;
use crate::core::store::{decode_record, ConversationRecord};
use crate::core::wire::{
    group_app_frame::Body, group_proposal::Request, GroupAppFrame, GroupProposal, GroupVote, MemberWelcome,
    ReliablePayload,
};

/// What processing a message or a timer produced.
#[derive(Debug, Default)]
pub struct GroupOutput {
    /// MLS messages for the group's topic, in order.
    pub publish: Vec<Vec<u8>>,
    /// An encoded `MemberWelcome` for each joining installation.
    pub welcomes: Vec<(InstallationId, Vec<u8>)>,
    /// A chat message from an authenticated member.
    pub chat: Option<(DelegateCredential, ReliablePayload)>,
    /// Chat messages of later epochs that a catch-up could read only now.
    pub replayed_chat: Vec<(DelegateCredential, ReliablePayload)>,
    /// The member list changed (a commit was merged).
    pub members_changed: bool,
    /// This installation is no longer a member.
    pub left: bool,
    /// Candidates that were rejected, and why (reported as `error` events).
    pub rejected: Vec<String>,
}

/// What a commit does, in accounts: compared with what was voted.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct Effect {
    adds: BTreeSet<AccountId>,
    removes: BTreeSet<AccountId>,
    metadata: Option<Metadata>,
}

/// The next commit, as every member derives it from the approved queue.
#[derive(Debug, Default)]
struct Plan {
    effect: Effect,
    key_packages: Vec<KeyPackage>,
    remove_leaves: Vec<LeafNodeIndex>,
    ids: Vec<u32>,
    removes: Vec<AccountId>,
}

#[derive(Debug)]
struct Candidate {
    key: CandidateKey,
    committer: Vec<u8>,
    effect: Option<Effect>,
    staged: Box<StagedCommit>,
}

#[derive(Debug, Clone, Default)]
struct OwnCandidate {
    commit: Vec<u8>,
    welcome: Option<Vec<u8>>,
    joiners: Vec<InstallationId>,
    ids: Vec<u32>,
    actions: usize,
}

/// One group conversation.
#[derive(Debug)]
pub struct GroupConversation {
    id: ConversationId,
    group: MlsGroup,
    /// Lamport clock and causal history of the chat.
    pub channel: Channel,
    /// Bookkeeping for the conversation list and history.
    pub meta: ConversationMeta,
    /// Proposals, votes, the approved queue, scores.
    pub gov: Governance,
    candidates: Vec<Candidate>,
    own: Option<OwnCandidate>,
    freeze_until: Option<u64>,
    /// App frames written while our own candidate was pending (openmls sends nothing
    /// then); they go out after the selection.
    deferred: Vec<Vec<u8>>,
    /// Messages of later epochs, kept until we reach them (a member catching up from the
    /// store reads a whole partition's worth of epochs at once).
    future: Vec<(u64, Vec<u8>, u64)>,
    /// The next selection is attested by later-epoch traffic: accept a candidate whose
    /// actions are all proposed, even if our own tally has not finished.
    attested: bool,
    /// No longer a member.
    pub left: bool,
}

fn leaf_credential(m: &Member) -> Option<DelegateCredential> {
    mls::member_credential(&m.credential, m.signature_key.as_slice()).ok()
}

/// The de-MLS member id of an installation: its MLS identity bytes (§2.8).
pub fn member_id(c: &DelegateCredential) -> Vec<u8> {
    c.identity_id().into_bytes()
}

fn metadata_extensions(m: &Metadata) -> Result<Extensions<GroupContext>> {
    Extensions::single(Extension::Unknown(mls::GROUP_METADATA_EXTENSION, UnknownExtension(m.encode())))
        .map_err(CoreError::mls)
}

fn account_of(kp: &KeyPackage) -> Option<AccountId> {
    let leaf = kp.leaf_node();
    mls::member_credential(leaf.credential(), leaf.signature_key().as_slice()).ok()?.account
}

/// The number of governance actions a commit carries (candidate rule 1).
fn effect_size(e: &Effect) -> usize {
    e.adds.len() + e.removes.len() + usize::from(e.metadata.is_some())
}

/// Most later-epoch messages kept while catching up.
const MAX_FUTURE: usize = 4096;

/// Most key packages committed at once (§3.6).
const MAX_ADDS: usize = mls::MAX_ADDS_PER_COMMIT;

impl GroupConversation {
    /// Creates a group holding us and the installations of `key_packages`, added in
    /// commits of at most 50 (merged at once: nobody else can commit yet). Each batch's
    /// joiners get a Welcome with the sync.
    pub fn create(
        provider: &Provider,
        key: &InstallationKey,
        me: &DelegateCredential,
        group_id: [u8; 16],
        metadata: &Metadata,
        config: Config,
        key_packages: Vec<KeyPackage>,
    ) -> Result<(Self, GroupOutput)> {
        let group = MlsGroup::new_with_group_id(
            provider,
            key,
            &mls::create_group_config(metadata_extensions(metadata)?),
            GroupId::from_slice(&group_id),
            mls::credential_with_key(me),
        )
        .map_err(CoreError::mls)?;
        let mut convo = GroupConversation::fresh(group, Governance::new(config));
        let mut out = GroupOutput { members_changed: true, ..GroupOutput::default() };
        for batch in key_packages.chunks(MAX_ADDS) {
            let own = convo.build_commit(provider, key, batch.to_vec(), Vec::new(), None)?;
            convo.group.merge_pending_commit(provider).map_err(CoreError::mls)?;
            out.publish.push(own.commit.clone());
            convo.send_welcomes(provider, key, &own, &mut out)?;
        }
        Ok((convo, out))
    }

    fn fresh(group: MlsGroup, gov: Governance) -> Self {
        GroupConversation {
            id: ConversationId::from_group_id(group.group_id().as_slice()),
            group,
            channel: Channel::default(),
            meta: ConversationMeta::default(),
            gov,
            candidates: Vec::new(),
            own: None,
            freeze_until: None,
            deferred: Vec::new(),
            future: Vec::new(),
            attested: false,
            left: false,
        }
    }

    /// Joins from a `MemberWelcome`: the MLS Welcome, then the sync inside it (the
    /// configuration and scores; defaults if it is missing or does not check out).
    pub fn join(provider: &Provider, welcome: &MemberWelcome) -> Result<Self> {
        let msg = MlsMessageIn::tls_deserialize_exact(&welcome.welcome_bytes)
            .map_err(|e| CoreError::decode("welcome", e))?;
        let MlsMessageBodyIn::Welcome(w) = msg.extract() else {
            return Err(CoreError::decode("welcome", "not a Welcome"));
        };
        let staged = StagedWelcome::new_from_welcome(provider, &mls::join_config(), w, None)
            .map_err(CoreError::mls)?;
        let group = staged.into_group(provider).map_err(CoreError::mls)?;
        let mut convo = GroupConversation::fresh(group, Governance::default());
        if let Ok(Some(sync)) = convo.read_sync(provider, &welcome.conversation_sync_bytes) {
            if let Some(config) = Config::from_sync(&sync) {
                convo.gov = Governance::new(config);
                convo.gov.scores.0 = sync.scores.into_iter().map(|p| (p.member_id, p.score)).collect();
            }
        }
        Ok(convo)
    }

    fn read_sync(
        &mut self,
        provider: &Provider,
        bytes: &[u8],
    ) -> Result<Option<crate::core::wire::GroupSync>> {
        let msg = MlsMessageIn::tls_deserialize_exact(bytes).map_err(|e| CoreError::decode("sync", e))?;
        let protocol =
            msg.try_into_protocol_message().map_err(|e| CoreError::decode("sync", format!("{e:?}")))?;
        let processed = self.group.process_message(provider, protocol).map_err(CoreError::mls)?;
        if let ProcessedMessageContent::ApplicationMessage(app) = processed.into_content() {
            if let Ok(GroupAppFrame { body: Some(Body::Sync(s)) }) =
                GroupAppFrame::decode(app.into_bytes().as_slice())
            {
                return Ok(Some(s));
            }
        }
        Ok(None)
    }

    /// The conversation id.
    pub fn id(&self) -> &ConversationId {
        &self.id
    }

    /// The MLS epoch.
    pub fn epoch(&self) -> u64 {
        self.group.epoch().as_u64()
    }

    /// Name and description (extension 0xFF01).
    pub fn metadata(&self) -> Metadata {
        self.group
            .extensions()
            .unknown(mls::GROUP_METADATA_EXTENSION)
            .and_then(|e| Metadata::decode(&e.0).ok())
            .unwrap_or_default()
    }

    /// Every member installation's credential.
    pub fn credentials(&self) -> Vec<DelegateCredential> {
        self.group.members().filter_map(|m| leaf_credential(&m)).collect()
    }

    /// Members by account, each with its installations, in account order.
    pub fn members(&self) -> Vec<(AccountId, Vec<InstallationId>)> {
        let mut by: std::collections::BTreeMap<AccountId, Vec<InstallationId>> = Default::default();
        for c in self.credentials() {
            if let Some(a) = c.account {
                by.entry(a).or_default().push(c.installation);
            }
        }
        by.into_iter().collect()
    }

    fn member_ids(&self) -> Vec<Vec<u8>> {
        self.credentials().iter().map(member_id).collect()
    }

    /// This epoch's steward list (member ids), the epoch steward first.
    pub fn stewards(&self) -> Vec<Vec<u8>> {
        steward_list(self.epoch(), 0, self.id.as_str(), &self.member_ids(), self.gov.config.stewards as usize)
    }

    /// The accounts of this epoch's stewards.
    pub fn steward_accounts(&self) -> Vec<AccountId> {
        let ids = self.stewards();
        let mut out: Vec<AccountId> = Vec::new();
        for c in self.credentials() {
            let listed = ids.contains(&member_id(&c));
            if let Some(a) = c.account.filter(|_| listed) {
                if !out.contains(&a) {
                    out.push(a);
                }
            }
        }
        out
    }

    fn leaves_of(&self, account: &AccountId) -> Vec<LeafNodeIndex> {
        self.group
            .members()
            .filter(|m| leaf_credential(m).and_then(|c| c.account).as_ref() == Some(account))
            .map(|m| m.index)
            .collect()
    }

    /// Whether an account has an installation in the group.
    pub fn has_account(&self, account: &AccountId) -> bool {
        !self.leaves_of(account).is_empty()
    }

    /// Encrypts an app frame, or defers it while our own candidate is pending.
    fn seal(
        &mut self,
        provider: &Provider,
        key: &InstallationKey,
        frame: Vec<u8>,
    ) -> Result<Option<Vec<u8>>> {
        if self.left {
            return Err(CoreError::NotAMember(self.id.as_str().to_owned()));
        }
        if self.group.pending_commit().is_some() {
            self.deferred.push(frame);
            return Ok(None);
        }
        let msg = self.group.create_message(provider, key, &frame).map_err(CoreError::mls)?;
        Ok(Some(msg.tls_serialize_detached().map_err(CoreError::mls)?))
    }

    /// Sends a chat payload (or defers it, see [`GroupConversation::seal`]).
    pub fn send_chat(
        &mut self,
        provider: &Provider,
        key: &InstallationKey,
        p: ReliablePayload,
    ) -> Result<GroupOutput> {
        let mut out = GroupOutput::default();
        out.publish.extend(self.seal(provider, key, GroupAppFrame::chat(p).encode_to_vec())?);
        Ok(out)
    }

    /// Opens a proposal with our own YES and sends it to the group.
    pub fn propose(
        &mut self,
        provider: &Provider,
        key: &InstallationKey,
        me: &DelegateCredential,
        proposal: GroupProposal,
        now: u64,
    ) -> Result<GroupOutput> {
        let expected = if matches!(proposal.request, Some(Request::Leave(_))) {
            1
        } else {
            self.group.members().count()
        };
        let frame = GroupAppFrame { body: Some(Body::Proposal(proposal.clone())) }.encode_to_vec();
        let mut out = GroupOutput::default();
        out.publish.extend(self.seal(provider, key, frame)?);
        self.gov.open(proposal, &member_id(me), expected, now);
        Ok(out)
    }

    /// Whether a proposal from `owner` asks for something that can be done.
    fn valid_request(&self, provider: &Provider, owner: &DelegateCredential, request: &Request) -> bool {
        let account = |b: &[u8]| <[u8; 32]>::try_from(b).ok().map(AccountId::from_bytes);
        match request {
            Request::Add(a) => account(&a.account).is_some_and(|acct| {
                !a.key_packages.is_empty()
                    && a.key_packages.len() <= MAX_ADDS
                    && a.key_packages.iter().all(|kp| {
                        parse_key_package(kp, provider.crypto()).ok().and_then(|kp| account_of(&kp)).as_ref()
                            == Some(&acct)
                    })
            }),
            Request::Remove(r) => account(&r.account).is_some_and(|a| self.has_account(&a)),
            // Only an account itself may leave (§3.8: owner = MLS sender = target).
            Request::Leave(r) => account(&r.account).is_some_and(|a| Some(a) == owner.account),
            Request::Metadata(m) => Metadata::new(&m.name, &m.description).is_ok(),
        }
    }

    /// Processes one MLS message from the group's topic.
    pub fn process(
        &mut self,
        provider: &Provider,
        key: &InstallationKey,
        me: &DelegateCredential,
        bytes: &[u8],
        sent_at: u64,
        now: u64,
    ) -> Result<GroupOutput> {
        let mut out = GroupOutput::default();
        if self.left {
            return Ok(out);
        }
        let msg =
            MlsMessageIn::tls_deserialize_exact(bytes).map_err(|e| CoreError::decode("mls message", e))?;
        let protocol = msg
            .try_into_protocol_message()
            .map_err(|e| CoreError::decode("mls message", format!("{e:?}")))?;
        if protocol.group_id() != self.group.group_id() {
            return Err(CoreError::Verify("message for another group"));
        }
        if protocol.epoch() < self.group.epoch() && protocol.content_type() != ContentType::Application {
            return Ok(out);
        }
        if protocol.epoch() > self.group.epoch() {
            // The group moved on: what we hold for this epoch is all we will get, and the
            // later traffic attests that one of our candidates was taken (commit attestation).
            if self.future.len() < MAX_FUTURE {
                self.future.push((protocol.epoch().as_u64(), bytes.to_vec(), sent_at));
            }
            if self.freeze_until.is_some() {
                self.attested = true;
                self.select(provider, key, me, now, &mut out)?;
            }
            return Ok(out);
        }
        let processed = match self.group.process_message(provider, protocol) {
            Ok(p) => p,
            Err(e) => {
                return if mls::is_replay(&e) { Ok(out) } else { Err(CoreError::Decrypt(format!("{e:?}"))) }
            }
        };
        let sender = match processed.sender() {
            Sender::Member(idx) => self
                .group
                .members()
                .find(|m| m.index == *idx)
                .and_then(|m| leaf_credential(&m))
                .ok_or(CoreError::Verify("sender is not a member"))?,
            _ => return Ok(out),
        };
        match processed.into_content() {
            ProcessedMessageContent::ApplicationMessage(app) => {
                let frame: GroupAppFrame = crate::core::wire::decode("group frame", &app.into_bytes())?;
                match frame.body {
                    Some(Body::Chat(p)) => out.chat = Some((sender, p)),
                    Some(Body::Proposal(p)) => {
                        self.on_proposal(provider, key, me, &sender, p, now, &mut out)?
                    }
                    Some(Body::Vote(v)) => {
                        self.gov.vote(v.proposal_id, &member_id(&sender), v.vote, now);
                    }
                    Some(Body::Sync(_)) | None => {}
                }
            }
            ProcessedMessageContent::StagedCommitMessage(staged) => {
                // Only a live candidate makes a steward mint its own: one read back from the
                // store (a member catching up) was decided without us.
                let live = now <= sent_at.saturating_add(self.gov.config.freeze_duration);
                self.on_candidate(provider, key, me, sender, staged, bytes, live, now, &mut out)?;
            }
            // Proposals travel as votes, never as MLS proposals (§3.2): drop them.
            _ => self.group.clear_pending_proposals(provider.storage()).map_err(CoreError::mls)?,
        }
        Ok(out)
    }

    #[allow(clippy::too_many_arguments)]
    fn on_proposal(
        &mut self,
        provider: &Provider,
        key: &InstallationKey,
        me: &DelegateCredential,
        owner: &DelegateCredential,
        p: GroupProposal,
        now: u64,
        out: &mut GroupOutput,
    ) -> Result<()> {
        let Some(request) = p.request.clone() else {
            return Err(CoreError::decode("group proposal", "no request"));
        };
        let id = p.proposal_id;
        let leave = matches!(request, Request::Leave(_));
        let valid = self.valid_request(provider, owner, &request);
        if leave && !valid {
            return Err(CoreError::Verify("a leave names another account than its sender"));
        }
        let expected = if leave { 1 } else { self.group.members().count() };
        if self.gov.is_open(id) || self.gov.decided.contains(&id) {
            return Ok(());
        }
        let decided = self.gov.open(p, &member_id(owner), expected, now);
        if decided.is_none() && owner.installation != me.installation {
            // The SDK's policy: a valid request from a member gets YES, anything else NO.
            let frame = GroupAppFrame { body: Some(Body::Vote(GroupVote { proposal_id: id, vote: valid })) };
            out.publish.extend(self.seal(provider, key, frame.encode_to_vec())?);
            self.gov.vote(id, &member_id(me), valid, now);
        }
        Ok(())
    }

    /// The next commit as the approved queue defines it.
    fn plan(&self, provider: &Provider) -> Plan {
        let mut plan = Plan::default();
        for a in &self.gov.approved {
            let Some(request) = &a.proposal.request else { continue };
            match request {
                Request::Add(add) => {
                    let Ok(acct) = <[u8; 32]>::try_from(add.account.as_slice()).map(AccountId::from_bytes)
                    else {
                        plan.ids.push(a.proposal.proposal_id);
                        continue;
                    };
                    let kps: Vec<KeyPackage> = add
                        .key_packages
                        .iter()
                        .filter_map(|k| parse_key_package(k, provider.crypto()).ok())
                        .collect();
                    if plan.key_packages.len() + kps.len() > MAX_ADDS && !plan.ids.is_empty() {
                        break;
                    }
                    if !self.has_account(&acct) && !plan.effect.adds.contains(&acct) && !kps.is_empty() {
                        plan.effect.adds.insert(acct);
                        plan.key_packages.extend(kps);
                    }
                }
                Request::Remove(r) | Request::Leave(r) => {
                    if let Ok(acct) = <[u8; 32]>::try_from(r.account.as_slice()).map(AccountId::from_bytes) {
                        let leaves = self.leaves_of(&acct);
                        if !leaves.is_empty() && plan.effect.removes.insert(acct.clone()) {
                            plan.remove_leaves.extend(leaves);
                            plan.removes.push(acct);
                        }
                    }
                }
                Request::Metadata(m) => plan.effect.metadata = Metadata::new(&m.name, &m.description).ok(),
            }
            plan.ids.push(a.proposal.proposal_id);
        }
        plan
    }

    /// Everything open or approved, as one effect (what an attested commit may carry).
    fn proposed_effect(&self, provider: &Provider) -> Effect {
        let mut e = Effect::default();
        let requests =
            self.gov.approved.iter().map(|a| &a.proposal).chain(self.gov.open.values().map(|o| &o.proposal));
        for p in requests {
            let acct = |b: &[u8]| <[u8; 32]>::try_from(b).ok().map(AccountId::from_bytes);
            match &p.request {
                Some(Request::Add(a)) => {
                    let ok = a.key_packages.iter().any(|k| parse_key_package(k, provider.crypto()).is_ok());
                    if let Some(x) = acct(&a.account).filter(|_| ok) {
                        e.adds.insert(x);
                    }
                }
                Some(Request::Remove(r) | Request::Leave(r)) => {
                    if let Some(x) = acct(&r.account) {
                        e.removes.insert(x);
                    }
                }
                Some(Request::Metadata(m)) => e.metadata = Metadata::new(&m.name, &m.description).ok(),
                None => {}
            }
        }
        e
    }

    /// After an attested commit: the proposals it carried are done, wherever our tally was.
    fn settle(&mut self, effect: &Effect) {
        let carried = |p: &GroupProposal| match &p.request {
            Some(Request::Add(a)) => <[u8; 32]>::try_from(a.account.as_slice())
                .is_ok_and(|b| effect.adds.contains(&AccountId::from_bytes(b))),
            Some(Request::Remove(r) | Request::Leave(r)) => <[u8; 32]>::try_from(r.account.as_slice())
                .is_ok_and(|b| effect.removes.contains(&AccountId::from_bytes(b))),
            Some(Request::Metadata(_)) => effect.metadata.is_some(),
            None => false,
        };
        let done: Vec<u32> = self
            .gov
            .open
            .values()
            .map(|o| &o.proposal)
            .chain(self.gov.approved.iter().map(|a| &a.proposal))
            .filter(|p| carried(p))
            .map(|p| p.proposal_id)
            .collect();
        for id in &done {
            self.gov.open.remove(id);
            self.gov.decided.push(*id);
        }
        self.gov.committed(&done);
    }

    /// Processes the kept later-epoch messages that the current epoch can now read.
    fn replay_future(
        &mut self,
        provider: &Provider,
        key: &InstallationKey,
        me: &DelegateCredential,
        now: u64,
        out: &mut GroupOutput,
    ) -> Result<()> {
        loop {
            let epoch = self.epoch();
            let Some(pos) = self.future.iter().position(|(e, _, _)| *e == epoch) else { break };
            let (_, bytes, sent_at) = self.future.remove(pos);
            // A message that no longer processes is dropped, as it would have been live.
            if let Ok(more) = self.process(provider, key, me, &bytes, sent_at, now) {
                out.publish.extend(more.publish);
                out.welcomes.extend(more.welcomes);
                out.members_changed |= more.members_changed;
                out.left |= more.left;
                out.rejected.extend(more.rejected);
                if more.chat.is_some() {
                    out.replayed_chat.extend(more.chat);
                }
                out.replayed_chat.extend(more.replayed_chat);
            }
            if self.left {
                break;
            }
        }
        self.future.retain(|(e, _, _)| *e > self.group.epoch().as_u64());
        Ok(())
    }

    /// What a staged commit does, or `None` if it does something no vote can ask for.
    fn effect_of(&self, staged: &StagedCommit) -> Option<Effect> {
        if staged.update_proposals().next().is_some() || staged.psk_proposals().next().is_some() {
            return None;
        }
        let mut e = Effect::default();
        for add in staged.add_proposals() {
            e.adds.insert(account_of(add.add_proposal().key_package())?);
        }
        for r in staged.remove_proposals() {
            let idx = r.remove_proposal().removed();
            let m = self.group.members().find(|m| m.index == idx)?;
            e.removes.insert(leaf_credential(&m)?.account?);
        }
        let next =
            staged.group_context().extensions().unknown(mls::GROUP_METADATA_EXTENSION).map(|x| x.0.clone());
        let now = self.group.extensions().unknown(mls::GROUP_METADATA_EXTENSION).map(|x| x.0.clone());
        if next != now {
            e.metadata = Some(Metadata::decode(&next?).ok()?);
        }
        Some(e)
    }

    #[allow(clippy::too_many_arguments)]
    fn on_candidate(
        &mut self,
        provider: &Provider,
        key: &InstallationKey,
        me: &DelegateCredential,
        committer: DelegateCredential,
        staged: Box<StagedCommit>,
        bytes: &[u8],
        live: bool,
        now: u64,
        out: &mut GroupOutput,
    ) -> Result<()> {
        let stewards = self.stewards();
        let id = member_id(&committer);
        if !self.gov.recovery && !stewards.contains(&id) {
            self.gov.scores.apply(&id, ScoreEvent::MisbehavingCommit);
            out.rejected.push("a commit from a member who is not a steward of this epoch".into());
            return Ok(());
        }
        let effect = self.effect_of(&staged);
        let actions = effect.as_ref().map_or(0, effect_size);
        let key_ = CandidateKey::new(actions, stewards.first() == Some(&id), id.clone(), bytes);
        self.candidates.retain(|c| c.committer != id);
        self.candidates.push(Candidate { key: key_, committer: id, effect, staged });
        self.freeze_until.get_or_insert(now + self.gov.config.freeze_duration);
        // A peer's candidate moves every steward into the freeze, and each mints its own (§3.6).
        if self.own.is_none() && live {
            self.mint(provider, key, me, now, out)?;
            if self.own.is_some() {
                return Ok(());
            }
        }
        if self.all_candidates_in(&stewards) {
            self.select(provider, key, me, now, out)?;
        }
        Ok(())
    }

    /// Every listed steward's candidate is in (in recovery, anyone may commit: wait for the freeze).
    fn all_candidates_in(&self, stewards: &[Vec<u8>]) -> bool {
        let have = self.candidates.len() + usize::from(self.own.is_some());
        !self.gov.recovery && have >= stewards.len()
    }

    fn build_commit(
        &mut self,
        provider: &Provider,
        key: &InstallationKey,
        key_packages: Vec<KeyPackage>,
        removes: Vec<LeafNodeIndex>,
        metadata: Option<&Metadata>,
    ) -> Result<OwnCandidate> {
        let joiners: Vec<InstallationId> = key_packages
            .iter()
            .filter_map(|kp| {
                mls::member_credential(kp.leaf_node().credential(), kp.leaf_node().signature_key().as_slice())
                    .ok()
            })
            .map(|c| c.installation)
            .collect();
        let mut builder = self
            .group
            .commit_builder()
            .consume_proposal_store(false)
            .propose_adds(key_packages)
            .propose_removals(removes);
        if let Some(m) = metadata {
            builder =
                builder.propose_group_context_extensions(metadata_extensions(m)?).map_err(CoreError::mls)?;
        }
        let bundle = builder
            .load_psks(provider.storage())
            .map_err(CoreError::mls)?
            .build(provider.rand(), provider.crypto(), key, |_| true)
            .map_err(CoreError::mls)?
            .stage_commit(provider)
            .map_err(CoreError::mls)?;
        let commit = bundle.commit().tls_serialize_detached().map_err(CoreError::mls)?;
        let welcome = bundle
            .to_welcome_msg()
            .map(|w| w.tls_serialize_detached())
            .transpose()
            .map_err(CoreError::mls)?;
        Ok(OwnCandidate { commit, welcome, joiners, ids: Vec::new(), actions: 0 })
    }

    /// After our own commit is merged: the Welcome, with the sync sealed in the new epoch.
    fn send_welcomes(
        &mut self,
        provider: &Provider,
        key: &InstallationKey,
        own: &OwnCandidate,
        out: &mut GroupOutput,
    ) -> Result<()> {
        let Some(welcome) = &own.welcome else { return Ok(()) };
        let sync = GroupAppFrame { body: Some(Body::Sync(self.gov.sync())) }.encode_to_vec();
        let sync = self.group.create_message(provider, key, &sync).map_err(CoreError::mls)?;
        let mw = MemberWelcome {
            welcome_bytes: welcome.clone(),
            conversation_sync_bytes: sync.tls_serialize_detached().map_err(CoreError::mls)?,
            joiner_identities: Vec::new(),
        }
        .encode_to_vec();
        out.welcomes.extend(own.joiners.iter().map(|j| (j.clone(), mw.clone())));
        Ok(())
    }

    /// Commits adds nobody voted for, as a misbehaving steward would.
    #[cfg(test)]
    pub(crate) fn rogue_commit_for_tests(
        &mut self,
        provider: &Provider,
        key: &InstallationKey,
        kps: Vec<KeyPackage>,
    ) -> Result<GroupOutput> {
        let own = self.build_commit(provider, key, kps, Vec::new(), None)?;
        let mut out = GroupOutput::default();
        out.publish.push(own.commit.clone());
        self.group.clear_pending_commit(provider.storage()).map_err(CoreError::mls)?;
        Ok(out)
    }

    /// Mints our candidate when we are a steward (or in recovery) and there is work.
    fn mint(
        &mut self,
        provider: &Provider,
        key: &InstallationKey,
        me: &DelegateCredential,
        now: u64,
        out: &mut GroupOutput,
    ) -> Result<()> {
        let stewards = self.stewards();
        if self.own.is_some() || self.group.pending_commit().is_some() {
            return Ok(());
        }
        if !self.gov.recovery && !stewards.contains(&member_id(me)) {
            return Ok(());
        }
        let plan = self.plan(provider);
        if plan.ids.is_empty() {
            return Ok(());
        }
        if plan.effect == Effect::default() {
            // Everything approved is a no-op now (adds of members, removes of non-members).
            self.gov.committed(&plan.ids);
            return Ok(());
        }
        // A steward never commits its own removal (§3.6): another one will.
        if me.account.as_ref().is_some_and(|a| plan.removes.contains(a)) {
            return Ok(());
        }
        let mut own = self.build_commit(
            provider,
            key,
            plan.key_packages,
            plan.remove_leaves,
            plan.effect.metadata.as_ref(),
        )?;
        own.ids = plan.ids;
        own.actions = effect_size(&plan.effect);
        out.publish.push(own.commit.clone());
        self.own = Some(own);
        self.freeze_until.get_or_insert(now + self.gov.config.freeze_duration);
        if self.all_candidates_in(&stewards) {
            self.select(provider, key, me, now, out)?;
        }
        Ok(())
    }

    /// Picks the winning candidate, merges it, and sends what waited on it.
    fn select(
        &mut self,
        provider: &Provider,
        key: &InstallationKey,
        me: &DelegateCredential,
        now: u64,
        out: &mut GroupOutput,
    ) -> Result<()> {
        self.freeze_until = None;
        let plan = self.plan(provider);
        let stewards = self.stewards();
        let mut valid: Vec<(CandidateKey, Option<usize>)> = Vec::new();
        let attested = std::mem::take(&mut self.attested);
        let proposed = self.proposed_effect(provider);
        for (i, c) in self.candidates.iter().enumerate() {
            let within = |e: &Effect| {
                e != &Effect::default()
                    && e.adds.is_subset(&proposed.adds)
                    && e.removes.is_subset(&proposed.removes)
                    && (e.metadata.is_none() || e.metadata == proposed.metadata)
            };
            if c.effect.as_ref() == Some(&plan.effect) || (attested && c.effect.as_ref().is_some_and(within))
            {
                valid.push((c.key.clone(), Some(i)));
            } else {
                self.gov.scores.apply(&c.committer, ScoreEvent::BrokenMlsProposal);
                out.rejected.push("a commit whose proposals are not the approved ones".into());
            }
        }
        if let Some(own) = &self.own {
            let by_epoch_steward = stewards.first() == Some(&member_id(me));
            valid.push((CandidateKey::new(own.actions, by_epoch_steward, member_id(me), &own.commit), None));
        }
        valid.sort_by(|a, b| a.0.cmp(&b.0));
        let Some((winner, source)) = valid.first().cloned() else {
            self.candidates.clear();
            return Ok(());
        };
        let candidates = std::mem::take(&mut self.candidates);
        let own = self.own.take();
        for (k, _) in valid.iter().skip(1) {
            if stewards.contains(&k.steward) {
                self.gov.scores.apply(&k.steward, ScoreEvent::HonestCommitAttempt);
            }
        }
        self.gov.scores.apply(&winner.steward, ScoreEvent::SuccessfulCommit);
        match source {
            None => {
                self.group.merge_pending_commit(provider).map_err(CoreError::mls)?;
                if let Some(own) = &own {
                    self.gov.committed(&own.ids);
                    self.send_welcomes(provider, key, own, out)?;
                }
            }
            Some(i) => {
                if self.group.pending_commit().is_some() {
                    self.group.clear_pending_commit(provider.storage()).map_err(CoreError::mls)?;
                }
                let Some(c) = candidates.into_iter().nth(i) else { return Ok(()) };
                let removed = c.staged.self_removed();
                let effect = c.effect.clone().unwrap_or_default();
                self.group.merge_staged_commit(provider, *c.staged).map_err(CoreError::mls)?;
                self.gov.committed(&plan.ids);
                if attested {
                    self.settle(&effect);
                }
                if removed {
                    self.left = true;
                    self.deferred.clear();
                }
            }
        }
        out.members_changed = true;
        out.left = self.left;
        if !self.left {
            for frame in std::mem::take(&mut self.deferred) {
                let msg = self.group.create_message(provider, key, &frame).map_err(CoreError::mls)?;
                out.publish.push(msg.tls_serialize_detached().map_err(CoreError::mls)?);
            }
        }
        self.replay_future(provider, key, me, now, out)
    }

    /// Runs the timers due at `now`: proposal timeouts, the commit window, the end of the
    /// freeze, recovery mode.
    pub fn tick(
        &mut self,
        provider: &Provider,
        key: &InstallationKey,
        me: &DelegateCredential,
        now: u64,
    ) -> Result<GroupOutput> {
        let mut out = GroupOutput::default();
        if self.left {
            return Ok(out);
        }
        self.gov.timeouts(now);
        if self.freeze_until.is_some_and(|t| now >= t) {
            self.select(provider, key, me, now, &mut out)?;
        }
        let idle = self.own.is_none() && self.candidates.is_empty();
        if idle && self.gov.commit_due().is_some_and(|t| now >= t) {
            self.mint(provider, key, me, now, &mut out)?;
        }
        let idle = self.own.is_none() && self.candidates.is_empty();
        if idle && !self.gov.recovery && self.gov.recovery_due().is_some_and(|t| now >= t) {
            // No steward committed in time: penalise the epoch steward and let anyone commit (L3).
            if let Some(s) = self.stewards().first() {
                self.gov.scores.apply(s, ScoreEvent::CensorshipInactivity);
            }
            self.gov.recovery = true;
            self.mint(provider, key, me, now, &mut out)?;
        }
        Ok(out)
    }

    /// When [`GroupConversation::tick`] has something to do next.
    pub fn wake_at(&self, now: u64) -> Option<u64> {
        if self.left {
            return None;
        }
        let idle = self.own.is_none() && self.candidates.is_empty();
        let timeouts = self.gov.open.values().map(|o| o.opened_at + self.gov.config.consensus_timeout);
        let commit = self.gov.commit_due().filter(|t| idle && *t > now);
        let recovery = self.gov.recovery_due().filter(|t| idle && !self.gov.recovery && *t > now);
        let recovery_mint = self.gov.commit_due().filter(|_| idle && self.gov.recovery).map(|_| now + 1);
        timeouts.chain(commit).chain(recovery).chain(recovery_mint).chain(self.freeze_until).min()
    }

    /// Reloads the group from the provider's storage (after a rollback).
    pub fn reload(&mut self, provider: &Provider) -> Result<()> {
        self.group = MlsGroup::load(provider.storage(), self.group.group_id())
            .map_err(CoreError::mls)?
            .ok_or_else(|| CoreError::StoreCorrupt("an MLS group vanished from the store".into()))?;
        Ok(())
    }

    /// The persisted form (its MLS state is persisted apart).
    pub fn record(&self) -> ConversationRecord {
        let (lamport, history, recent) = self.channel.parts();
        let own = self.own.clone().unwrap_or_default();
        let state = GroupStateRecord {
            governance: Some(self.gov.record()),
            deferred: self.deferred.clone(),
            own_commit: own.commit,
            own_welcome: own.welcome.unwrap_or_default(),
            own_joiners: own.joiners.iter().map(|j| j.as_bytes().to_vec()).collect(),
            own_ids: own.ids,
            own_actions: own.actions as u32,
            left: self.left,
        };
        ConversationRecord {
            id: self.id.as_str().to_owned(),
            kind: "group".into(),
            peer: Vec::new(),
            lamport,
            history,
            next_seq: self.meta.next_seq,
            unread: self.meta.unread,
            last_message_at: self.meta.last_message_at,
            created_at: self.meta.created_at,
            recent: recent.iter().map(|(id, _)| id.clone()).collect(),
            recent_own: recent.iter().map(|(_, own)| *own).collect(),
            group_state: state.encode_to_vec(),
        }
    }

    /// Rebuilds a group from its record and the MLS state in the provider. Peers'
    /// candidates of an open freeze are not kept; ours is, and the freeze starts again.
    pub fn restore(provider: &Provider, rec: ConversationRecord, now: u64) -> Result<Self> {
        let corrupt = |why: &str| CoreError::StoreCorrupt(format!("group record: {why}"));
        let id = ConversationId::parse(&rec.id).map_err(|_| corrupt("id"))?;
        let group_id = hex::decode(&rec.id).map_err(|_| corrupt("id"))?;
        let group = MlsGroup::load(provider.storage(), &GroupId::from_slice(&group_id))
            .map_err(CoreError::mls)?
            .ok_or_else(|| corrupt("no MLS state"))?;
        let state: GroupStateRecord = decode_record("group state", &rec.group_state)?;
        let gov = Governance::restore(state.governance.unwrap_or_default())?;
        let own = (!state.own_commit.is_empty() && group.pending_commit().is_some()).then(|| OwnCandidate {
            commit: state.own_commit,
            welcome: (!state.own_welcome.is_empty()).then_some(state.own_welcome),
            joiners: state
                .own_joiners
                .iter()
                .filter_map(|j| <[u8; 32]>::try_from(j.as_slice()).ok().map(InstallationId::from_bytes))
                .collect(),
            ids: state.own_ids,
            actions: state.own_actions as usize,
        });
        let recent = rec.recent.into_iter().zip(rec.recent_own).collect();
        Ok(GroupConversation {
            id,
            freeze_until: own.as_ref().map(|_| now + gov.config.freeze_duration),
            group,
            channel: Channel::restore(rec.lamport, rec.history, recent),
            meta: ConversationMeta {
                next_seq: rec.next_seq,
                unread: rec.unread,
                last_message_at: rec.last_message_at,
                created_at: rec.created_at,
            },
            gov,
            candidates: Vec::new(),
            own,
            deferred: state.deferred,
            future: Vec::new(),
            attested: false,
            left: state.left,
        })
    }
}

/// The group part of a conversation record.
#[derive(Clone, PartialEq, prost::Message)]
pub struct GroupStateRecord {
    /// Governance state.
    #[prost(message, optional, tag = "1")]
    pub governance: Option<GovernanceRecord>,
    /// Frames waiting for our candidate to resolve.
    #[prost(bytes = "vec", repeated, tag = "2")]
    pub deferred: Vec<Vec<u8>>,
    /// Our pending candidate's commit bytes.
    #[prost(bytes = "vec", tag = "3")]
    pub own_commit: Vec<u8>,
    /// Its Welcome.
    #[prost(bytes = "vec", tag = "4")]
    pub own_welcome: Vec<u8>,
    /// Its joiners' installations.
    #[prost(bytes = "vec", repeated, tag = "5")]
    pub own_joiners: Vec<Vec<u8>>,
    /// The approved proposals it carries.
    #[prost(uint32, repeated, tag = "6")]
    pub own_ids: Vec<u32>,
    /// How many actions it carries.
    #[prost(uint32, tag = "7")]
    pub own_actions: u32,
    /// No longer a member.
    #[prost(bool, tag = "8")]
    pub left: bool,
}
