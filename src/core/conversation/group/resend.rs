//! Re-sending our proposals and votes (issue 12, found on the lossy simulator): a vote
//! lost on the way leaves a member with another tally than the steward's, which then
//! commits what that member refuses as unapproved, and the group forks. Nothing acks a
//! governance frame, so each of ours goes out again, the same bytes (receivers that had
//! it drop the copy by its digest; MLS would refuse it as a replay), 1, 3, 7, 15, 23 and
//! 31 s after the first, past the consensus timeout (30 s by default), while its proposal
//! is open or approved and not yet committed.

use std::sync::Arc;

use super::*;

/// Delays between the copies of a proposal or vote of ours (ms).
pub const RESEND_DELAYS_MS: [u64; 6] = [1_000, 2_000, 4_000, 8_000, 8_000, 8_000];
/// Governance frames of ours kept for re-sending (the oldest goes first).
const MAX_RESENDS: usize = 128;

/// One of our governance frames, as sent.
#[derive(Debug, Clone)]
pub(super) struct Resend {
    proposal_id: u32,
    bytes: Arc<[u8]>,
    next_at: u64,
    sent: usize,
}

impl GroupConversation {
    /// Keeps what `out` publishes for proposal `proposal_id` for re-sending.
    pub(super) fn keep_for_resend(&mut self, proposal_id: u32, out: &GroupOutput, now: u64) {
        let first = now.saturating_add(RESEND_DELAYS_MS[0]);
        for bytes in &out.publish {
            self.resends.push(Resend {
                proposal_id,
                bytes: bytes.as_slice().into(),
                next_at: first,
                sent: 0,
            });
        }
        let over = self.resends.len().saturating_sub(MAX_RESENDS);
        self.resends.drain(..over);
    }

    /// Publishes the copies due at `now`; forgets those whose proposal is decided and
    /// committed (or refused), and those sent as often as they go.
    pub(super) fn resend_due(&mut self, now: u64, out: &mut GroupOutput) {
        let gov = &self.gov;
        let pending = |id: u32| gov.is_open(id) || gov.approved.iter().any(|a| a.proposal.proposal_id == id);
        self.resends.retain(|r| pending(r.proposal_id));
        for r in &mut self.resends {
            if r.next_at > now {
                continue;
            }
            out.publish.push(r.bytes.to_vec());
            r.sent = r.sent.saturating_add(1);
            r.next_at = RESEND_DELAYS_MS.get(r.sent).map_or(u64::MAX, |d| now.saturating_add(*d));
        }
        self.resends.retain(|r| r.next_at != u64::MAX);
    }

    /// When the next copy is due.
    pub(super) fn resend_wake(&self) -> Option<u64> {
        self.resends.iter().map(|r| r.next_at).min()
    }
}
