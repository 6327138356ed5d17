//! Being found: what an installation publishes to the directory, and what a lookup reads.
//!
//! The device list and the key package go sealed ([`directory::sealed`], PRIV2), so that
//! nothing published while registering, linking, removing or rotating names the account
//! or links its installations; libchat's plain records are published too only when the
//! app asks ([`Client::set_public_records`]), and are always read.

use openmls_traits::OpenMlsProvider as _;

use super::Client;
use crate::core::address::AccountId;
use crate::core::directory::registry::Op;
use crate::core::directory::{self, ACCOUNT_TOPIC, KEYPACKAGE_TOPIC};
use crate::core::effects::Effects;
use crate::core::error::Result;
use crate::core::store::Store;

/// How often an open installation publishes its directory records again.
pub const REPUBLISH_MS: u64 = 12 * 60 * 60 * 1000;

impl Client {
    /// Publishes the device bundle and key package again and subscribes the inbox.
    pub fn announce(&mut self, now_ms: u64) -> Result<Effects> {
        let mut fx = Effects::default();
        self.announce_into(&mut fx, now_ms)?;
        fx.wake_at = self.next_wake(now_ms);
        Ok(fx)
    }

    pub(super) fn announce_into(&mut self, fx: &mut Effects, now_ms: u64) -> Result<()> {
        self.announced_at = now_ms;
        fx.subscribe.push(self.installation.id().inbox_topic().as_str().to_owned());
        self.publish_bundle(fx)?;
        if self.registry.is_some() {
            let record = directory::key_package_record(&self.installation, now_ms, &self.key_package)?;
            self.registry_put(fx, Op::PutKeyPackage, self.installation.id().to_hex(), record);
            return Ok(());
        }
        let kp = directory::key_package_submission(&self.installation, now_ms, &self.key_package)?;
        let (topic, record) = directory::sealed_key_package(
            self.rng.as_mut(),
            &self.account.id(),
            &self.installation.id(),
            &kp,
        )?;
        self.enqueue(fx, topic, record)?;
        if self.public_records {
            self.enqueue(fx, KEYPACKAGE_TOPIC.into(), kp)?;
        }
        Ok(())
    }

    /// When the records are published again: stores keep messages for a limited time (a
    /// query without a start time reaches back 24 hours on the public networks), so an
    /// open installation republishes them well before they are forgotten.
    pub(super) fn republish_at(&self) -> Option<u64> {
        (self.announced_at > 0 && !self.removed).then(|| self.announced_at.saturating_add(REPUBLISH_MS))
    }

    /// Republishes the records when their time has come (`tick`).
    pub(super) fn republish_due(&mut self, now_ms: u64, fx: &mut Effects) -> Result<()> {
        if self.republish_at().is_some_and(|t| now_ms >= t) {
            self.announce_into(fx, now_ms)?;
        }
        Ok(())
    }

    /// Publishes the account's current signed device list and log.
    pub(super) fn publish_bundle(&mut self, fx: &mut Effects) -> Result<()> {
        if self.registry.is_some() {
            // A registry takes the lamport bundle only (v0 has no endpoint for the log,
            // which reaches our peers in grants, Adds and cards).
            let record = (self.bundle.payload.clone(), self.bundle.signature.to_vec());
            self.registry_put(fx, Op::PutAccount, self.account.id().to_hex(), record);
            return Ok(());
        }
        let (topic, record) = directory::sealed_bundle(self.rng.as_mut(), &self.bundle)?;
        self.enqueue(fx, topic, record)?;
        // The log beside it (the chat-store registry parses only the lamport bundle, so the
        // log goes sealed only).
        let (topic, record) = directory::sealed_log(self.rng.as_mut(), &self.log)?;
        self.enqueue(fx, topic, record)?;
        if self.public_records {
            self.enqueue(fx, ACCOUNT_TOPIC.into(), directory::account_submission(&self.bundle))?;
        }
        Ok(())
    }

    /// Whether libchat's plain records are published as well as the sealed ones (off by
    /// default: they name the account and its installations to anyone reading the topics).
    pub fn set_public_records(&mut self, on: bool) {
        self.public_records = on;
    }

    /// The shared topics of libchat's plain records (read by every lookup).
    pub fn directory_topics() -> [&'static str; 2] {
        [ACCOUNT_TOPIC, KEYPACKAGE_TOPIC]
    }

    /// Whether a topic carries directory records (libchat's shared ones or our sealed ones).
    pub fn is_directory_topic(topic: &str) -> bool {
        topic == ACCOUNT_TOPIC
            || topic == KEYPACKAGE_TOPIC
            || topic.starts_with(directory::sealed::TOPIC_PREFIX)
    }

    /// The topics a lookup of these accounts reads: the shared ones, each account's sealed
    /// list, and the sealed key packages of the installations its known list shows. The
    /// driver reads them, ingests what it found, and asks again until no new topic comes
    /// (a list read in the first pass names the key-package topics of the second).
    /// Account ids that do not parse are skipped.
    pub fn lookup_topics(&mut self, accounts: &[&str]) -> Vec<String> {
        let accounts: Vec<AccountId> = accounts.iter().filter_map(|a| AccountId::parse(a).ok()).collect();
        self.directory.lookup_topics(&accounts)
    }

    /// Persists what changed in the directory's knowledge of other accounts (their lists
    /// and logs: rollback protection survives a restart).
    pub(super) fn flush_directory(&mut self, fx: &mut Effects) -> Result<()> {
        let own = self.account.id();
        for (account, known) in self.directory.take_dirty() {
            if account == own {
                continue; // in the account record
            }
            match known {
                Some((bundle, log)) => {
                    let rec = crate::core::store::KnownAccountRecord {
                        bundle,
                        log,
                        account: account.as_bytes().to_vec(),
                    };
                    let bytes = crate::core::store::encode(&rec);
                    fx.store.push(self.cipher.put(
                        self.rng.as_mut(),
                        Store::Installations,
                        account.as_bytes(),
                        &bytes,
                    )?);
                }
                None => fx.store.push(self.cipher.delete(Store::Installations, account.as_bytes())),
            }
        }
        Ok(())
    }

    /// Records one directory record read by a lookup. Bad records are errors
    /// the driver may ignore: the directory topics are shared space.
    pub fn ingest_directory(&mut self, topic: &str, payload: &[u8]) -> Result<()> {
        self.directory.ingest(topic, payload, self.provider.crypto())
    }
}
