//! The persisted form of a group: its conversation record with the de-MLS state
//! (governance, deferred frames, our pending candidate).

use super::*;
use crate::core::conversation::{base_record, restore_base};

impl GroupConversation {
    /// The persisted form (its MLS state is persisted apart).
    pub fn record(&self) -> ConversationRecord {
        let own = self.own.clone().unwrap_or_default();
        let state = GroupStateRecord {
            governance: Some(self.gov.record()),
            deferred: self.deferred.clone(),
            own_commit: own.commit,
            own_welcome: own.welcome.unwrap_or_default(),
            own_joiners: own.joiners.iter().map(|j| j.installation.as_bytes().to_vec()).collect(),
            own_joiner_refs: own.joiners.iter().map(|j| j.kp_ref.clone()).collect(),
            own_joiner_init_keys: own.joiners.iter().map(|j| j.init_key.clone()).collect(),
            candidates: self.candidates.iter().filter_map(Candidate::record).collect(),
            own_ids: own.ids,
            own_actions: u32::try_from(own.actions).unwrap_or(u32::MAX),
            left: self.left,
            joined_epoch: self.joined_epoch,
        };
        ConversationRecord {
            group_state: state.encode_to_vec(),
            ..base_record(&self.id, "group", &self.channel, &self.meta)
        }
    }

    /// Rebuilds a group from its record and the MLS state in the provider. Our candidate
    /// and peers' candidates of an open freeze are kept (a peer's commit cannot be
    /// processed twice: its key generation is spent), and the freeze starts again.
    pub fn restore(provider: &Provider, mut rec: ConversationRecord, now: u64) -> Result<Self> {
        let (id, group, channel, meta) = restore_base(provider, &mut rec, &super::mls::group_join_config())?;
        let state: GroupStateRecord = decode_record("group state", &rec.group_state)?;
        let gov = Governance::restore(state.governance.unwrap_or_default())?;
        let own = (!state.own_commit.is_empty() && group.pending_commit().is_some()).then(|| OwnCandidate {
            commit: state.own_commit,
            welcome: (!state.own_welcome.is_empty()).then_some(state.own_welcome),
            joiners: state
                .own_joiners
                .iter()
                .zip(state.own_joiner_refs)
                .zip(state.own_joiner_init_keys.into_iter().chain(std::iter::repeat(Vec::new())))
                .filter_map(|((j, kp_ref), init_key)| {
                    <[u8; 32]>::try_from(j.as_slice()).ok().map(|j| commit::Joiner {
                        installation: InstallationId::from_bytes(j),
                        kp_ref,
                        init_key,
                    })
                })
                .collect(),
            ids: state.own_ids,
            actions: state.own_actions as usize,
        });
        let candidates: Vec<Candidate> =
            state.candidates.iter().filter_map(|c| Candidate::restore(&group, c)).collect();
        let frozen = own.is_some() || !candidates.is_empty();
        Ok(GroupConversation {
            id,
            freeze_until: frozen.then_some(now.saturating_add(gov.config.freeze_duration)),
            group,
            channel,
            meta,
            gov,
            candidates,
            own,
            deferred: state.deferred,
            future: Vec::new(),
            attested: None,
            trials: 0,
            removals_due: Vec::new(),
            resends: Vec::new(),
            joined_epoch: state.joined_epoch,
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
    /// Its joiners' key package references, in the order of `own_joiners`.
    #[prost(bytes = "vec", repeated, tag = "9")]
    pub own_joiner_refs: Vec<Vec<u8>>,
    /// Their key packages' init keys, in the same order.
    #[prost(bytes = "vec", repeated, tag = "10")]
    pub own_joiner_init_keys: Vec<Vec<u8>>,
    /// Peers' candidates of the open freeze.
    #[prost(message, repeated, tag = "11")]
    pub candidates: Vec<CandidateRecord>,
    /// The epoch this installation joined the group in (0: created it, or a record
    /// from before this field).
    #[prost(uint64, tag = "12")]
    pub joined_epoch: u64,
}

/// A peer's commit candidate, staged: what selection needs after a restart.
#[derive(Clone, PartialEq, prost::Message)]
pub struct CandidateRecord {
    /// The committer's member id.
    #[prost(bytes = "vec", tag = "1")]
    pub committer: Vec<u8>,
    /// How many governance actions it carries.
    #[prost(uint32, tag = "2")]
    pub actions: u32,
    /// Committed by the epoch steward (of round 0).
    #[prost(bool, tag = "3")]
    pub by_epoch_steward: bool,
    /// SHA-256 of the commit message.
    #[prost(bytes = "vec", tag = "4")]
    pub commit_hash: Vec<u8>,
    /// openmls's `StagedCommit`, postcard (as the MLS store keeps openmls's own).
    #[prost(bytes = "vec", tag = "5")]
    pub staged: Vec<u8>,
}

impl Candidate {
    fn record(&self) -> Option<CandidateRecord> {
        Some(CandidateRecord {
            committer: self.committer.clone(),
            actions: u32::try_from(self.key.actions).unwrap_or(u32::MAX),
            by_epoch_steward: self.key.by_epoch_steward,
            commit_hash: self.key.commit_hash.to_vec(),
            staged: postcard::to_allocvec(self.staged.as_ref()).ok()?,
        })
    }

    fn restore(group: &MlsGroup, rec: &CandidateRecord) -> Option<Self> {
        let staged: StagedCommit = postcard::from_bytes(&rec.staged).ok()?;
        let key = CandidateKey {
            actions: rec.actions as usize,
            by_epoch_steward: rec.by_epoch_steward,
            steward: rec.committer.clone(),
            commit_hash: <[u8; 32]>::try_from(rec.commit_hash.as_slice()).ok()?,
        };
        let effect = GroupConversation::effect_in(group, &staged);
        Some(Candidate { key, committer: rec.committer.clone(), effect, staged: Box::new(staged) })
    }
}
