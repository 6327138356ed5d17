//! Removal of a member whose local score fell to the threshold (PROTOCOL.md §3.6): one
//! member, chosen alike by everyone (the first steward that is not the target, else the
//! first other member), opens a Remove proposal; the rest vote on it as on any other.

use super::*;
use crate::core::demls::score::REMOVAL_THRESHOLD;

impl GroupConversation {
    /// Applies a score event; a member that reaches the threshold is queued for removal.
    pub(super) fn penalise(&mut self, member: &[u8], event: ScoreEvent) {
        if self.gov.scores.apply(member, event) && !self.removals_due.iter().any(|m| m.as_slice() == member) {
            self.removals_due.push(member.to_vec());
        }
    }

    /// Opens the Remove proposals this member is the one to open.
    pub(super) fn propose_removals(
        &mut self,
        provider: &Provider,
        key: &InstallationKey,
        me: &DelegateCredential,
        now: u64,
        out: &mut GroupOutput,
    ) -> Result<()> {
        if self.left {
            self.removals_due.clear();
            return Ok(());
        }
        for target in std::mem::take(&mut self.removals_due) {
            if self.gov.scores.get(&target) > REMOVAL_THRESHOLD {
                continue;
            }
            let creds = self.credentials();
            let Some(account) = creds.iter().find(|c| member_id(c) == target).and_then(|c| c.account.clone())
            else {
                continue; // gone already
            };
            let stewards = self.stewards();
            let mut order: Vec<Vec<u8>> = stewards.iter().filter(|s| **s != target).cloned().collect();
            let mut rest: Vec<Vec<u8>> = self.member_ids().into_iter().filter(|m| *m != target).collect();
            rest.sort();
            order.extend(rest);
            if order.first() != Some(&member_id(me)) || me.account.as_ref() == Some(&account) {
                continue;
            }
            let digest = <sha2::Sha256 as sha2::Digest>::digest(
                [b"score-removal".as_slice(), account.as_bytes()].concat(),
            );
            let id = digest.first_chunk::<4>().map_or(0, |b| u32::from_be_bytes(*b));
            let request =
                Request::Remove(crate::core::wire::RemoveAccount { account: account.as_bytes().to_vec() });
            let more = self.propose(
                provider,
                key,
                me,
                GroupProposal { proposal_id: id, request: Some(request), created_at: now },
                now,
            )?;
            out.publish.extend(more.publish);
        }
        Ok(())
    }
}
