//! A group's state outside openmls, kept before a call so that a failure puts all of
//! it back (issue 12): governance, candidates, our own candidate, the freeze, deferred
//! frames, later-epoch messages, the chat channel. openmls's own state is put back from
//! the client's mirror, and the `MlsGroup` reloaded from it.

use openmls::prelude::StagedCommit;

use super::attest::Attested;
use super::commit::{Candidate, Effect, OwnCandidate};
use super::GroupConversation;
use crate::core::conversation::mls_store::Provider;
use crate::core::conversation::ConversationMeta;
use crate::core::demls::{CandidateKey, Governance};
use crate::core::error::Result;
use crate::core::sds::Channel;

/// A peer's candidate with its staged commit encoded.
struct KeptCandidate {
    key: CandidateKey,
    committer: Vec<u8>,
    effect: Option<Effect>,
    staged: Vec<u8>,
}

/// Everything of a group but its `MlsGroup`. Staged commits are kept encoded (openmls
/// does not clone them); later-epoch messages are shared, not copied.
pub struct GroupSnapshot {
    channel: Channel,
    meta: ConversationMeta,
    gov: Governance,
    candidates: Vec<KeptCandidate>,
    own: Option<OwnCandidate>,
    freeze_until: Option<u64>,
    deferred: Vec<Vec<u8>>,
    future: Vec<(u64, std::sync::Arc<[u8]>, u64)>,
    attested: Option<Attested>,
    trials: u32,
    removals_due: Vec<Vec<u8>>,
    resends: Vec<super::resend::Resend>,
    left: bool,
}

impl GroupConversation {
    /// The state a failed call must leave as it was.
    pub fn snapshot(&self) -> GroupSnapshot {
        GroupSnapshot {
            channel: self.channel.clone(),
            meta: self.meta.clone(),
            gov: self.gov.clone(),
            candidates: keep(&self.candidates),
            own: self.own.clone(),
            freeze_until: self.freeze_until,
            deferred: self.deferred.clone(),
            future: self.future.clone(),
            attested: self.attested.clone(),
            trials: self.trials,
            removals_due: self.removals_due.clone(),
            resends: self.resends.clone(),
            left: self.left,
        }
    }

    /// Puts a snapshot back, and the `MlsGroup` as openmls's storage now holds it (the
    /// caller has put that storage back first).
    pub fn rewind(&mut self, provider: &Provider, s: GroupSnapshot) -> Result<()> {
        self.channel = s.channel;
        self.meta = s.meta;
        self.gov = s.gov;
        self.candidates = unkeep(s.candidates);
        self.own = s.own;
        self.freeze_until = s.freeze_until;
        self.deferred = s.deferred;
        self.future = s.future;
        self.attested = s.attested;
        self.trials = s.trials;
        self.removals_due = s.removals_due;
        self.resends = s.resends;
        self.left = s.left;
        self.reload(provider)
    }
}

/// Candidates as a snapshot keeps them (openmls does not clone a staged commit).
fn keep(candidates: &[Candidate]) -> Vec<KeptCandidate> {
    candidates
        .iter()
        .filter_map(|c| {
            let staged = postcard::to_allocvec(&*c.staged).ok()?;
            Some(KeptCandidate {
                key: c.key.clone(),
                committer: c.committer.clone(),
                effect: c.effect.clone(),
                staged,
            })
        })
        .collect()
}

fn unkeep(kept: Vec<KeptCandidate>) -> Vec<Candidate> {
    kept.into_iter()
        .filter_map(|k| {
            let staged: StagedCommit = postcard::from_bytes(&k.staged).ok()?;
            Some(Candidate { key: k.key, committer: k.committer, effect: k.effect, staged: Box::new(staged) })
        })
        .collect()
}
