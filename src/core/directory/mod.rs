//! The "delivery" directory: where accounts and key packages are found (PROTOCOL.md §2.3).
//!
//! Each installation publishes its account's signed device bundle and its own
//! last-resort key package as raw `logoschat.store` submissions on two fixed
//! content topics; a lookup reads those topics' history (a store query done by
//! the driver) and feeds every record to [`Directory::ingest`]. Every record is
//! verified before it is kept: bundle signatures under the account that signs
//! them, with rollback refused; key-package signatures under the device key,
//! openmls validation, and the leaf's signature key equal to the device id.
//! This module holds only public data and never does I/O.
//!
//! What we publish ourselves goes sealed ([`sealed`]: PRIV2); libchat's plain records
//! on the shared topics are still read. [`Directory::lookup_topics`] names the topics a
//! lookup of some accounts reads: the shared ones, each account's sealed topic, and the
//! sealed key-package topics of the installations its known list shows (a second read
//! once the list is in).

pub mod registry;
pub mod sealed;

use std::collections::HashMap;

use openmls::prelude::tls_codec::Serialize as _;
use openmls::prelude::{KeyPackage, KeyPackageIn, ProtocolVersion};
use openmls_traits::crypto::OpenMlsCrypto;
use prost::Message as _;
use rand_core::CryptoRngCore;

use super::account::{verify_ed25519, DeviceBundle, InstallationKey};
use super::account_log::{AccountLog, LOG_PREFIX};
use super::address::{AccountId, InstallationId};
use super::error::{CoreError, Result};
use super::wire::{decode, AccountSubmissionV1, KeyPackageSubmissionV1};

/// Where key packages are submitted in delivery mode (§2.3).
pub const KEYPACKAGE_TOPIC: &str = "/logos-chat/1/store-keypackage-v0/proto";
/// Where device bundles are submitted in delivery mode (§2.3).
pub const ACCOUNT_TOPIC: &str = "/logos-chat/1/store-account-v0/proto";

/// The encoded submission of a device bundle.
pub fn account_submission(bundle: &DeviceBundle) -> Vec<u8> {
    AccountSubmissionV1 {
        account_pub: bundle.account.as_bytes().to_vec(),
        payload: bundle.payload.clone(),
        signature: bundle.signature.to_vec(),
    }
    .encode_to_vec()
}

/// The encoded, delegate-signed submission of a key package: `payload = ts_ms u64 LE ‖ KeyPackage`.
pub fn key_package_submission(
    key: &InstallationKey,
    ts_ms: u64,
    key_package: &KeyPackage,
) -> Result<Vec<u8>> {
    let (payload, signature) = key_package_record(key, ts_ms, key_package)?;
    Ok(KeyPackageSubmissionV1 { device_id: key.id().as_bytes().to_vec(), payload, signature }.encode_to_vec())
}

/// The signed payload of a key package and its signature (what a registry stores).
pub fn key_package_record(
    key: &InstallationKey,
    ts_ms: u64,
    key_package: &KeyPackage,
) -> Result<(Vec<u8>, Vec<u8>)> {
    let mut payload = ts_ms.to_le_bytes().to_vec();
    let kp = key_package.tls_serialize_detached().map_err(CoreError::mls)?;
    payload.extend_from_slice(&kp);
    let signature = key.sign(&payload).to_vec();
    Ok((payload, signature))
}

/// A key-package submission whose signature verified: its key package is validated only
/// when a chat needs it, because the topic holds every installation's package and
/// validating an X-Wing key package costs about a millisecond.
#[derive(Debug, Clone)]
struct Submitted {
    ts: u64,
    payload: Vec<u8>,
    /// When it was taken in (its place in `Directory::submitted_order`).
    seq: u64,
}

/// The most bytes of key-package submissions held unverified (anyone can fill the shared
/// topic with self-signed ones: past it the oldest go first).
pub const MAX_SUBMITTED_BYTES: usize = 4 << 20;
/// The most record digests remembered as handled (forgotten all at once past it: the
/// records are then verified again once).
pub const MAX_SEEN: usize = 65_536;
/// The most sealed topics remembered from lookups (forgotten past it; the next lookup
/// names its own again).
pub const MAX_SEALED_TOPICS: usize = 16_384;

/// What the directory knows. Bundles are verified as they are read; key packages when
/// they are first used ([`Directory::key_package`]).
#[derive(Debug, Default)]
pub struct Directory {
    bundles: HashMap<AccountId, DeviceBundle>,
    /// Accounts' append-only logs (libchat's proposed format), where one was read.
    logs: HashMap<AccountId, AccountLog>,
    submitted: HashMap<InstallationId, Submitted>,
    submitted_order: std::collections::VecDeque<(u64, InstallationId)>,
    submitted_bytes: usize,
    submitted_seq: u64,
    key_packages: HashMap<InstallationId, (u64, KeyPackage)>,
    seen: std::collections::HashSet<[u8; 32]>,
    /// The sealed topics a lookup was told to read, and whose they are.
    sealed_topics: HashMap<String, (AccountId, Option<InstallationId>)>,
    /// Accounts whose list or log changed since the client last persisted them.
    dirty: std::collections::BTreeSet<AccountId>,
    /// Accounts in the order their lists were first taken in (the oldest go first when
    /// the bound is reached).
    order: std::collections::VecDeque<AccountId>,
    /// Accounts whose lists are taken in: looked up, met in a conversation, or known
    /// already. The shared topics hold anyone's self-signed lists; keeping all of them
    /// would let anyone fill the directory and push out what matters.
    wanted: std::collections::HashSet<AccountId>,
    /// Never forgotten (our own account).
    pinned: Option<AccountId>,
}

/// The most installations a list or log may show (a list is taken in only below it).
pub const MAX_DEVICES: usize = 256;

/// What is known of an account, to persist: its list and log submissions (either may be
/// empty).
pub type KnownLists = (Vec<u8>, Vec<u8>);

/// The most accounts whose lists a directory keeps (and persists).
pub const MAX_KNOWN_ACCOUNTS: usize = 4096;

/// What a directory holds of one account's lists (put back when a call fails).
#[derive(Debug, Clone, Default)]
pub struct OwnRecords(Option<DeviceBundle>, Option<AccountLog>);

/// The sealed record of an account's device list: its topic and bytes.
pub fn sealed_bundle<R: CryptoRngCore + ?Sized>(
    rng: &mut R,
    bundle: &DeviceBundle,
) -> Result<(String, Vec<u8>)> {
    let topic = sealed::account_topic(&bundle.account);
    let record =
        sealed::seal(rng, &bundle.account, &topic, sealed::Kind::Bundle, &account_submission(bundle))?;
    Ok((topic, record))
}

/// The encoded submission of an account log (as a list's, with the log's payload).
pub fn log_submission(log: &AccountLog) -> Vec<u8> {
    AccountSubmissionV1 {
        account_pub: log.account.as_bytes().to_vec(),
        payload: log.payload.clone(),
        signature: log.signature.to_vec(),
    }
    .encode_to_vec()
}

/// The sealed record of an account's log: its topic (the list's) and bytes.
pub fn sealed_log<R: CryptoRngCore + ?Sized>(rng: &mut R, log: &AccountLog) -> Result<(String, Vec<u8>)> {
    let topic = sealed::account_topic(&log.account);
    let submission = log_submission(log);
    let record = sealed::seal(rng, &log.account, &topic, sealed::Kind::Bundle, &submission)?;
    Ok((topic, record))
}

/// The sealed record of an installation's key-package submission: its topic and bytes.
pub fn sealed_key_package<R: CryptoRngCore + ?Sized>(
    rng: &mut R,
    account: &AccountId,
    device: &InstallationId,
    submission: &[u8],
) -> Result<(String, Vec<u8>)> {
    let topic = sealed::device_topic(account, device);
    let record = sealed::seal(rng, account, &topic, sealed::Kind::KeyPackage, submission)?;
    Ok((topic, record))
}

impl Directory {
    /// Verifies and records one submission read from `topic`. Records on other
    /// topics are errors; stale records (a lower lamport or timestamp) are kept out.
    pub fn ingest(&mut self, topic: &str, payload: &[u8], _crypto: &impl OpenMlsCrypto) -> Result<()> {
        // The same record is read again by every lookup: handle it once.
        let digest = super::address::blake2b::<32>(&[topic.as_bytes(), b"|", payload]);
        if self.seen.contains(&digest) {
            return Ok(());
        }
        // Key packages are not remembered as handled: one pushed out of the byte-bounded
        // cache by a flood must be taken in again when a later lookup reads it.
        let key_package = topic == KEYPACKAGE_TOPIC
            || self.sealed_topics.get(topic).is_some_and(|(_, device)| device.is_some());
        let result = self.ingest_new(topic, payload);
        if result.is_ok() && !key_package {
            if self.seen.len() >= MAX_SEEN {
                self.seen.clear();
            }
            self.seen.insert(digest);
        }
        result
    }

    /// The topics a lookup of `accounts` reads (each one once), remembered so that
    /// their sealed records open when they are ingested.
    pub fn lookup_topics(&mut self, accounts: &[AccountId]) -> Vec<String> {
        if self.sealed_topics.len() >= MAX_SEALED_TOPICS {
            self.sealed_topics.clear();
        }
        let mut topics = vec![ACCOUNT_TOPIC.to_owned(), KEYPACKAGE_TOPIC.to_owned()];
        for account in accounts {
            self.wanted.insert(account.clone());
            let t = sealed::account_topic(account);
            self.sealed_topics.insert(t.clone(), (account.clone(), None));
            topics.push(t);
            for d in self.bundles.get(account).map(|b| b.devices.as_slice()).unwrap_or_default() {
                let t = sealed::device_topic(account, d);
                self.sealed_topics.insert(t.clone(), (account.clone(), Some(d.clone())));
                topics.push(t);
            }
        }
        topics.sort_unstable();
        topics.dedup();
        topics
    }

    /// Takes in this account's lists from now on (a lookup that reads no topics).
    pub fn want(&mut self, account: &AccountId) {
        self.wanted.insert(account.clone());
    }

    fn ingest_new(&mut self, topic: &str, payload: &[u8]) -> Result<()> {
        if let Some((account, device)) = self.sealed_topics.get(topic).cloned() {
            let (kind, inner) = sealed::open(&account, topic, payload)?;
            return match (kind, device) {
                (sealed::Kind::Bundle, None) => {
                    let s: AccountSubmissionV1 = decode("account submission", &inner)?;
                    if s.account_pub.as_slice() != account.as_bytes() {
                        return Err(CoreError::Verify("a sealed list of another account"));
                    }
                    self.ingest_new(ACCOUNT_TOPIC, &inner)
                }
                (sealed::Kind::KeyPackage, Some(device)) => {
                    let s: KeyPackageSubmissionV1 = decode("key package submission", &inner)?;
                    if s.device_id.as_slice() != device.as_bytes() {
                        return Err(CoreError::Verify("a sealed key package of another installation"));
                    }
                    self.ingest_new(KEYPACKAGE_TOPIC, &inner)
                }
                _ => Err(CoreError::decode("sealed directory record", "not this topic's kind")),
            };
        }
        match topic {
            ACCOUNT_TOPIC => {
                let s: AccountSubmissionV1 = decode("account submission", payload)?;
                let account = <[u8; 32]>::try_from(s.account_pub.as_slice())
                    .map(AccountId::from_bytes)
                    .map_err(|_| CoreError::decode("account submission", "account_pub"))?;
                if !self.wanted.contains(&account) {
                    return Err(CoreError::Verify("a list of an account nobody looked up"));
                }
                if s.payload.starts_with(LOG_PREFIX) {
                    let log = AccountLog::verify(&account, &s.payload, &s.signature)?;
                    if log.live().len() > MAX_DEVICES {
                        return Err(CoreError::Verify("a log of too many installations"));
                    }
                    return self.accept_log(log);
                }
                let bundle = DeviceBundle::verify(&account, &s.payload, &s.signature)?;
                if bundle.devices.len() > MAX_DEVICES {
                    return Err(CoreError::Verify("a list of too many installations"));
                }
                self.accept_bundle(bundle)
            }
            KEYPACKAGE_TOPIC => {
                let s: KeyPackageSubmissionV1 = decode("key package submission", payload)?;
                let device = <[u8; 32]>::try_from(s.device_id.as_slice())
                    .map(InstallationId::from_bytes)
                    .map_err(|_| CoreError::decode("key package submission", "device_id"))?;
                let ts = s
                    .payload
                    .get(..8)
                    .and_then(|b| <[u8; 8]>::try_from(b).ok())
                    .map(u64::from_le_bytes)
                    .ok_or_else(|| CoreError::decode("key package submission", "truncated"))?;
                // The signature is cheap and checked now, so that nobody but the device can
                // put a record in front of its real one; openmls validation waits for use.
                verify_ed25519(device.as_bytes(), &s.payload, &s.signature)?;
                let newest = self
                    .submitted
                    .get(&device)
                    .map_or(0, |s| s.ts)
                    .max(self.key_packages.get(&device).map_or(0, |k| k.0));
                if ts >= newest {
                    self.hold_submission(device, ts, s.payload);
                }
                Ok(())
            }
            _ => Err(CoreError::decode("directory record", "not a directory topic")),
        }
    }

    /// Records a bundle already verified; refuses a rollback.
    pub fn accept_bundle(&mut self, bundle: DeviceBundle) -> Result<()> {
        if let Some(old) = self.bundles.get(&bundle.account) {
            if old.lamport > bundle.lamport {
                return Err(CoreError::Verify("device bundle rollback"));
            }
        }
        self.note(&bundle.account);
        self.bundles.insert(bundle.account.clone(), bundle);
        Ok(())
    }

    /// Marks an account changed; a new one may push the oldest out (bounded: a list is
    /// at most 64 kB, a log 160 kB, and most are a few hundred bytes).
    fn note(&mut self, account: &AccountId) {
        self.wanted.insert(account.clone());
        if self.pinned.as_ref() == Some(account) {
            return;
        }
        self.dirty.insert(account.clone());
        if self.bundles.contains_key(account) || self.logs.contains_key(account) {
            return;
        }
        self.order.push_back(account.clone());
        while self.order.len() > MAX_KNOWN_ACCOUNTS {
            let Some(old) = self.order.pop_front() else { break };
            self.bundles.remove(&old);
            self.logs.remove(&old);
            self.wanted.remove(&old);
            self.dirty.insert(old);
        }
    }

    /// Our own account: its lists are never forgotten (nor persisted here).
    pub fn pin(&mut self, account: &AccountId) {
        self.pinned = Some(account.clone());
        self.wanted.insert(account.clone());
    }

    /// A list or log that came with a conversation (a group's tree, an Add request): its
    /// account is one we meet, so it is taken in like a looked-up one.
    pub fn ingest_member_list(&mut self, payload: &[u8], crypto: &impl OpenMlsCrypto) -> Result<()> {
        let s: AccountSubmissionV1 = decode("account submission", payload)?;
        let account = <[u8; 32]>::try_from(s.account_pub.as_slice())
            .map(AccountId::from_bytes)
            .map_err(|_| CoreError::decode("account submission", "account_pub"))?;
        self.wanted.insert(account);
        self.ingest(ACCOUNT_TOPIC, payload, crypto)
    }

    /// The accounts changed since the last call, with what is now known of each (`None`:
    /// forgotten, delete its record).
    pub fn take_dirty(&mut self) -> Vec<(AccountId, Option<KnownLists>)> {
        let dirty = std::mem::take(&mut self.dirty);
        dirty
            .into_iter()
            .map(|a| {
                let bundle = self.bundles.get(&a).map(account_submission);
                let log = self.logs.get(&a).map(log_submission);
                let known = (bundle.is_some() || log.is_some())
                    .then(|| (bundle.unwrap_or_default(), log.unwrap_or_default()));
                (a, known)
            })
            .collect()
    }

    /// Takes in a persisted record of an account (verified again; one that does not verify
    /// is skipped).
    pub fn restore_known(&mut self, account: &AccountId, bundle: &[u8], log: &[u8]) {
        self.wanted.insert(account.clone());
        for sub in [bundle, log].into_iter().filter(|b| !b.is_empty()) {
            if let Ok(s) = decode::<AccountSubmissionV1>("known account", sub) {
                if s.account_pub.as_slice() == account.as_bytes() {
                    let _ = self.ingest_new(ACCOUNT_TOPIC, sub);
                }
            }
        }
        self.dirty.remove(account);
    }

    /// Records a verified log: one that extends the known one replaces it; a shorter one
    /// (a rollback) or any other (a rewrite of the account's history) is refused.
    pub fn accept_log(&mut self, log: AccountLog) -> Result<()> {
        if let Some(known) = self.logs.get(&log.account) {
            if known.extends(&log) {
                return if known.entries.len() == log.entries.len() {
                    Ok(())
                } else {
                    Err(CoreError::Verify("account log rollback"))
                };
            }
            if !log.extends(known) {
                return Err(CoreError::Verify("an account log that rewrites the known one"));
            }
        }
        self.note(&log.account);
        self.logs.insert(log.account.clone(), log);
        Ok(())
    }

    /// The lists held of an account, to put back with [`Directory::restore_own_records`].
    pub fn own_records(&self, account: &AccountId) -> OwnRecords {
        OwnRecords(self.bundles.get(account).cloned(), self.logs.get(account).cloned())
    }

    /// Puts back what [`Directory::own_records`] took.
    pub fn restore_own_records(&mut self, account: &AccountId, OwnRecords(bundle, log): OwnRecords) {
        match bundle {
            Some(b) => self.bundles.insert(account.clone(), b),
            None => self.bundles.remove(account),
        };
        match log {
            Some(l) => self.logs.insert(account.clone(), l),
            None => self.logs.remove(account),
        };
    }

    /// The newest log of an account.
    pub fn log(&self, account: &AccountId) -> Option<&AccountLog> {
        self.logs.get(account)
    }

    /// The newest bundle of an account.
    pub fn bundle(&self, account: &AccountId) -> Option<&DeviceBundle> {
        self.bundles.get(account)
    }

    /// The newest valid key package of an installation, verified now if it was not yet:
    /// the delegate's signature over `ts ‖ KeyPackage`, openmls validation, and the
    /// leaf's signature key equal to the device id. A submission that fails is dropped.
    pub fn key_package(
        &mut self,
        installation: &InstallationId,
        crypto: &impl OpenMlsCrypto,
    ) -> Option<KeyPackage> {
        if let Some(s) = self.take_submission(installation) {
            match verify_submission(installation, &s, crypto) {
                Ok(kp) => {
                    self.key_packages.insert(installation.clone(), (s.ts, kp));
                }
                Err(_) => {
                    // Keep the older verified one, if any.
                }
            }
        }
        self.key_packages.get(installation).map(|(_, kp)| kp.clone())
    }

    /// A key package verified elsewhere (a linked installation's, from the link).
    pub fn accept_key_package(&mut self, installation: &InstallationId, ts: u64, kp: KeyPackage) {
        self.take_submission(installation);
        self.key_packages.insert(installation.clone(), (ts, kp));
    }

    /// Holds a submission whose signature verified, within [`MAX_SUBMITTED_BYTES`].
    fn hold_submission(&mut self, device: InstallationId, ts: u64, payload: Vec<u8>) {
        self.take_submission(&device);
        self.submitted_seq = self.submitted_seq.wrapping_add(1);
        let seq = self.submitted_seq;
        self.submitted_bytes = self.submitted_bytes.saturating_add(payload.len());
        self.submitted_order.push_back((seq, device.clone()));
        self.submitted.insert(device, Submitted { ts, payload, seq });
        // Places of submissions taken since are dropped now and then.
        if self.submitted_order.len() > self.submitted.len().saturating_mul(2).saturating_add(1024) {
            let held = &self.submitted;
            self.submitted_order.retain(|(seq, d)| held.get(d).is_some_and(|s| s.seq == *seq));
        }
        while self.submitted_bytes > MAX_SUBMITTED_BYTES {
            let Some((seq, d)) = self.submitted_order.pop_front() else { break };
            if self.submitted.get(&d).is_some_and(|s| s.seq == seq) {
                self.take_submission(&d);
            }
        }
    }

    /// Removes a held submission (its place in the order is skipped when reached).
    fn take_submission(&mut self, device: &InstallationId) -> Option<Submitted> {
        let s = self.submitted.remove(device)?;
        self.submitted_bytes = self.submitted_bytes.saturating_sub(s.payload.len());
        if self.submitted.is_empty() {
            self.submitted_order.clear();
        }
        Some(s)
    }

    /// Whether the account's signed lists show this installation: the newest lamport
    /// bundle lists it (the log, where no bundle is known), and the log has not removed
    /// it. A removal in a log stays, so an old bundle replayed cannot bring back an
    /// installation the log took out; a stale log cannot undo a newer bundle's removal;
    /// and a newer bundle (a group's Add carries one) shows a new device before its log.
    pub fn confirms(&self, account: &AccountId, installation: &InstallationId) -> bool {
        let log = self.logs.get(account);
        let listed = match self.bundles.get(account) {
            Some(b) => b.devices.contains(installation),
            None => log.is_some_and(|l| l.live().contains(installation)),
        };
        listed && !log.is_some_and(|l| l.removed().contains(installation))
    }
}

fn verify_submission(
    device: &InstallationId,
    s: &Submitted,
    crypto: &impl OpenMlsCrypto,
) -> Result<KeyPackage> {
    let kp = parse_key_package(s.payload.get(8..).unwrap_or_default(), crypto)?;
    if kp.leaf_node().signature_key().as_slice() != device.as_bytes() {
        return Err(CoreError::Verify("leaf signature key is not the device key"));
    }
    Ok(kp)
}

/// Deserializes a bare TLS key package and runs openmls validation (MLS 1.0).
pub fn parse_key_package(bytes: &[u8], crypto: &impl OpenMlsCrypto) -> Result<KeyPackage> {
    crate::core::conversation::mls_shape::check_key_package(bytes)?;
    let kp = crate::core::conversation::mls::decode_exact::<KeyPackageIn>(bytes)
        .map_err(|e| CoreError::decode("key package", e))?;
    kp.validate(crypto, ProtocolVersion::Mls10)
        .map_err(|e| CoreError::decode("key package", format!("{e:?}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::account::InstallationKey;

    /// A signed key-package submission of `len` bytes (its package is never validated).
    fn flood_record(seed: u32, len: usize) -> (InstallationId, Vec<u8>) {
        let mut s = [0u8; 32];
        s[..4].copy_from_slice(&seed.to_le_bytes());
        let key = InstallationKey::from_seed(&s);
        let mut payload = 1u64.to_le_bytes().to_vec();
        payload.resize(len, 7);
        let signature = key.sign(&payload).to_vec();
        let sub = KeyPackageSubmissionV1 { device_id: key.id().as_bytes().to_vec(), payload, signature };
        (key.id(), sub.encode_to_vec())
    }

    #[test]
    fn a_flood_of_self_signed_key_packages_stays_within_its_byte_bound() {
        let mut d = Directory::default();
        let provider = crate::core::conversation::mls_store::Provider::new().unwrap();
        let crypto = openmls_traits::OpenMlsProvider::crypto(&provider);
        let (first, rec) = flood_record(0, 4096);
        d.ingest(KEYPACKAGE_TOPIC, &rec, crypto).unwrap();
        assert!(d.submitted.contains_key(&first));
        let n = (MAX_SUBMITTED_BYTES / 4096 + 200) as u32;
        let mut last = first.clone();
        for i in 1..=n {
            let (id, rec) = flood_record(i, 4096);
            d.ingest(KEYPACKAGE_TOPIC, &rec, crypto).unwrap();
            last = id;
        }
        assert!(d.submitted_bytes <= MAX_SUBMITTED_BYTES, "{}", d.submitted_bytes);
        assert_eq!(d.submitted_bytes, d.submitted.values().map(|s| s.payload.len()).sum::<usize>());
        assert!(!d.submitted.contains_key(&first), "the oldest went first");
        assert!(d.submitted.contains_key(&last), "the newest is held");
        assert!(d.submitted_order.len() <= d.submitted.len() * 2 + 1024);
        // The first one pushed out is taken in again when a lookup reads it again.
        let (_, rec) = flood_record(0, 4096);
        d.ingest(KEYPACKAGE_TOPIC, &rec, crypto).unwrap();
        assert!(d.submitted.contains_key(&first), "read again, held again");
    }
}
