//! The steward list (PROTOCOL.md §3.5): members ordered by
//! `SHA-256(election_epoch u64 BE ‖ retry_round u32 BE ‖ member_id ‖ conversation_id)`,
//! ties broken by member id; the first `sn` are the stewards, the first of them the
//! epoch steward and the next the backup.
//!
//! Departure: the list is derived from the MLS member list at every epoch, by every
//! member alike, instead of being elected by a vote. The ordering is de-MLS's, so the
//! result is the one an election would have to reproduce; it costs no messages and a
//! joiner derives it from its Welcome.

use sha2::{Digest, Sha256};

/// The election hash of one member.
pub fn election_hash(epoch: u64, retry: u32, member: &[u8], conversation_id: &str) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(epoch.to_be_bytes());
    h.update(retry.to_be_bytes());
    h.update(member);
    h.update(conversation_id.as_bytes());
    h.finalize().into()
}

/// The first `sn` of `members` in election order (all of them if there are fewer).
pub fn steward_list(
    epoch: u64,
    retry: u32,
    conversation_id: &str,
    members: &[Vec<u8>],
    sn: usize,
) -> Vec<Vec<u8>> {
    let mut keyed: Vec<([u8; 32], &Vec<u8>)> =
        members.iter().map(|m| (election_hash(epoch, retry, m, conversation_id), m)).collect();
    keyed.sort();
    keyed.dedup_by(|a, b| a.1 == b.1);
    keyed.into_iter().take(sn.max(1)).map(|(_, m)| m.clone()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_list_is_a_function_of_epoch_retry_and_members() {
        let members: Vec<Vec<u8>> = (0..10u8).map(|i| vec![i; 4]).collect();
        let a = steward_list(3, 0, "c0ffee", &members, 3);
        let mut shuffled = members.clone();
        shuffled.reverse();
        assert_eq!(a, steward_list(3, 0, "c0ffee", &shuffled, 3), "member order does not matter");
        assert_eq!(a.len(), 3);
        assert_ne!(a, steward_list(3, 1, "c0ffee", &members, 3), "a retry reshuffles");
        assert_eq!(steward_list(0, 0, "x", &members[..1], 2).len(), 1, "fewer members than slots");
        let h = election_hash(3, 0, &members[0], "c0ffee");
        let mut expected = Vec::new();
        expected.extend_from_slice(&3u64.to_be_bytes());
        expected.extend_from_slice(&0u32.to_be_bytes());
        expected.extend_from_slice(&members[0]);
        expected.extend_from_slice(b"c0ffee");
        assert_eq!(h, <[u8; 32]>::from(Sha256::digest(&expected)));
    }
}
