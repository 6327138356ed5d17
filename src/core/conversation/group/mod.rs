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

use crate::core::conversation::mls_store::Provider;
use openmls::prelude::tls_codec::Serialize as _;
use openmls::prelude::*;
use prost::Message as _;

use super::metadata::Metadata;
use super::{mls, ConversationMeta};
use crate::core::account::{DelegateCredential, InstallationKey};
use crate::core::address::{AccountId, ConversationId, InstallationId};
use crate::core::demls::{
    group_id_for, CandidateKey, Config, Governance, GovernanceRecord, Permissions, Role, ScoreEvent,
    MAX_REELECTIONS,
};
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
    /// A sealed `MemberWelcome` for each joining installation (`invite`).
    pub welcomes: Vec<(InstallationId, Vec<u8>)>,
    /// Sealed ratchet trees (`GroupTree`) for the group topic, one per commit with joiners.
    pub trees: Vec<tree::SealedTree>,
    /// Our own chat messages among `publish`: (index, message id), kept for retransmission.
    pub chat_published: Vec<(usize, String)>,
    /// A chat message from an authenticated member.
    pub chat: Option<(DelegateCredential, ReliablePayload)>,
    /// Chat messages of later epochs that a catch-up could read only now, with when
    /// each was sent.
    pub replayed_chat: Vec<(DelegateCredential, ReliablePayload, u64)>,
    /// The member list changed (a commit was merged).
    pub members_changed: bool,
    /// This installation is no longer a member.
    pub left: bool,
    /// Candidates that were rejected, and why (reported as `error` events).
    pub rejected: Vec<String>,
    /// Permitted proposals of other members awaiting our vote.
    pub vote_requests: Vec<VoteRequest>,
    /// A message of a later epoch was kept: we may have missed a commit (the client
    /// reads the group topic back, see [`GroupConversation::behind_since`]).
    pub behind: bool,
    /// Signed device lists that valid Add requests carried (encoded
    /// `AccountSubmissionV1`s): the client's directory takes them in, so the added
    /// installations are confirmed without a lookup.
    pub lists: Vec<Vec<u8>>,
}

impl GroupOutput {
    /// Takes in the output of a message processed within this call (a later-epoch one
    /// replayed, sent at `sent_at`): every field, so that none is lost on the way.
    pub(super) fn absorb(&mut self, more: GroupOutput, sent_at: u64) {
        let GroupOutput {
            publish,
            welcomes,
            trees,
            chat_published,
            chat,
            replayed_chat,
            members_changed,
            left,
            rejected,
            vote_requests,
            behind,
            lists,
        } = more;
        let offset = self.publish.len();
        self.publish.extend(publish);
        self.chat_published.extend(chat_published.into_iter().map(|(i, id)| (i.saturating_add(offset), id)));
        self.welcomes.extend(welcomes);
        self.trees.extend(trees);
        if let Some((sender, chat)) = chat {
            self.replayed_chat.push((sender, chat, sent_at));
        }
        self.replayed_chat.extend(replayed_chat);
        self.members_changed |= members_changed;
        self.left |= left;
        self.rejected.extend(rejected);
        self.vote_requests.extend(vote_requests);
        self.behind |= behind;
        self.lists.extend(lists);
    }
}

/// A permitted proposal of another member that awaits our vote: the app's vote hook
/// decides it, or the client votes YES at once.
#[derive(Debug, Clone, PartialEq)]
pub struct VoteRequest {
    /// The proposal.
    pub proposal_id: u32,
    /// The account that asks (as its credential says).
    pub owner: Option<AccountId>,
    /// What it asks for.
    pub request: Request,
}

mod attest;
mod commit;
pub mod invite;
mod members;
mod proposal;
mod record;
mod removal;
mod resend;
mod snapshot;
mod timers;
pub mod tree;

use commit::{Candidate, OwnCandidate};
pub use record::GroupStateRecord;
pub use snapshot::GroupSnapshot;

/// One group conversation. Its `Debug` prints no content: deferred frames are
/// plaintext, and later-epoch messages are kept whole.
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
    future: Vec<(u64, std::sync::Arc<[u8]>, u64)>,
    /// The candidate later-epoch traffic proved taken (`attest`): the next selection
    /// takes it if its actions are all proposed, even if our own tally has not finished.
    attested: Option<attest::Attested>,
    /// Later-epoch messages tried as attestation in this freeze.
    trials: u32,
    /// Members whose score fell to the removal threshold, not yet proposed for removal.
    removals_due: Vec<Vec<u8>>,
    /// Our proposals and votes, kept to go out again (`resend`).
    resends: Vec<resend::Resend>,
    /// The epoch we joined (or created) the group in: traffic of earlier epochs, which a
    /// joiner reads back from the store, was never ours to read and is dropped quietly.
    joined_epoch: u64,
    /// No longer a member.
    pub left: bool,
}

impl std::fmt::Debug for GroupConversation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GroupConversation")
            .field("id", &self.id)
            .field("epoch", &self.epoch())
            .field("candidates", &self.candidates.len())
            .field("own", &self.own.is_some())
            .field("freeze_until", &self.freeze_until)
            .field("deferred", &self.deferred.len())
            .field("future", &self.future.len())
            .field("left", &self.left)
            .finish_non_exhaustive()
    }
}

fn leaf_credential(m: &Member) -> Option<DelegateCredential> {
    mls::member_credential(&m.credential, m.signature_key.as_slice()).ok()
}

/// The de-MLS member id of an installation: its MLS identity bytes (§2.8).
pub fn member_id(c: &DelegateCredential) -> Vec<u8> {
    c.identity_id().into_bytes()
}

/// The group-context extensions of a group named by `m`: the metadata (0xFF01), and the
/// required capabilities that list it. openmls accepts a group-context-extensions
/// proposal only if every non-default extension in it is required (valn1001), and every
/// member's leaf supports 0xFF01 (`mls::capabilities`).
fn metadata_extensions(m: &Metadata) -> Result<Extensions<GroupContext>> {
    Extensions::from_vec(vec![
        Extension::Unknown(mls::GROUP_METADATA_EXTENSION, UnknownExtension(m.encode())),
        Extension::RequiredCapabilities(RequiredCapabilitiesExtension::new(
            &[ExtensionType::Unknown(mls::GROUP_METADATA_EXTENSION)],
            &[],
            &[],
        )),
    ])
    .map_err(CoreError::mls)
}

/// A group context's extensions other than the metadata, encoded (compared as bytes).
fn other_extensions(e: &Extensions<GroupContext>) -> Vec<Vec<u8>> {
    e.iter()
        .filter(|x| x.extension_type() != ExtensionType::Unknown(mls::GROUP_METADATA_EXTENSION))
        .map(|x| x.tls_serialize_detached().unwrap_or_default())
        .collect()
}

/// The installations an account's signed list (an encoded `AccountSubmissionV1`) shows,
/// if it verifies under that account.
fn listed_devices(account: &AccountId, submission: &[u8]) -> Option<Vec<InstallationId>> {
    let s: crate::core::wire::AccountSubmissionV1 =
        crate::core::wire::decode("account list", submission).ok()?;
    if s.account_pub.as_slice() != account.as_bytes() {
        return None;
    }
    crate::core::account::DeviceBundle::verify(account, &s.payload, &s.signature).ok().map(|b| b.devices)
}

fn account_of(kp: &KeyPackage) -> Option<AccountId> {
    let leaf = kp.leaf_node();
    mls::member_credential(leaf.credential(), leaf.signature_key().as_slice()).ok()?.account
}

/// Most later-epoch messages kept while catching up.
const MAX_FUTURE: usize = 4096;
/// And their bytes.
const MAX_FUTURE_BYTES: usize = 16 << 20;

/// Most key packages committed at once (§3.6).
const MAX_ADDS: usize = mls::MAX_ADDS_PER_COMMIT;

impl GroupConversation {
    /// Creates a group holding us and the installations of `key_packages`, added in one
    /// commit (merged at once: nobody else can commit yet, and nobody has to process it,
    /// since everyone in it joins from a Welcome, so it is not even sent). The joiners get a Welcome with the sync
    /// and a ticket to the one sealed tree. The 50-per-commit rule of de-MLS stewards
    /// (§3.6) bounds what members must validate; at creation there are none, and batches
    /// would make the first joiners process every later batch and the founder publish a
    /// tree per batch (1,000 members: 20 commits and 20 trees, about 30 MB, against 3 MB).
    ///
    /// The group id commits to `nonce` and the permissions (`demls::group_id_for`).
    pub fn create(
        provider: &Provider,
        key: &InstallationKey,
        me: &DelegateCredential,
        nonce: [u8; 16],
        metadata: &Metadata,
        config: Config,
        key_packages: Vec<KeyPackage>,
    ) -> Result<(Self, GroupOutput)> {
        let group_id = group_id_for(&nonce, config.permissions);
        let group = MlsGroup::new_with_group_id(
            provider,
            key,
            &mls::create_group_config(metadata_extensions(metadata)?),
            GroupId::from_slice(&group_id),
            mls::credential_with_key(me),
        )
        .map_err(CoreError::mls)?;
        let mut convo = GroupConversation::fresh(group, Governance::new(config));
        convo.gov.nonce = nonce.to_vec();
        let mut out = GroupOutput { members_changed: true, ..GroupOutput::default() };
        if !key_packages.is_empty() {
            convo.gov.founding_epoch = 1;
            // The commit itself is not published: everyone it adds joins from a Welcome,
            // so it has no receiver (and at 10,000 X-Wing members it is 28 MB, past the
            // 256 segments of LIP-243).
            let own = convo.build_commit(provider, key, key_packages, Vec::new(), None)?;
            convo.group.merge_pending_commit(provider).map_err(CoreError::mls)?;
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
            attested: None,
            trials: 0,
            removals_due: Vec::new(),
            resends: Vec::new(),
            joined_epoch: 0,
            left: false,
        }
    }

    /// Joins from a `MemberWelcome`: the MLS Welcome, then the sync inside it (the
    /// configuration and scores; defaults if it is missing or does not check out). Also
    /// returns the credential of the member who signed the Welcome (who let us in).
    pub fn join(
        provider: &Provider,
        welcome: &MemberWelcome,
        tree: Option<RatchetTreeIn>,
    ) -> Result<(Self, Option<DelegateCredential>)> {
        let msg = crate::core::conversation::mls::decode_mls_message(&welcome.welcome_bytes)
            .map_err(|e| CoreError::decode("welcome", e))?;
        let MlsMessageBodyIn::Welcome(w) = msg.extract() else {
            return Err(CoreError::decode("welcome", "not a Welcome"));
        };
        let staged = StagedWelcome::new_from_welcome(provider, &mls::group_join_config(), w, tree)
            .map_err(mls::welcome_error)?;
        let inviter = staged
            .welcome_sender()
            .ok()
            .and_then(|leaf| mls::member_credential(leaf.credential(), leaf.signature_key().as_slice()).ok());
        let group = staged.into_group(provider).map_err(CoreError::mls)?;
        let mut convo = GroupConversation::fresh(group, Governance::default());
        convo.joined_epoch = convo.epoch();
        if let Ok(Some(sync)) = convo.read_sync(provider, &welcome.conversation_sync_bytes) {
            if let Some(mut config) = Config::from_sync(&sync) {
                // Permissions count only if the group id commits to them; otherwise
                // any member may ask (the welcomer's word alone is not enough).
                let committed = group_id_for(&sync.permissions_nonce, config.permissions);
                if committed.as_slice() != convo.group.group_id().as_slice() {
                    config.permissions = Permissions::default();
                }
                convo.gov = Governance::new(config);
                convo.gov.nonce = sync.permissions_nonce;
                convo.gov.founding_epoch = sync.founding_epoch;
                convo.gov.scores.0 = sync.scores.into_iter().map(|p| (p.member_id, p.score)).collect();
            }
        }
        Ok((convo, inviter))
    }

    fn read_sync(
        &mut self,
        provider: &Provider,
        bytes: &[u8],
    ) -> Result<Option<crate::core::wire::GroupSync>> {
        let msg = crate::core::conversation::mls::decode_mls_message(bytes)
            .map_err(|e| CoreError::decode("sync", e))?;
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
        let message_id = p.message_id.clone();
        if let Some(msg) = self.seal(provider, key, GroupAppFrame::chat(p).encode_to_vec())? {
            out.publish.push(msg);
            out.chat_published.push((0, message_id));
        }
        Ok(out)
    }

    /// A creation batch: from the founder (leaf 0), before the founding epoch, adds only.
    fn founding_commit(&self, founder: bool, staged: &StagedCommit) -> bool {
        founder
            && self.epoch() < self.gov.founding_epoch
            && staged.remove_proposals().next().is_none()
            && staged.update_proposals().next().is_none()
            && staged.queued_proposals().count() == staged.add_proposals().count()
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
        let mut out = self.process_message(provider, key, me, bytes, sent_at, now)?;
        self.propose_removals(provider, key, me, now, &mut out)?;
        Ok(out)
    }

    fn process_message(
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
        let Some(protocol) = mls::inbound(&self.group, bytes)? else { return Ok(out) };
        if protocol.epoch().as_u64() < self.joined_epoch {
            return Ok(out);
        }
        if protocol.epoch() > self.group.epoch() {
            // The group may have moved on; the clear epoch alone proves nothing (`attest`).
            let epoch = protocol.epoch().as_u64();
            self.keep_future(epoch, bytes, sent_at);
            if self.freeze_until.is_some() && self.epoch().checked_add(1) == Some(epoch) {
                if let Some(taken) = self.attest(provider, bytes) {
                    self.attested = Some(taken);
                    self.select(provider, key, me, now, &mut out)?;
                }
            }
            out.behind = self.behind_since().is_some();
            return Ok(out);
        }
        let processed = match self.group.process_message(provider, protocol) {
            Ok(p) => p,
            Err(e) => {
                return if mls::is_replay(&e) {
                    Ok(out)
                } else if mls::is_too_late(&e) {
                    Err(CoreError::TooLate(format!("{e:?}")))
                } else {
                    Err(CoreError::Decrypt(format!("{e:?}")))
                }
            }
        };
        let founder = matches!(processed.sender(), Sender::Member(i) if i.u32() == 0);
        let Some(sender) = mls::sender_credential(&self.group, processed.sender())? else { return Ok(out) };
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
            ProcessedMessageContent::StagedCommitMessage(staged)
                if self.founding_commit(founder, &staged) =>
            {
                // The founder's creation batches: merged as they come (§ create).
                self.group.merge_staged_commit(provider, *staged).map_err(CoreError::mls)?;
                out.members_changed = true;
                self.replay_future(provider, key, me, now, &mut out)?;
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

    /// Reloads the group from the provider's storage (after a rollback).
    pub fn reload(&mut self, provider: &Provider) -> Result<()> {
        self.group = MlsGroup::load(provider.storage(), self.group.group_id())
            .map_err(CoreError::mls)?
            .ok_or_else(|| CoreError::StoreCorrupt("an MLS group vanished from the store".into()))?;
        Ok(())
    }
}
