//! libchat's proposed append-only account log (PR #195; `../shared/SPECS.md`, "Identity").
//!
//! `payload = "logos:accounts:1\0" ‖ count u32 LE ‖ entries`, each entry either
//! `0x01 0x01 ‖ Ed25519 key (32)` (add an installation) or `0x02 ‖ index u32 LE` (remove:
//! the tombstone of an earlier add that is still live), and the whole payload signed by
//! the account key (Ed25519, checked strictly under the account that was asked for, as
//! the lamport bundle is). A log that extends the one we know (ours is a prefix of it) is
//! newer; a shorter one is a rollback; any other is a rewrite: both are refused. A remove
//! that points at a later entry, at a remove, or at an add already removed fails the
//! whole log. Unlike the lamport bundle, a removal stays on record, so nobody can put
//! a removed installation back by republishing an old list at a higher number.

use std::collections::BTreeSet;

use super::account::{verify_ed25519, AccountKey};
use super::address::{AccountId, InstallationId};
use super::error::{CoreError, Result};

/// The payload's prefix, with its NUL.
pub const LOG_PREFIX: &[u8; 17] = b"logos:accounts:1\0";
/// The most entries a log may hold (a device list changed a few times a year): at 34
/// bytes an entry a full log is under 9 kB, so it still fits one sealed record (16 KiB).
/// A full log refuses further changes ("the account log is full").
pub const MAX_ENTRIES: usize = 256;

const OP_ADD: u8 = 1;
const KEY_ED25519: u8 = 1;
const OP_REMOVE: u8 = 2;

/// One entry of a log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    /// An installation added.
    Add(InstallationId),
    /// The add at this index removed.
    Remove(u32),
}

/// A verified account log.
#[derive(Clone, PartialEq, Eq)]
pub struct AccountLog {
    /// Whose log it is.
    pub account: AccountId,
    /// Its entries, oldest first.
    pub entries: Vec<Entry>,
    /// The signed payload.
    pub payload: Vec<u8>,
    /// Ed25519 by the account key over `payload`.
    pub signature: [u8; 64],
}

impl std::fmt::Debug for AccountLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccountLog")
            .field("account", &self.account)
            .field("entries", &self.entries.len())
            .finish()
    }
}

fn bad(why: &'static str) -> CoreError {
    CoreError::decode("account log", why)
}

/// Checks the entries' removes and returns the live installations, in order of adding.
fn live_of(entries: &[Entry]) -> Result<Vec<InstallationId>> {
    let mut removed = BTreeSet::new();
    for (i, e) in entries.iter().enumerate() {
        if let Entry::Remove(target) = e {
            let t = usize::try_from(*target).map_err(|_| bad("remove index"))?;
            if t >= i {
                return Err(bad("a remove of a later entry"));
            }
            if !matches!(entries.get(t), Some(Entry::Add(_))) || !removed.insert(t) {
                return Err(bad("a remove of a remove, or of an add already removed"));
            }
        }
    }
    let mut live: Vec<InstallationId> = Vec::new();
    for (i, e) in entries.iter().enumerate() {
        if let Entry::Add(d) = e {
            if !removed.contains(&i) && !live.contains(d) {
                live.push(d.clone());
            }
        }
    }
    Ok(live)
}

fn encode(entries: &[Entry]) -> Result<Vec<u8>> {
    if entries.len() > MAX_ENTRIES {
        return Err(CoreError::InvalidArgument("the account log is full".into()));
    }
    let count = u32::try_from(entries.len()).map_err(|_| bad("count"))?;
    let mut p = LOG_PREFIX.to_vec();
    p.extend_from_slice(&count.to_le_bytes());
    for e in entries {
        match e {
            Entry::Add(d) => {
                p.extend_from_slice(&[OP_ADD, KEY_ED25519]);
                p.extend_from_slice(d.as_bytes());
            }
            Entry::Remove(i) => {
                p.push(OP_REMOVE);
                p.extend_from_slice(&i.to_le_bytes());
            }
        }
    }
    Ok(p)
}

fn decode(payload: &[u8]) -> Result<Vec<Entry>> {
    let body = payload.strip_prefix(LOG_PREFIX.as_slice()).ok_or_else(|| bad("prefix"))?;
    let (count, mut body) = body.split_first_chunk::<4>().ok_or_else(|| bad("truncated"))?;
    let count = usize::try_from(u32::from_le_bytes(*count)).map_err(|_| bad("count"))?;
    if count > MAX_ENTRIES {
        return Err(bad("too many entries"));
    }
    let mut entries = Vec::with_capacity(count);
    for _ in 0..count {
        let (&op, rest) = body.split_first().ok_or_else(|| bad("truncated"))?;
        match op {
            OP_ADD => {
                let (&kind, rest) = rest.split_first().ok_or_else(|| bad("truncated"))?;
                if kind != KEY_ED25519 {
                    return Err(bad("unknown key type"));
                }
                let (key, rest) = rest.split_first_chunk::<32>().ok_or_else(|| bad("truncated"))?;
                entries.push(Entry::Add(InstallationId::from_bytes(*key)));
                body = rest;
            }
            OP_REMOVE => {
                let (index, rest) = rest.split_first_chunk::<4>().ok_or_else(|| bad("truncated"))?;
                entries.push(Entry::Remove(u32::from_le_bytes(*index)));
                body = rest;
            }
            _ => return Err(bad("unknown entry")),
        }
    }
    if !body.is_empty() {
        return Err(bad("bytes after the last entry"));
    }
    Ok(entries)
}

/// Decodes a payload and checks its removes, without a signature (the fuzz harness).
pub fn parse_unsigned(payload: &[u8]) -> Result<Vec<InstallationId>> {
    live_of(&decode(payload)?)
}

impl AccountLog {
    /// Verifies `signature` over `payload` under the account that was asked for, and
    /// decodes it; every remove must point at an earlier, still-live add.
    pub fn verify(account: &AccountId, payload: &[u8], signature: &[u8]) -> Result<Self> {
        verify_ed25519(account.as_bytes(), payload, signature)?;
        let entries = decode(payload)?;
        live_of(&entries)?;
        let signature: [u8; 64] = signature.try_into().map_err(|_| bad("signature length"))?;
        Ok(AccountLog { account: account.clone(), entries, payload: payload.to_vec(), signature })
    }

    /// The live installations, in order of adding.
    pub fn live(&self) -> Vec<InstallationId> {
        live_of(&self.entries).unwrap_or_default()
    }

    /// The installations it removed and did not add again.
    pub fn removed(&self) -> Vec<InstallationId> {
        let live = self.live();
        let mut out: Vec<InstallationId> = Vec::new();
        for e in &self.entries {
            if let Entry::Remove(t) = e {
                let added = usize::try_from(*t).ok().and_then(|t| self.entries.get(t));
                if let Some(Entry::Add(d)) = added {
                    if !live.contains(d) && !out.contains(d) {
                        out.push(d.clone());
                    }
                }
            }
        }
        out
    }

    /// Whether it lists exactly these installations (in any order).
    pub fn lists_exactly(&self, devices: &[InstallationId]) -> bool {
        let mut live = self.live();
        let mut other = devices.to_vec();
        live.sort_unstable_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
        other.sort_unstable_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
        other.dedup();
        live == other
    }

    /// Whether this log is `known` with entries appended (or `known` itself).
    pub fn extends(&self, known: &AccountLog) -> bool {
        self.account == known.account && self.entries.starts_with(&known.entries)
    }

    /// This log brought to list exactly `devices` (adds for the new ones, in their
    /// order; removes for the live ones they no longer show), signed by `key`.
    pub fn follow(&self, key: &AccountKey, devices: &[InstallationId]) -> Result<AccountLog> {
        let mut entries = self.entries.clone();
        let mut removed = BTreeSet::new();
        for e in &entries {
            if let Entry::Remove(t) = e {
                removed.insert(*t);
            }
        }
        let mut live = Vec::new();
        for (i, e) in self.entries.iter().enumerate() {
            let i = u32::try_from(i).map_err(|_| bad("count"))?;
            if let Entry::Add(d) = e {
                if !removed.contains(&i) {
                    live.push((i, d.clone()));
                }
            }
        }
        for (i, d) in &live {
            if !devices.contains(d) {
                entries.push(Entry::Remove(*i));
            }
        }
        for d in devices {
            if !live.iter().any(|(_, l)| l == d) {
                entries.push(Entry::Add(d.clone()));
            }
        }
        sign(key, entries)
    }

    /// A first log listing `devices`.
    pub fn first(key: &AccountKey, devices: &[InstallationId]) -> Result<AccountLog> {
        sign(key, devices.iter().cloned().map(Entry::Add).collect())
    }
}

fn sign(key: &AccountKey, entries: Vec<Entry>) -> Result<AccountLog> {
    live_of(&entries)?;
    let payload = encode(&entries)?;
    let signature = key.sign(&payload);
    Ok(AccountLog { account: key.id(), entries, payload, signature })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dev(b: u8) -> InstallationId {
        InstallationId::from_bytes([b; 32])
    }

    #[test]
    fn logs_encode_as_the_proposal_and_verify_under_their_account_only() {
        let key = AccountKey::from_seed(&[0x0a; 32]);
        let log = AccountLog::first(&key, &[dev(1), dev(2)]).unwrap();
        let mut expected = b"logos:accounts:1\0".to_vec();
        expected.extend_from_slice(&2u32.to_le_bytes());
        for b in [1u8, 2] {
            expected.extend_from_slice(&[1, 1]);
            expected.extend_from_slice(&[b; 32]);
        }
        assert_eq!(log.payload, expected);
        let removed = log.follow(&key, &[dev(2), dev(3)]).unwrap();
        assert_eq!(
            &removed.payload[expected.len()..],
            &[[2u8, 0, 0, 0, 0].as_slice(), &[1, 1], &[3; 32]].concat()
        );
        assert_eq!(removed.payload[17..21], 4u32.to_le_bytes());
        let back = AccountLog::verify(&key.id(), &removed.payload, &removed.signature).unwrap();
        assert_eq!(back.live(), vec![dev(2), dev(3)]);
        assert_eq!(back.removed(), vec![dev(1)]);
        let again = back.follow(&key, &[dev(1), dev(2), dev(3)]).unwrap();
        assert_eq!((again.live(), again.removed()), (vec![dev(2), dev(3), dev(1)], vec![]));
        assert!(back.extends(&log) && !log.extends(&back) && back.extends(&back));
        let other = AccountKey::from_seed(&[0x0b; 32]);
        assert!(AccountLog::verify(&other.id(), &removed.payload, &removed.signature).is_err());
        for i in 0..removed.payload.len() {
            let mut p = removed.payload.clone();
            p[i] ^= 1;
            assert!(AccountLog::verify(&key.id(), &p, &removed.signature).is_err(), "byte {i}");
        }
    }

    #[test]
    fn bad_removes_and_malformed_logs_fail_whole() {
        let key = AccountKey::from_seed(&[0x0c; 32]);
        for entries in [
            vec![Entry::Add(dev(1)), Entry::Remove(1)],
            vec![Entry::Add(dev(1)), Entry::Remove(5)],
            vec![Entry::Add(dev(1)), Entry::Remove(0), Entry::Remove(0)],
            vec![Entry::Add(dev(1)), Entry::Remove(0), Entry::Remove(1)],
        ] {
            let payload = encode(&entries).unwrap();
            let sig = key.sign(&payload);
            assert!(AccountLog::verify(&key.id(), &payload, &sig).is_err(), "{entries:?}");
            assert!(sign(&key, entries).is_err());
        }
        let good = AccountLog::first(&key, &[dev(1)]).unwrap().payload;
        for p in [
            good[..good.len() - 1].to_vec(),
            [good.as_slice(), &[0]].concat(),
            [&good[..21], &[1, 2], &good[23..]].concat(),
            [&good[..21], &[3], &good[22..]].concat(),
            [&good[..17], &9u32.to_le_bytes(), &good[21..]].concat(),
            [&good[..17], &u32::MAX.to_le_bytes(), &good[21..]].concat(),
            b"logos:accounts:2\0\0\0\0\0".to_vec(),
        ] {
            let sig = key.sign(&p);
            assert!(AccountLog::verify(&key.id(), &p, &sig).is_err());
        }
    }
}
