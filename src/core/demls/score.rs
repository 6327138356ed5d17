//! Local peer scores (PROTOCOL.md §3.6): every member starts at 100, events move it,
//! and at or below 0 a member becomes removable. The deltas are de-mls's placeholders.

use std::collections::BTreeMap;

/// The starting score.
pub const DEFAULT_SCORE: i64 = 100;
/// At or below this a member is removed (by a proposal any member may open).
pub const REMOVAL_THRESHOLD: i64 = 0;

/// What moved a score.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScoreEvent {
    /// A commit that does not apply.
    BrokenCommit,
    /// A commit whose proposals are not the voted ones.
    BrokenMlsProposal,
    /// The epoch steward stayed silent with approved work pending.
    CensorshipInactivity,
    /// A commit from a member not on the steward list.
    MisbehavingCommit,
    /// The selected commit's author.
    SuccessfulCommit,
    /// A listed steward whose valid candidate lost.
    HonestCommitAttempt,
}

impl ScoreEvent {
    /// The delta of the event.
    pub fn delta(self) -> i64 {
        match self {
            ScoreEvent::BrokenCommit => -50,
            ScoreEvent::BrokenMlsProposal => -30,
            ScoreEvent::CensorshipInactivity => -40,
            ScoreEvent::MisbehavingCommit => -10,
            ScoreEvent::SuccessfulCommit => 10,
            ScoreEvent::HonestCommitAttempt => 5,
        }
    }
}

/// Scores by member id; members never scored are at [`DEFAULT_SCORE`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scores(pub BTreeMap<Vec<u8>, i64>);

impl Scores {
    /// A member's score.
    pub fn get(&self, member: &[u8]) -> i64 {
        self.0.get(member).copied().unwrap_or(DEFAULT_SCORE)
    }

    /// Applies an event; true when it took the member to the removal threshold.
    pub fn apply(&mut self, member: &[u8], event: ScoreEvent) -> bool {
        let before = self.get(member);
        let after = before.saturating_add(event.delta());
        self.0.insert(member.to_vec(), after);
        before > REMOVAL_THRESHOLD && after <= REMOVAL_THRESHOLD
    }
}
