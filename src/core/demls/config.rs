//! The de-MLS configuration of one group (PROTOCOL.md §3.7, de-mls 4.1.0 defaults).

use crate::core::wire::GroupSync;

/// The longest timer a group may set (ms): a day. A sync is peer input; a timer near
/// `u64::MAX` would overflow the clock arithmetic, and one over 2^31 − 1 ms fires at once
/// in a JavaScript timer (a busy loop).
pub const MAX_TIMER_MS: u64 = 24 * 3600 * 1000;
/// Most stewards per epoch.
pub const MAX_STEWARDS: u32 = 64;

/// Timers (ms) and knobs of a group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config {
    /// Stewards commit this long after the first approved proposal (`commit_batch_window`).
    pub commit_batch_window: u64,
    /// How long members collect candidates after the first one (`freeze_duration`).
    pub freeze_duration: u64,
    /// A proposal is decided at the latest this long after it opened (`consensus_timeout`).
    pub consensus_timeout: u64,
    /// After the window and the freeze, how long before recovery mode (`retry_window`).
    pub retry_window: u64,
    /// Stewards listed per epoch (`sn_max`; at least 1).
    pub stewards: u32,
    /// Silent voters count as YES at the timeout (`liveness_criteria_yes`).
    pub liveness_yes: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            commit_batch_window: 60_000,
            freeze_duration: 30_000,
            consensus_timeout: 30_000,
            retry_window: 5_000,
            stewards: 2,
            liveness_yes: true,
        }
    }
}

impl Config {
    /// The wire form (part of the sync a joiner receives).
    pub fn to_sync(self, sync: &mut GroupSync) {
        sync.commit_batch_window = self.commit_batch_window;
        sync.freeze_duration = self.freeze_duration;
        sync.consensus_timeout = self.consensus_timeout;
        sync.retry_window = self.retry_window;
        sync.stewards = self.stewards;
        sync.liveness_yes = self.liveness_yes;
    }

    /// From the wire; `None` when a timer is zero or there is no steward (§3.8: a joiner
    /// rejects zero timers).
    pub fn from_sync(s: &GroupSync) -> Option<Self> {
        let c = Config {
            commit_batch_window: s.commit_batch_window,
            freeze_duration: s.freeze_duration,
            consensus_timeout: s.consensus_timeout,
            retry_window: s.retry_window,
            stewards: s.stewards,
            liveness_yes: s.liveness_yes,
        };
        c.is_valid().then_some(c)
    }

    /// Every timer positive and at most [`MAX_TIMER_MS`], 1 to [`MAX_STEWARDS`] stewards
    /// (§3.8: a joiner rejects zero timers).
    pub fn is_valid(&self) -> bool {
        let timers =
            [self.commit_batch_window, self.freeze_duration, self.consensus_timeout, self.retry_window];
        timers.iter().all(|t| *t > 0 && *t <= MAX_TIMER_MS) && (1..=MAX_STEWARDS).contains(&self.stewards)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sync_with_absurd_timers_or_stewards_is_refused() {
        let mut sync = GroupSync::default();
        Config::default().to_sync(&mut sync);
        assert_eq!(Config::from_sync(&sync), Some(Config::default()));
        for bad in [0, MAX_TIMER_MS + 1, u64::MAX] {
            let mut s = sync.clone();
            s.freeze_duration = bad;
            assert_eq!(Config::from_sync(&s), None, "freeze of {bad} ms");
            let mut s = sync.clone();
            s.commit_batch_window = bad;
            assert_eq!(Config::from_sync(&s), None, "window of {bad} ms");
        }
        let mut s = sync.clone();
        s.stewards = u32::MAX;
        assert_eq!(Config::from_sync(&s), None);
        s.stewards = MAX_STEWARDS;
        assert!(Config::from_sync(&s).is_some());
    }
}
