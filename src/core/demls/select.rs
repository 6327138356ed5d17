//! The order of concurrent commit candidates (PROTOCOL.md §3.6): (1) most proposals;
//! (2) the epoch steward first; (3) smallest steward member id; (4) smallest SHA-256 of
//! the commit message. Every member that holds the same candidates picks the same one.

use std::cmp::Ordering;

use sha2::{Digest, Sha256};

/// What a candidate is ranked by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CandidateKey {
    /// How many governance actions it commits.
    pub actions: usize,
    /// Committed by the epoch steward.
    pub by_epoch_steward: bool,
    /// The committer's member id.
    pub steward: Vec<u8>,
    /// SHA-256 of the commit message bytes.
    pub commit_hash: [u8; 32],
}

impl CandidateKey {
    /// The key of a commit.
    pub fn new(actions: usize, by_epoch_steward: bool, steward: Vec<u8>, commit: &[u8]) -> Self {
        CandidateKey { actions, by_epoch_steward, steward, commit_hash: Sha256::digest(commit).into() }
    }
}

impl Ord for CandidateKey {
    /// `Less` means "preferred".
    fn cmp(&self, other: &Self) -> Ordering {
        other
            .actions
            .cmp(&self.actions)
            .then(other.by_epoch_steward.cmp(&self.by_epoch_steward))
            .then(self.steward.cmp(&other.steward))
            .then(self.commit_hash.cmp(&other.commit_hash))
    }
}

impl PartialOrd for CandidateKey {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn more_actions_then_the_epoch_steward_then_the_smaller_id_win() {
        let a = CandidateKey::new(2, false, b"zz".to_vec(), b"a");
        let b = CandidateKey::new(1, true, b"aa".to_vec(), b"b");
        assert!(a < b, "more actions first");
        let c = CandidateKey::new(1, false, b"aa".to_vec(), b"c");
        assert!(b < c, "the epoch steward first");
        let d = CandidateKey::new(1, false, b"ab".to_vec(), b"d");
        assert!(c < d, "smaller steward id");
        let mut v = vec![d.clone(), a.clone(), c.clone(), b.clone()];
        v.sort();
        assert_eq!(v, vec![a, b, c, d]);
    }
}
