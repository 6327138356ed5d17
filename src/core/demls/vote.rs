//! One ballot per proposal and the decision rule (PROTOCOL.md §3.4).
//!
//! The threshold is de-MLS's: with n expected voters, YES wins with at least ⌈2n/3⌉ YES
//! votes; for n ≤ 2 every member must vote YES. A proposal is rejected as soon as YES can
//! no longer win. Two departures, both for safety:
//! - silent voters are counted only at the timeout, never before (the tally bug fixed in
//!   hashgraph-like-consensus 0.7, §3.9.1), so every member decides alike;
//! - they count as YES (`liveness_yes`) only if a strict majority of the members voted. Two
//!   halves of a partitioned group can then never both approve, which is what forks a
//!   group under loss (§3.9.3): the minority stalls and catches up after the heal.

use std::collections::BTreeMap;

/// The outcome of a ballot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Approved.
    Yes,
    /// Rejected.
    No,
}

/// The votes on one proposal, by member id.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ballot {
    /// How many members were expected to vote (the member count when it opened).
    pub expected: usize,
    /// Member id → vote. A member's first vote counts; later ones are ignored.
    pub votes: BTreeMap<Vec<u8>, bool>,
}

impl Ballot {
    /// A ballot for `expected` voters.
    pub fn new(expected: usize) -> Self {
        Ballot { expected: expected.max(1), votes: BTreeMap::new() }
    }

    /// Records a vote; false if this member had voted already.
    pub fn cast(&mut self, member: &[u8], yes: bool) -> bool {
        if self.votes.contains_key(member) {
            return false;
        }
        self.votes.insert(member.to_vec(), yes);
        true
    }

    fn counts(&self) -> (usize, usize) {
        let yes = self.votes.values().filter(|v| **v).count();
        (yes, self.votes.len().saturating_sub(yes))
    }

    /// YES votes needed: ⌈2n/3⌉, or all of them for n ≤ 2.
    pub fn threshold(&self) -> usize {
        let n = self.expected;
        if n <= 2 {
            n
        } else {
            n.saturating_mul(2).div_ceil(3)
        }
    }

    /// The decision from the votes alone, if there is one yet.
    pub fn decide(&self) -> Option<Decision> {
        let (yes, no) = self.counts();
        let q = self.threshold();
        if yes >= q {
            Some(Decision::Yes)
        } else if no > self.expected.saturating_sub(q) {
            Some(Decision::No)
        } else {
            None
        }
    }

    /// The decision at the timeout: silent voters count as YES when `liveness_yes` and a
    /// strict majority voted; otherwise what the votes say, and NO if they say nothing.
    pub fn decide_at_timeout(&self, liveness_yes: bool) -> Decision {
        if let Some(d) = self.decide() {
            return d;
        }
        let (yes, no) = self.counts();
        let voted = yes.saturating_add(no);
        let silent = self.expected.saturating_sub(voted);
        if liveness_yes
            && voted.saturating_mul(2) > self.expected
            && yes.saturating_add(silent) >= self.threshold()
        {
            Decision::Yes
        } else {
            Decision::No
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ballot(n: usize, yes: usize, no: usize) -> Ballot {
        let mut b = Ballot::new(n);
        for i in 0..yes {
            b.cast(format!("y{i}").as_bytes(), true);
        }
        for i in 0..no {
            b.cast(format!("n{i}").as_bytes(), false);
        }
        b
    }

    #[test]
    fn two_thirds_of_yes_votes_decide_before_the_timeout() {
        assert_eq!(ballot(3, 2, 0).decide(), Some(Decision::Yes));
        assert_eq!(ballot(3, 1, 0).decide(), None);
        assert_eq!(ballot(3, 1, 2).decide(), Some(Decision::No));
        assert_eq!(ballot(20, 13, 0).decide(), None, "13 of 20 is below ⌈40/3⌉ = 14");
        assert_eq!(ballot(20, 14, 0).decide(), Some(Decision::Yes));
    }

    #[test]
    fn small_groups_need_everyone() {
        assert_eq!(ballot(2, 1, 0).decide(), None);
        assert_eq!(ballot(2, 2, 0).decide(), Some(Decision::Yes));
        assert_eq!(ballot(1, 1, 0).decide(), Some(Decision::Yes));
        assert_eq!(ballot(2, 1, 0).decide_at_timeout(true), Decision::No, "one of two is no majority");
    }

    #[test]
    fn silent_voters_count_at_the_timeout_only_behind_a_majority() {
        // A 7/13 partition of 20: the 13 approve at the timeout, the 7 cannot.
        assert_eq!(ballot(20, 13, 0).decide_at_timeout(true), Decision::Yes);
        assert_eq!(ballot(20, 7, 0).decide_at_timeout(true), Decision::No);
        assert_eq!(ballot(20, 13, 0).decide_at_timeout(false), Decision::No);
        // A member votes once.
        let mut b = ballot(3, 1, 0);
        assert!(!b.cast(b"y0", false));
        assert_eq!(b.decide_at_timeout(true), Decision::No, "1 of 3 voted: no majority");
    }
}
