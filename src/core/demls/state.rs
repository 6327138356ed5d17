//! The governance state of one group as every member keeps it: open proposals with
//! their ballots, the approved queue awaiting a commit, scores, recovery mode. Pure
//! bookkeeping over member ids and time; persisted as [`GovernanceRecord`].

use std::collections::BTreeMap;

use prost::Message as _;

use super::{Ballot, Config, Decision, Scores};
use crate::core::error::Result;
use crate::core::store::decode_record;
use crate::core::wire::{GroupProposal, GroupSync, PeerScore};

/// A proposal being voted on.
#[derive(Debug, Clone, PartialEq)]
pub struct Open {
    /// The proposal.
    pub proposal: GroupProposal,
    /// Its ballot.
    pub ballot: Ballot,
    /// When this member first saw it (ms).
    pub opened_at: u64,
}

/// An approved proposal waiting for a commit.
#[derive(Debug, Clone, PartialEq)]
pub struct Approved {
    /// The proposal.
    pub proposal: GroupProposal,
    /// When it was approved here (ms).
    pub at: u64,
}

/// One group's governance state.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Governance {
    /// Timers and knobs.
    pub config: Config,
    /// Proposals being voted on, by id.
    pub open: BTreeMap<u32, Open>,
    /// Approved proposals, oldest first (FIFO into commits).
    pub approved: Vec<Approved>,
    /// Ids decided already (a late copy is not opened again), newest last.
    pub decided: Vec<u32>,
    /// Local peer scores.
    pub scores: Scores,
    /// Any member may commit (no steward produced a commit in time, even re-elected).
    pub recovery: bool,
    /// Re-elections in this epoch (L2): the steward list is drawn again with this
    /// `retry_round` when no listed steward committed in time.
    pub retry_round: u32,
    /// The epoch the founder's creation commits end at: before it, the founder adds the
    /// initial members 50 per commit with no vote (they were named at creation).
    pub founding_epoch: u64,
    /// The nonce the group id commits to with the permissions (empty for a group whose
    /// id commits to nothing, such as one libchat made).
    pub nonce: Vec<u8>,
    /// Each member's proposal allowance (not persisted: full again after a restart).
    pub allowances: BTreeMap<Vec<u8>, Allowance>,
    /// Votes read before their proposal (its copies were lost or are late): (proposal,
    /// member, vote), cast when it opens; the oldest go first past [`MAX_EARLY_VOTES`].
    pub early: Vec<(u32, Vec<u8>, bool)>,
}

/// Votes kept for proposals not seen yet.
pub const MAX_EARLY_VOTES: usize = 256;

/// A member's proposal allowance: [`PROPOSAL_BURST`] at once, one more every
/// [`PROPOSAL_REFILL_MS`]. Proposals beyond it are not opened (every member drops them
/// alike, so none is approved), which bounds the votes one member can make the whole
/// group publish. The burst holds a whole `addMembers` of one commit's 50 adds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Allowance {
    left: u64,
    at: u64,
}

/// Proposals a member may make at once.
pub const PROPOSAL_BURST: u64 = 64;
/// And how long until one more is allowed (ms).
pub const PROPOSAL_REFILL_MS: u64 = 1_000;

/// Re-elections in one epoch before recovery mode (de-MLS 4.1: 2).
pub const MAX_REELECTIONS: u32 = 2;

/// How many decided ids are remembered.
const DECIDED_CAP: usize = 1024;

impl Governance {
    /// A new state with `config`.
    pub fn new(config: Config) -> Self {
        Governance { config, ..Governance::default() }
    }

    /// Opens a proposal with `expected` voters and its owner's YES; returns the decision
    /// if that already decides it. A known or decided id is ignored (`None`).
    pub fn open(
        &mut self,
        proposal: GroupProposal,
        owner: &[u8],
        expected: usize,
        now: u64,
    ) -> Option<Decision> {
        let id = proposal.proposal_id;
        if self.open.contains_key(&id) || self.decided.contains(&id) {
            return None;
        }
        let mut ballot = Ballot::new(expected);
        ballot.cast(owner, true);
        let (early, rest): (Vec<_>, Vec<_>) =
            std::mem::take(&mut self.early).into_iter().partition(|v| v.0 == id);
        self.early = rest;
        for (_, member, yes) in early {
            ballot.cast(&member, yes);
        }
        self.open.insert(id, Open { proposal, ballot, opened_at: now });
        self.check(id, now)
    }

    /// Takes one proposal from `member`'s allowance; false when it has none left.
    pub fn allow(&mut self, member: &[u8], now: u64) -> bool {
        let a = self.allowances.entry(member.to_vec()).or_insert(Allowance { left: PROPOSAL_BURST, at: now });
        let refill = now.saturating_sub(a.at) / PROPOSAL_REFILL_MS;
        if refill > 0 {
            a.left = a.left.saturating_add(refill).min(PROPOSAL_BURST);
            a.at = a.at.saturating_add(refill.saturating_mul(PROPOSAL_REFILL_MS));
        }
        if a.left == 0 {
            return false;
        }
        a.left = a.left.saturating_sub(1);
        true
    }

    /// Whether `member` has a proposal left now (without taking it).
    pub fn has_allowance(&self, member: &[u8], now: u64) -> bool {
        self.allowances
            .get(member)
            .is_none_or(|a| a.left > 0 || now.saturating_sub(a.at) >= PROPOSAL_REFILL_MS)
    }

    /// Whether `member` voted on an open proposal.
    pub fn has_voted(&self, id: u32, member: &[u8]) -> bool {
        self.open.get(&id).is_some_and(|o| o.ballot.votes.contains_key(member))
    }

    /// Whether a proposal is open.
    pub fn is_open(&self, id: u32) -> bool {
        self.open.contains_key(&id)
    }

    /// Records a vote; returns the decision if it decided the proposal.
    pub fn vote(&mut self, id: u32, member: &[u8], yes: bool, now: u64) -> Option<Decision> {
        let Some(open) = self.open.get_mut(&id) else {
            if !self.decided.contains(&id) {
                self.early.push((id, member.to_vec(), yes));
                let over = self.early.len().saturating_sub(MAX_EARLY_VOTES);
                self.early.drain(..over);
            }
            return None;
        };
        if !open.ballot.cast(member, yes) {
            return None;
        }
        self.check(id, now)
    }

    fn check(&mut self, id: u32, now: u64) -> Option<Decision> {
        let d = self.open.get(&id)?.ballot.decide()?;
        self.finish(id, d, now);
        Some(d)
    }

    fn finish(&mut self, id: u32, d: Decision, now: u64) {
        if let Some(open) = self.open.remove(&id) {
            if d == Decision::Yes {
                self.approved.push(Approved { proposal: open.proposal, at: now });
            }
            self.decided.push(id);
            if self.decided.len() > DECIDED_CAP {
                self.decided.remove(0);
            }
        }
    }

    /// Decides every proposal whose consensus timeout has passed.
    pub fn timeouts(&mut self, now: u64) -> Vec<(u32, Decision)> {
        let due: Vec<u32> = self
            .open
            .iter()
            .filter(|(_, o)| now >= o.opened_at.saturating_add(self.config.consensus_timeout))
            .map(|(id, _)| *id)
            .collect();
        let mut out = Vec::new();
        for id in due {
            if let Some(o) = self.open.get(&id) {
                let d = o.ballot.decide_at_timeout(self.config.liveness_yes);
                self.finish(id, d, now);
                out.push((id, d));
            }
        }
        out
    }

    /// When stewards commit: the commit window after the oldest approval.
    pub fn commit_due(&self) -> Option<u64> {
        self.approved.first().map(|a| a.at.saturating_add(self.config.commit_batch_window))
    }

    /// When the next liveness step is due if no candidate came: the window, the freeze,
    /// and a retry window per step; a re-election (L2) while rounds are left, then
    /// recovery mode (L3).
    pub fn recovery_due(&self) -> Option<u64> {
        let retries = u64::from(self.retry_round).saturating_add(1);
        let after =
            self.config.freeze_duration.saturating_add(self.config.retry_window.saturating_mul(retries));
        self.commit_due().map(|t| t.saturating_add(after))
    }

    /// The earliest timer: a proposal's timeout, the commit window or recovery.
    pub fn next_deadline(&self) -> Option<u64> {
        let timeouts = self.open.values().map(|o| o.opened_at.saturating_add(self.config.consensus_timeout));
        timeouts.chain(self.commit_due()).chain(if self.recovery { None } else { self.recovery_due() }).min()
    }

    /// Drops approved proposals that a merged commit carried.
    pub fn committed(&mut self, ids: &[u32]) {
        self.approved.retain(|a| !ids.contains(&a.proposal.proposal_id));
        self.recovery = false;
        self.retry_round = 0;
    }

    /// What a joiner receives.
    pub fn sync(&self) -> GroupSync {
        let mut s = GroupSync {
            founding_epoch: self.founding_epoch,
            permissions_nonce: self.nonce.clone(),
            scores: self
                .scores
                .0
                .iter()
                .map(|(m, s)| PeerScore { member_id: m.clone(), score: *s })
                .collect(),
            ..GroupSync::default()
        };
        self.config.to_sync(&mut s);
        s
    }

    /// The persisted form.
    pub fn record(&self) -> GovernanceRecord {
        GovernanceRecord {
            sync: Some(self.sync()),
            open: self
                .open
                .values()
                .map(|o| OpenRecord {
                    proposal: o.proposal.encode_to_vec(),
                    expected: u32::try_from(o.ballot.expected).unwrap_or(u32::MAX),
                    voters: o.ballot.votes.keys().cloned().collect(),
                    votes: o.ballot.votes.values().copied().collect(),
                    opened_at: o.opened_at,
                })
                .collect(),
            approved: self.approved.iter().map(|a| a.proposal.encode_to_vec()).collect(),
            approved_at: self.approved.iter().map(|a| a.at).collect(),
            decided: self.decided.clone(),
            recovery: self.recovery,
            retry_round: self.retry_round,
        }
    }

    /// Rebuilds the state from its record.
    pub fn restore(rec: GovernanceRecord) -> Result<Self> {
        let sync = rec.sync.unwrap_or_default();
        let mut g = Governance::new(Config::from_sync(&sync).unwrap_or_default());
        g.founding_epoch = sync.founding_epoch;
        g.nonce = sync.permissions_nonce;
        g.scores = Scores(sync.scores.into_iter().map(|p| (p.member_id, p.score)).collect());
        for o in rec.open {
            let proposal: GroupProposal = decode_record("group proposal", &o.proposal)?;
            let mut ballot = Ballot::new(o.expected as usize);
            for (m, v) in o.voters.iter().zip(o.votes) {
                ballot.cast(m, v);
            }
            g.open.insert(proposal.proposal_id, Open { proposal, ballot, opened_at: o.opened_at });
        }
        for (p, at) in rec.approved.iter().zip(rec.approved_at) {
            g.approved.push(Approved { proposal: decode_record("group proposal", p)?, at });
        }
        g.decided = rec.decided;
        g.recovery = rec.recovery;
        g.retry_round = rec.retry_round;
        Ok(g)
    }
}

/// The persisted governance state (a field of the conversation record).
#[derive(Clone, PartialEq, prost::Message)]
pub struct GovernanceRecord {
    /// Configuration and scores.
    #[prost(message, optional, tag = "1")]
    pub sync: Option<GroupSync>,
    /// Open proposals.
    #[prost(message, repeated, tag = "2")]
    pub open: Vec<OpenRecord>,
    /// Approved proposals (encoded), oldest first.
    #[prost(bytes = "vec", repeated, tag = "3")]
    pub approved: Vec<Vec<u8>>,
    /// When each was approved (ms).
    #[prost(uint64, repeated, tag = "4")]
    pub approved_at: Vec<u64>,
    /// Decided ids.
    #[prost(uint32, repeated, tag = "5")]
    pub decided: Vec<u32>,
    /// Recovery mode.
    #[prost(bool, tag = "6")]
    pub recovery: bool,
    /// Re-elections in this epoch.
    #[prost(uint32, tag = "7")]
    pub retry_round: u32,
}

/// A persisted open proposal.
#[derive(Clone, PartialEq, prost::Message)]
pub struct OpenRecord {
    /// The encoded proposal.
    #[prost(bytes = "vec", tag = "1")]
    pub proposal: Vec<u8>,
    /// Expected voters.
    #[prost(uint32, tag = "2")]
    pub expected: u32,
    /// Voter member ids.
    #[prost(bytes = "vec", repeated, tag = "3")]
    pub voters: Vec<Vec<u8>>,
    /// Their votes, in the same order.
    #[prost(bool, repeated, tag = "4")]
    pub votes: Vec<bool>,
    /// When it was first seen (ms).
    #[prost(uint64, tag = "5")]
    pub opened_at: u64,
}
