//! Later-epoch traffic during a freeze (PROTOCOL.md §3.6, commit attestation): the group
//! moved on, so one of our candidates was taken. The epoch in a PrivateMessage header is
//! not authenticated, so a raised epoch proves nothing: a message counts only once it
//! decrypts in the epoch that one of our candidates leads to, merged on trial and rolled
//! back. The trial names the taken candidate, and only that one is then selected.
//! Trials are bounded per freeze, and kept later-epoch messages by count and bytes.

use openmls::prelude::*;

use super::{GroupConversation, MAX_FUTURE, MAX_FUTURE_BYTES};
use crate::core::conversation::mls;
use crate::core::conversation::mls_store::Provider;

/// Most later-epoch messages tried as attestation in one freeze (each costs a trial
/// merge per candidate).
const MAX_TRIALS: u32 = 4;

/// Which candidate later-epoch traffic proved taken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Attested {
    /// Our own pending commit.
    Own,
    /// A peer's candidate, by its commit hash.
    Peer([u8; 32]),
}

impl GroupConversation {
    /// When the oldest kept message of a later epoch was sent, if any is kept: the
    /// commit we missed came before it. (The clear epoch may be forged: this only asks
    /// for a read of the group topic, which the client bounds.)
    pub fn behind_since(&self) -> Option<u64> {
        let epoch = self.epoch();
        self.future.iter().filter(|(e, _, _)| *e > epoch).map(|(_, _, t)| *t).min()
    }

    /// Keeps a message of a later epoch until we reach it, within the bounds.
    pub(super) fn keep_future(&mut self, epoch: u64, bytes: &[u8], sent_at: u64) {
        let held = self.future.iter().fold(bytes.len(), |n, (_, b, _)| n.saturating_add(b.len()));
        if self.future.len() < MAX_FUTURE && held <= MAX_FUTURE_BYTES {
            self.future.push((epoch, bytes.into(), sent_at));
        }
    }

    /// Tries a message of the next epoch against each candidate of the freeze: the one
    /// whose epoch decrypts it is the one the group took. Nothing of a trial stays.
    pub(super) fn attest(&mut self, provider: &Provider, bytes: &[u8]) -> Option<Attested> {
        if self.trials >= MAX_TRIALS {
            return None;
        }
        self.trials = self.trials.saturating_add(1);
        let hashes: Vec<[u8; 32]> = self.candidates.iter().map(|c| c.key.commit_hash).collect();
        let mut tries: Vec<Attested> = hashes.into_iter().map(Attested::Peer).collect();
        if self.own.is_some() && self.group.pending_commit().is_some() {
            tries.push(Attested::Own);
        }
        tries.into_iter().find(|t| self.trial(provider, t, bytes))
    }

    /// Merges one candidate, tries to process `bytes` in the epoch it leads to, and puts
    /// openmls's state back as it was.
    fn trial(&mut self, provider: &Provider, which: &Attested, bytes: &[u8]) -> bool {
        let Ok(snapshot) = provider.storage().values.read().map(|v| v.clone()) else { return false };
        let merged = match which {
            Attested::Own => self.group.merge_pending_commit(provider).is_ok(),
            Attested::Peer(hash) => {
                let staged = self
                    .candidates
                    .iter()
                    .find(|c| &c.key.commit_hash == hash)
                    .and_then(|c| postcard::to_allocvec(&*c.staged).ok())
                    .and_then(|b| postcard::from_bytes::<StagedCommit>(&b).ok());
                staged.is_some_and(|s| self.group.merge_staged_commit(provider, s).is_ok())
            }
        };
        let read = merged
            && match mls::inbound(&self.group, bytes) {
                Ok(Some(p)) if p.epoch() == self.group.epoch() => {
                    self.group.process_message(provider, p).is_ok()
                }
                _ => false,
            };
        if let Ok(mut values) = provider.storage().values.write() {
            *values = snapshot;
        }
        // The group as stored before the trial; if it cannot be read back, the state in
        // memory (already restored in storage) is reloaded on the next rollback.
        let _ = self.reload(provider);
        read
    }
}
