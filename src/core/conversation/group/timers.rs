//! The group's timers: proposal timeouts, the commit window, the end of a freeze,
//! re-election and recovery, removals due and our re-sends, and when they come next.

use super::*;

impl GroupConversation {
    /// Runs the timers due at `now`: proposal timeouts, the commit window, the end of the
    /// freeze, recovery mode.
    pub fn tick(
        &mut self,
        provider: &Provider,
        key: &InstallationKey,
        me: &DelegateCredential,
        now: u64,
    ) -> Result<GroupOutput> {
        let mut out = GroupOutput::default();
        if self.left {
            return Ok(out);
        }
        self.gov.timeouts(now);
        if self.freeze_until.is_some_and(|t| now >= t) {
            self.select(provider, key, me, now, &mut out)?;
        }
        let idle = self.own.is_none() && self.candidates.is_empty();
        if idle && self.gov.commit_due().is_some_and(|t| now >= t) {
            self.mint(provider, key, me, now, &mut out)?;
        }
        let idle = self.own.is_none() && self.candidates.is_empty();
        if idle && !self.gov.recovery && self.gov.recovery_due().is_some_and(|t| now >= t) {
            // No steward committed in time: penalise the epoch steward, then draw the list
            // again (L2) while re-elections are left, else let anyone commit (L3).
            if let Some(s) = self.stewards().first() {
                self.penalise(s, ScoreEvent::CensorshipInactivity);
            }
            if self.gov.retry_round < MAX_REELECTIONS {
                self.gov.retry_round = self.gov.retry_round.saturating_add(1);
            } else {
                self.gov.recovery = true;
            }
            self.mint(provider, key, me, now, &mut out)?;
        }
        self.propose_removals(provider, key, me, now, &mut out)?;
        self.resend_due(now, &mut out);
        Ok(out)
    }

    /// When [`GroupConversation::tick`] has something to do next.
    pub fn wake_at(&self, now: u64) -> Option<u64> {
        if self.left {
            return None;
        }
        let idle = self.own.is_none() && self.candidates.is_empty();
        let timeouts =
            self.gov.open.values().map(|o| o.opened_at.saturating_add(self.gov.config.consensus_timeout));
        let commit = self.gov.commit_due().filter(|t| idle && *t > now);
        let recovery = self.gov.recovery_due().filter(|t| idle && !self.gov.recovery && *t > now);
        let recovery_mint =
            self.gov.commit_due().filter(|_| idle && self.gov.recovery).map(|_| now.saturating_add(1));
        let resend = self.resend_wake();
        timeouts
            .chain(commit)
            .chain(recovery)
            .chain(recovery_mint)
            .chain(self.freeze_until)
            .chain(resend)
            .min()
    }
}
