//! The storage model (DESIGN.md §4): named object stores, a schema version, the
//! store cipher, and the records the core persists.
//!
//! The core never touches a database. Each call returns the storage operations
//! it implies in its `Effects` (already encrypted and with hashed keys); the
//! driver applies one call's operations in one transaction before it publishes
//! anything. At start the driver hands every record of the loaded stores back to
//! `Client::restore`. Values are XChaCha20-Poly1305 under a key derived from the
//! store key, with the store name and record key as associated data, so a value
//! moved to another key does not open. Keys are keyed BLAKE2b hashes, except
//! message keys, which keep a sequence number in clear after a hashed
//! conversation prefix so that history pages by key range, never by a scan.

use std::fmt;

use rand_core::CryptoRngCore;
use serde::Serialize;
use zeroize::{Zeroize, ZeroizeOnDrop};

mod records;

pub use records::*;

use super::address::blake2b;
use super::error::{CoreError, Result};

/// The schema this build writes. Older stores are migrated step by step ([`migrate`]).
pub const SCHEMA_VERSION: u32 = 2;

/// The object stores.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub enum Store {
    /// Schema version and the store-key check.
    Meta,
    /// The account and installation keys.
    Account,
    /// openmls state (one record per openmls storage entry).
    Mls,
    /// Per-conversation metadata and reliability state.
    Conversations,
    /// Message history, keyed for paging.
    Messages,
    /// Message id → (conversation, sequence), for `before` cursors and de-duplication.
    MessageIndex,
    /// Envelopes not yet accepted by the transport.
    Outbox,
    /// Digests of inbound envelopes already handled.
    Seen,
    /// Contacts and blocks (reserved for the contacts issue).
    Contacts,
    /// Known accounts' signed device lists and logs (issue 14: the directory's records,
    /// kept so that rollback protection survives restarts; the name is from when it was
    /// reserved for installations, which live in the account record instead).
    Installations,
}

impl Store {
    /// Every store, in a stable order (the driver creates them all).
    pub const ALL: [Store; 10] = [
        Store::Meta,
        Store::Account,
        Store::Mls,
        Store::Conversations,
        Store::Messages,
        Store::MessageIndex,
        Store::Outbox,
        Store::Seen,
        Store::Contacts,
        Store::Installations,
    ];
    /// The name the backends use.
    pub fn name(self) -> &'static str {
        match self {
            Store::Meta => "meta",
            Store::Account => "account",
            Store::Mls => "mls",
            Store::Conversations => "conversations",
            Store::Messages => "messages",
            Store::MessageIndex => "message_index",
            Store::Outbox => "outbox",
            Store::Seen => "seen",
            Store::Contacts => "contacts",
            Store::Installations => "installations",
        }
    }
    /// Parses a backend name.
    pub fn from_name(s: &str) -> Option<Store> {
        Store::ALL.into_iter().find(|st| st.name() == s)
    }
    /// Stores loaded whole at start (messages are paged instead).
    pub fn loaded_at_start(self) -> bool {
        !matches!(self, Store::Messages | Store::MessageIndex)
    }
}

/// One storage operation: put when `value` is set, delete otherwise.
#[derive(Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StoreOp {
    /// The object store.
    pub store: &'static str,
    /// The (hashed) record key.
    #[serde(with = "serde_bytes")]
    pub key: Vec<u8>,
    /// The sealed value; `None` deletes.
    #[serde(with = "serde_bytes")]
    pub value: Option<Vec<u8>>,
}

impl fmt::Debug for StoreOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "StoreOp({} {} {})",
            self.store,
            hex::encode(&self.key),
            self.value.as_ref().map_or(0, Vec::len)
        )
    }
}

/// Encrypts values and hashes keys under one store key. Zeroized on drop.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct StoreCipher {
    value_key: [u8; 32],
    index_key: [u8; 32],
}

impl fmt::Debug for StoreCipher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("StoreCipher(<redacted>)")
    }
}

/// The sealed-value format version.
const SEAL_VERSION: u8 = 1;
const NONCE_LEN: usize = 24;
const TAG_LEN: usize = 16;

fn keyed(key: &[u8; 32], parts: &[&[u8]]) -> [u8; 32] {
    use blake2::digest::Mac;
    let mut out = [0u8; 32];
    // BLAKE2b takes keys of up to 64 bytes, so a 32-byte key never fails; if it ever did,
    // the fallback is still a hash of the key and the parts, never an all-zero key.
    match blake2::Blake2bMac::<blake2::digest::consts::U32>::new_from_slice(key) {
        Ok(mut mac) => {
            for p in parts {
                mac.update(p);
            }
            out.copy_from_slice(&mac.finalize().into_bytes());
        }
        Err(_) => {
            let mut all: Vec<&[u8]> = vec![b"logos-chat/keyed-fallback", key];
            all.extend_from_slice(parts);
            out = super::address::blake2b::<32>(&all);
        }
    }
    out
}

impl StoreCipher {
    /// Derives the value and index keys from a 32-byte store key.
    pub fn new(store_key: &[u8; 32]) -> Self {
        StoreCipher {
            value_key: keyed(store_key, &[b"logos-chat store value key v1"]),
            index_key: keyed(store_key, &[b"logos-chat store index key v1"]),
        }
    }

    /// The record key of a logical key: keyed BLAKE2b, leaking nothing of it.
    pub fn key(&self, store: Store, logical: &[u8]) -> Vec<u8> {
        keyed(&self.index_key, &[store.name().as_bytes(), b"\0", logical]).to_vec()
    }

    /// The 16-byte prefix of a conversation's message keys.
    pub fn conversation_prefix(&self, conversation: &str) -> [u8; 16] {
        let h = keyed(&self.index_key, &[b"messages\0", conversation.as_bytes()]);
        let mut p = [0u8; 16];
        p.copy_from_slice(&h[..16]);
        p
    }

    /// A message's record key: the conversation prefix ‖ sequence (u64 BE), so that a
    /// key range is one conversation's history in order.
    pub fn message_key(&self, conversation: &str, seq: u64) -> Vec<u8> {
        let mut k = self.conversation_prefix(conversation).to_vec();
        k.extend_from_slice(&seq.to_be_bytes());
        k
    }

    /// `version ‖ nonce(24) ‖ ciphertext ‖ tag(16)`, bound to the store and key.
    pub fn seal(
        &self,
        rng: &mut dyn CryptoRngCore,
        store: Store,
        key: &[u8],
        plaintext: &[u8],
    ) -> Result<Vec<u8>> {
        let mut nonce = [0u8; NONCE_LEN];
        rng.fill_bytes(&mut nonce);
        let aad = [store.name().as_bytes(), b"\0", key].concat();
        let mut ct = vec![0u8; plaintext.len().saturating_add(TAG_LEN)];
        libcrux_chacha20poly1305::xchacha20_poly1305::encrypt(
            &self.value_key,
            plaintext,
            &mut ct,
            &aad,
            &nonce,
        )
        .map_err(|_| CoreError::StoreCorrupt("value too large to seal".into()))?;
        let mut out = Vec::with_capacity(ct.len().saturating_add(1 + NONCE_LEN));
        out.push(SEAL_VERSION);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ct);
        Ok(out)
    }

    /// Opens a sealed value; any failure is `StoreCorrupt` (or a wrong store key).
    pub fn open(&self, store: Store, key: &[u8], sealed: &[u8]) -> Result<Vec<u8>> {
        let bad = || CoreError::StoreCorrupt(format!("a {} record does not authenticate", store.name()));
        let (&version, rest) = sealed.split_first().ok_or_else(bad)?;
        if version != SEAL_VERSION {
            return Err(bad());
        }
        let (nonce, ct) = rest.split_first_chunk::<NONCE_LEN>().ok_or_else(bad)?;
        let len = ct.len().checked_sub(TAG_LEN).ok_or_else(bad)?;
        let aad = [store.name().as_bytes(), b"\0", key].concat();
        let mut pt = vec![0u8; len];
        libcrux_chacha20poly1305::xchacha20_poly1305::decrypt(&self.value_key, &mut pt, ct, &aad, nonce)
            .map_err(|_| bad())?;
        Ok(pt)
    }

    /// A sealed put.
    pub fn put(
        &self,
        rng: &mut dyn CryptoRngCore,
        store: Store,
        logical: &[u8],
        value: &[u8],
    ) -> Result<StoreOp> {
        let key = self.key(store, logical);
        let value = self.seal(rng, store, &key, value)?;
        Ok(StoreOp { store: store.name(), key, value: Some(value) })
    }

    /// A delete.
    pub fn delete(&self, store: Store, logical: &[u8]) -> StoreOp {
        StoreOp { store: store.name(), key: self.key(store, logical), value: None }
    }
}

/// Decodes a record's plaintext.
pub fn decode_record<M: prost::Message + Default>(what: &'static str, bytes: &[u8]) -> Result<M> {
    M::decode(bytes).map_err(|e| CoreError::StoreCorrupt(format!("{what} record: {e}")))
}

/// A record as loaded from a backend: (store name, key, sealed value).
pub type LoadedRecord = (String, Vec<u8>, Vec<u8>);

/// Brings records written at an older schema to [`SCHEMA_VERSION`], one step at a
/// time. Each step is a function with its own test. Version 2 encodes openmls's state
/// with postcard instead of JSON (`conversation::mls_store`); a version-1 store opens,
/// and its MLS entries migrate as they are read (the mls store's legacy mode), so there
/// is no step to run here. A store newer than this build is refused.
pub fn migrate(from: u32) -> Result<()> {
    match from {
        SCHEMA_VERSION | 1 => Ok(()),
        v if v > SCHEMA_VERSION => Err(CoreError::StoreCorrupt(format!(
            "store schema {v} is newer than this build ({SCHEMA_VERSION})"
        ))),
        v => Err(CoreError::StoreCorrupt(format!("no migration from schema {v}"))),
    }
}

/// Encodes a record.
pub fn encode<M: prost::Message>(m: &M) -> Vec<u8> {
    m.encode_to_vec()
}

/// The logical key of the single meta / account records.
pub const SINGLETON: &[u8] = b"singleton";

/// Digest of an openmls key, used as the logical key of its record.
pub fn mls_logical_key(k: &[u8]) -> [u8; 32] {
    blake2b::<32>(&[b"mls\0", k])
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_chacha::rand_core::SeedableRng;

    #[test]
    fn sealed_values_open_only_at_their_own_key() {
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(1);
        let c = StoreCipher::new(&[7; 32]);
        let op = c.put(&mut rng, Store::Account, SINGLETON, b"secret seed").unwrap();
        let sealed = op.value.clone().unwrap();
        assert!(!sealed.windows(11).any(|w| w == b"secret seed"));
        assert_eq!(c.open(Store::Account, &op.key, &sealed).unwrap(), b"secret seed");
        assert!(c.open(Store::Mls, &op.key, &sealed).is_err(), "another store");
        assert!(c.open(Store::Account, &c.key(Store::Account, b"other"), &sealed).is_err(), "another key");
        assert!(
            StoreCipher::new(&[8; 32]).open(Store::Account, &op.key, &sealed).is_err(),
            "another store key"
        );
        let mut flipped = sealed.clone();
        flipped[30] ^= 1;
        assert_eq!(c.open(Store::Account, &op.key, &flipped).unwrap_err().code().as_str(), "STORE_CORRUPT");
        for cut in 0..sealed.len() {
            assert!(c.open(Store::Account, &op.key, &sealed[..cut]).is_err());
        }
    }

    #[test]
    fn message_keys_sort_by_sequence_within_a_conversation() {
        let c = StoreCipher::new(&[1; 32]);
        let a: Vec<Vec<u8>> = (0..300u64).map(|s| c.message_key("aa", s)).collect();
        let mut sorted = a.clone();
        sorted.sort();
        assert_eq!(a, sorted);
        assert_ne!(c.message_key("aa", 0)[..16], c.message_key("bb", 0)[..16]);
        assert!(!format!("{c:?}").contains("[1"), "no key material in Debug");
    }

    #[test]
    fn schema_versions_are_checked() {
        assert!(migrate(SCHEMA_VERSION).is_ok());
        assert!(migrate(SCHEMA_VERSION + 1).is_err());
        assert!(migrate(0).is_err());
    }
}
