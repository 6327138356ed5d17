//! The de-MLS configuration of one group (PROTOCOL.md §3.7, de-mls 4.1.0 defaults).

use crate::core::wire::GroupSync;

/// The longest timer a group may set (ms): a day. A sync is peer input; a timer near
/// `u64::MAX` would overflow the clock arithmetic, and one over 2^31 − 1 ms fires at once
/// in a JavaScript timer (a busy loop).
pub const MAX_TIMER_MS: u64 = 24 * 3600 * 1000;
/// Most stewards per epoch.
pub const MAX_STEWARDS: u32 = 64;

/// Who may ask for a change (API.md `permissions`): any member, or only the epoch's
/// stewards. A leave is always allowed (only for oneself).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Role {
    /// Any member.
    #[default]
    Members,
    /// Only a steward of the epoch the proposal is voted in.
    Stewards,
}

/// Who may add, remove and rename: fixed at creation, enforced in every member's vote.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Permissions {
    /// Who may propose adding an account.
    pub add: Role,
    /// Who may propose removing another account.
    pub remove: Role,
    /// Who may propose a new name or description.
    pub rename: Role,
}

impl Permissions {
    /// The wire form: bit 0 add, bit 1 remove, bit 2 rename set when stewards only.
    pub fn bits(self) -> u32 {
        let b = |r: Role, bit: u32| if r == Role::Stewards { 1 << bit } else { 0 };
        b(self.add, 0) | b(self.remove, 1) | b(self.rename, 2)
    }

    /// From the wire; unknown bits are refused (a later version's rule we cannot enforce).
    pub fn from_bits(bits: u32) -> Option<Self> {
        let r = |bit: u32| if bits & (1 << bit) != 0 { Role::Stewards } else { Role::Members };
        (bits & !0b111 == 0).then(|| Permissions { add: r(0), remove: r(1), rename: r(2) })
    }
}

/// The group id of a group made with `nonce` and `permissions`: a joiner recomputes it
/// from the sync its welcomer sends, so a welcomer cannot tell it other permissions than
/// the group was made with (the MLS group id is authenticated by the Welcome).
pub fn group_id_for(nonce: &[u8], permissions: Permissions) -> [u8; 16] {
    crate::core::address::blake2b::<16>(&[
        b"logos-chat group id v1",
        nonce,
        &permissions.bits().to_be_bytes(),
    ])
}

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
    /// Who may ask for what.
    pub permissions: Permissions,
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
            permissions: Permissions::default(),
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
        sync.permissions = self.permissions.bits();
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
            permissions: Permissions::from_bits(s.permissions)?,
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
        s.permissions = 0b1000;
        assert_eq!(Config::from_sync(&s), None, "an unknown permission bit");
    }

    #[test]
    fn permissions_round_trip_through_their_bits() {
        for bits in 0..8 {
            assert_eq!(Permissions::from_bits(bits).map(Permissions::bits), Some(bits));
        }
        let p = Permissions { add: Role::Stewards, ..Permissions::default() };
        assert_eq!(p.bits(), 1);
    }
}
