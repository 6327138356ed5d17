//! openmls's state, kept by us: the [`Provider`] every conversation uses (libcrux crypto
//! and randomness, and [`MlsStore`]).
//!
//! `MlsStore` is openmls's `StorageProvider` over one in-memory map from byte keys to
//! byte values, which the client mirrors into the `mls` object store (a call's changes
//! are the difference). Keys are `label ‖ postcard(key) ‖ version`, values postcard, and
//! a list (own leaf nodes, proposal refs) a postcard `Vec` of encoded items. We keep it
//! ourselves rather than use openmls's memory storage because that one encodes in JSON,
//! whose per-type code was the largest part of the `.wasm` we did not need.
//!
//! Stores of schema 1 hold that JSON form (`Legacy`): an entry missing in the new form is
//! looked up under its old key, decoded from JSON, written back in the new form and its
//! old entry removed, so a schema-1 store migrates as it is used. Only JSON decoding (and
//! the encoding of the few key types) stays in the package for that.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::RwLock;

use openmls_libcrux_crypto::CryptoProvider;
use openmls_traits::storage::CURRENT_VERSION;
use openmls_traits::types::CryptoError;
use openmls_traits::OpenMlsProvider;
use serde::de::DeserializeOwned;
use serde::Serialize;
use zeroize::Zeroizing;

/// The provider of every MLS operation: libcrux crypto and randomness, our storage.
pub struct Provider {
    crypto: CryptoProvider,
    storage: MlsStore,
}

impl Provider {
    /// A provider with empty storage.
    pub fn new() -> Result<Self, CryptoError> {
        Ok(Provider { crypto: CryptoProvider::new()?, storage: MlsStore::default() })
    }
}

impl OpenMlsProvider for Provider {
    type CryptoProvider = CryptoProvider;
    type RandProvider = CryptoProvider;
    type StorageProvider = MlsStore;

    fn storage(&self) -> &MlsStore {
        &self.storage
    }
    fn crypto(&self) -> &CryptoProvider {
        &self.crypto
    }
    fn rand(&self) -> &CryptoProvider {
        &self.crypto
    }
}

/// An encoded openmls value: it may hold a private key or an epoch secret, so its
/// bytes are wiped when it is dropped, overwritten or removed.
pub type Secret = Zeroizing<Vec<u8>>;

/// openmls's entries: encoded keys to encoded values.
pub type Entries = HashMap<Vec<u8>, Secret>;

/// openmls's storage: encoded keys to encoded values.
#[derive(Default)]
pub struct MlsStore {
    /// The entries (the client persists them and diffs them against its mirror).
    pub values: RwLock<Entries>,
    /// Entries of schema 1 (JSON, openmls's memory-storage layout) may be present.
    legacy: AtomicBool,
    /// Writes through openmls's storage API so far: a caller that saw the same count
    /// knows nothing changed (no diff to persist, nothing to roll back).
    writes: AtomicU64,
}

impl MlsStore {
    /// Marks the entries as possibly of schema 1 (set when such a store is restored).
    pub fn set_legacy(&self, legacy: bool) {
        self.legacy.store(legacy, Ordering::Relaxed);
    }

    /// How many writes openmls has made (see the field).
    pub fn writes(&self) -> u64 {
        self.writes.load(Ordering::Relaxed)
    }
}

impl std::fmt::Debug for MlsStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = self.values.read().map(|v| v.len()).unwrap_or(0);
        f.debug_struct("MlsStore").field("entries", &n).finish()
    }
}

/// A storage failure: an entry that does not decode, or a poisoned lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MlsStoreError {
    /// An entry did not encode or decode.
    Codec,
    /// A writer panicked while holding the map.
    Poisoned,
}

impl std::fmt::Display for MlsStoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            MlsStoreError::Codec => "an MLS storage entry does not encode or decode",
            MlsStoreError::Poisoned => "the MLS storage lock is poisoned",
        })
    }
}

impl std::error::Error for MlsStoreError {}

type R<T> = Result<T, MlsStoreError>;

/// Schema-1 labels, by ours.
fn legacy_label(label: &[u8]) -> &'static [u8] {
    match label {
        label::JOIN_CONFIG => b"MlsGroupJoinConfig",
        label::OWN_LEAF_NODES => b"OwnLeafNodes",
        label::PROPOSAL => b"QueuedProposal",
        label::PROPOSAL_REFS => b"ProposalQueueRefs",
        label::TREE => b"Tree",
        label::INTERIM_HASH => b"InterimTranscriptHash",
        label::CONTEXT => b"GroupContext",
        label::CONFIRMATION_TAG => b"ConfirmationTag",
        label::GROUP_STATE => b"GroupState",
        label::MESSAGE_SECRETS => b"MessageSecrets",
        label::RESUMPTION_PSK => b"ResumptionPsk",
        label::OWN_LEAF_INDEX => b"OwnLeafNodeIndex",
        label::EPOCH_SECRETS => b"EpochSecrets",
        label::SIGNATURE_KEY_PAIR => b"SignatureKeyPair",
        label::ENCRYPTION_KEY_PAIR => b"EncryptionKeyPair",
        label::EPOCH_KEY_PAIRS => b"EpochKeyPairs",
        label::KEY_PACKAGE => b"KeyPackage",
        // label::PSK, the last one.
        _ => b"Psk",
    }
}

/// A key in both layouts: ours encodes it whole with postcard; schema 1 concatenated
/// the JSON of its parts (a tuple key as one JSON array, the epoch key pairs' three
/// parts one after the other).
trait StoreKey {
    fn ours(&self) -> R<Vec<u8>>;
    fn legacy(&self) -> R<Vec<u8>>;
}

impl<T: Serialize> StoreKey for T {
    fn ours(&self) -> R<Vec<u8>> {
        encode(self)
    }
    fn legacy(&self) -> R<Vec<u8>> {
        serde_json::to_vec(self).map_err(|_| MlsStoreError::Codec)
    }
}

/// The key of a group's epoch key pairs.
struct EpochKeyPairs<'a, G, E>(&'a G, &'a E, u32);

impl<G: Serialize, E: Serialize> StoreKey for EpochKeyPairs<'_, G, E> {
    fn ours(&self) -> R<Vec<u8>> {
        encode(&(self.0, self.1, self.2))
    }
    fn legacy(&self) -> R<Vec<u8>> {
        let mut k = self.0.legacy()?;
        k.extend_from_slice(&self.1.legacy()?);
        k.extend_from_slice(&self.2.legacy()?);
        Ok(k)
    }
}

mod label {
    pub const JOIN_CONFIG: &[u8] = b"join_config";
    pub const OWN_LEAF_NODES: &[u8] = b"own_leaf_nodes";
    pub const PROPOSAL: &[u8] = b"proposal";
    pub const PROPOSAL_REFS: &[u8] = b"proposal_refs";
    pub const TREE: &[u8] = b"tree";
    pub const INTERIM_HASH: &[u8] = b"interim_hash";
    pub const CONTEXT: &[u8] = b"context";
    pub const CONFIRMATION_TAG: &[u8] = b"confirmation_tag";
    pub const GROUP_STATE: &[u8] = b"group_state";
    pub const MESSAGE_SECRETS: &[u8] = b"message_secrets";
    pub const RESUMPTION_PSK: &[u8] = b"resumption_psk";
    pub const OWN_LEAF_INDEX: &[u8] = b"own_leaf_index";
    pub const EPOCH_SECRETS: &[u8] = b"epoch_secrets";
    pub const SIGNATURE_KEY_PAIR: &[u8] = b"signature_key_pair";
    pub const ENCRYPTION_KEY_PAIR: &[u8] = b"encryption_key_pair";
    pub const EPOCH_KEY_PAIRS: &[u8] = b"epoch_key_pairs";
    pub const KEY_PACKAGE: &[u8] = b"key_package";
    pub const PSK: &[u8] = b"psk";
}

fn encode(v: &impl Serialize) -> R<Vec<u8>> {
    postcard::to_allocvec(v).map_err(|_| MlsStoreError::Codec)
}

fn decode<V: DeserializeOwned>(b: &[u8]) -> R<V> {
    postcard::from_bytes(b).map_err(|_| MlsStoreError::Codec)
}

/// Decodes a schema-1 (JSON) value.
fn from_json<V: DeserializeOwned>(json: &[u8]) -> R<V> {
    serde_json::from_slice(json).map_err(|_| MlsStoreError::Codec)
}

fn storage_key(label: &[u8], key: &(impl StoreKey + ?Sized)) -> R<Vec<u8>> {
    let mut k = label.to_vec();
    k.push(b':');
    k.extend_from_slice(&key.ours()?);
    k.extend_from_slice(&CURRENT_VERSION.to_be_bytes());
    Ok(k)
}

fn legacy_key(label: &[u8], key: &(impl StoreKey + ?Sized)) -> R<Vec<u8>> {
    let mut k = legacy_label(label).to_vec();
    k.extend_from_slice(&key.legacy()?);
    k.extend_from_slice(&CURRENT_VERSION.to_be_bytes());
    Ok(k)
}

impl MlsStore {
    /// An entry's key, and its schema-1 key when the store may hold one.
    fn keys(&self, label: &[u8], key: &(impl StoreKey + ?Sized)) -> R<(Vec<u8>, Option<Vec<u8>>)> {
        let old = if self.legacy.load(Ordering::Relaxed) { Some(legacy_key(label, key)?) } else { None };
        Ok((storage_key(label, key)?, old))
    }

    fn put(&self, label: &[u8], key: &(impl StoreKey + ?Sized), value: &(impl Serialize + ?Sized)) -> R<()> {
        let ((k, old), v) = (self.keys(label, key)?, encode(&value)?);
        let mut values = self.values.write().map_err(|_| MlsStoreError::Poisoned)?;
        self.writes.fetch_add(1, Ordering::Relaxed);
        if let Some(old) = old {
            values.remove(&old);
        }
        values.insert(k, Zeroizing::new(v));
        Ok(())
    }

    fn remove(&self, label: &[u8], key: &(impl StoreKey + ?Sized)) -> R<()> {
        let (k, old) = self.keys(label, key)?;
        let mut values = self.values.write().map_err(|_| MlsStoreError::Poisoned)?;
        self.writes.fetch_add(1, Ordering::Relaxed);
        values.remove(&k);
        if let Some(old) = old {
            values.remove(&old);
        }
        Ok(())
    }

    /// An entry's bytes: ours, else its schema-1 JSON (`Err` side) if the store has it.
    fn bytes(
        &self,
        label: &[u8],
        key: &(impl StoreKey + ?Sized),
    ) -> R<Option<std::result::Result<Vec<u8>, Vec<u8>>>> {
        let (k, old) = self.keys(label, key)?;
        let values = self.values.read().map_err(|_| MlsStoreError::Poisoned)?;
        if let Some(v) = values.get(&k) {
            return Ok(Some(Ok(v.to_vec())));
        }
        Ok(old.and_then(|old| values.get(&old).map(|v| v.to_vec())).map(Err))
    }

    /// An entry, migrated from schema 1 (decoded from JSON and rewritten) if need be.
    fn get<V: Serialize + DeserializeOwned>(
        &self,
        label: &[u8],
        key: &(impl StoreKey + ?Sized),
    ) -> R<Option<V>> {
        match self.bytes(label, key)? {
            None => Ok(None),
            Some(Ok(v)) => decode(&v).map(Some),
            Some(Err(json)) => {
                let v: V = from_json(&json)?;
                self.put(label, key, &v)?;
                Ok(Some(v))
            }
        }
    }

    /// A list entry's items, each encoded; a schema-1 list is migrated (`V` is the items' type).
    fn items<V: Serialize + DeserializeOwned>(
        &self,
        label: &[u8],
        key: &(impl StoreKey + ?Sized),
    ) -> R<Vec<Vec<u8>>> {
        match self.bytes(label, key)? {
            None => Ok(Vec::new()),
            Some(Ok(v)) => decode(&v),
            Some(Err(json)) => {
                let old: Vec<Vec<u8>> = from_json(&json)?;
                let items = old.iter().map(|b| encode(&from_json::<V>(b)?)).collect::<R<Vec<_>>>()?;
                self.put(label, key, &items)?;
                Ok(items)
            }
        }
    }

    fn list<V: Serialize + DeserializeOwned>(
        &self,
        label: &[u8],
        key: &(impl StoreKey + ?Sized),
    ) -> R<Vec<V>> {
        self.items::<V>(label, key)?.iter().map(|b| decode(b)).collect()
    }

    fn push_item<V: Serialize + DeserializeOwned>(
        &self,
        label: &[u8],
        key: &(impl StoreKey + ?Sized),
        item: &V,
    ) -> R<()> {
        let mut items = self.items::<V>(label, key)?;
        items.push(encode(item)?);
        self.put(label, key, &items)
    }

    fn drop_item<V: Serialize + DeserializeOwned>(
        &self,
        label: &[u8],
        key: &(impl StoreKey + ?Sized),
        item: &V,
    ) -> R<()> {
        let mut items = self.items::<V>(label, key)?;
        let item = encode(item)?;
        if let Some(i) = items.iter().position(|x| *x == item) {
            items.remove(i);
        }
        self.put(label, key, &items)
    }
}

mod storage_provider;

#[cfg(test)]
mod tests {
    use openmls::prelude::{GroupId, LeafNodeIndex};
    use openmls_traits::storage::StorageProvider as _;

    use super::*;

    #[test]
    fn a_schema_1_entry_is_read_and_rewritten_in_the_new_form() {
        let store = MlsStore::default();
        store.set_legacy(true);
        let gid = GroupId::from_slice(&[1, 2, 3]);
        let idx = LeafNodeIndex::new(7);
        // Schema 1: label ‖ JSON(key) ‖ version → JSON(value).
        let mut old = b"OwnLeafNodeIndex".to_vec();
        old.extend(serde_json::to_vec(&gid).unwrap());
        old.extend(1u16.to_be_bytes());
        store.values.write().unwrap().insert(old.clone(), Zeroizing::new(serde_json::to_vec(&idx).unwrap()));
        let got: Option<LeafNodeIndex> = store.own_leaf_index(&gid).unwrap();
        assert_eq!(got, Some(idx));
        let values = store.values.read().unwrap();
        assert!(!values.contains_key(&old), "the old entry is gone");
        assert_eq!(values.len(), 1, "and the new one holds it");
        drop(values);
        store.set_legacy(false);
        assert_eq!(store.own_leaf_index::<GroupId, LeafNodeIndex>(&gid).unwrap(), Some(idx));
    }

    #[test]
    fn without_legacy_mode_a_json_entry_is_not_read() {
        let store = MlsStore::default();
        let gid = GroupId::from_slice(&[9]);
        let mut old = b"OwnLeafNodeIndex".to_vec();
        old.extend(serde_json::to_vec(&gid).unwrap());
        old.extend(1u16.to_be_bytes());
        store
            .values
            .write()
            .unwrap()
            .insert(old, Zeroizing::new(serde_json::to_vec(&LeafNodeIndex::new(1)).unwrap()));
        assert_eq!(store.own_leaf_index::<GroupId, LeafNodeIndex>(&gid).unwrap(), None);
    }
}
