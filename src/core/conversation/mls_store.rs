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
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::RwLock;

use openmls_libcrux_crypto::CryptoProvider;
use openmls_traits::storage::{traits, StorageProvider, CURRENT_VERSION};
use openmls_traits::types::CryptoError;
use openmls_traits::OpenMlsProvider;
use serde::de::DeserializeOwned;
use serde::Serialize;

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

/// openmls's storage: encoded keys to encoded values.
#[derive(Default)]
pub struct MlsStore {
    /// The entries (the client persists them and diffs them against its mirror).
    pub values: RwLock<HashMap<Vec<u8>, Vec<u8>>>,
    /// Entries of schema 1 (JSON, openmls's memory-storage layout) may be present.
    legacy: AtomicBool,
}

impl MlsStore {
    /// Marks the entries as possibly of schema 1 (set when such a store is restored).
    pub fn set_legacy(&self, legacy: bool) {
        self.legacy.store(legacy, Ordering::Relaxed);
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
    fn is_legacy(&self) -> bool {
        self.legacy.load(Ordering::Relaxed)
    }

    fn put_raw(&self, label: &[u8], key: &(impl StoreKey + ?Sized), value: Vec<u8>) -> R<()> {
        let k = storage_key(label, key)?;
        let old = if self.is_legacy() { Some(legacy_key(label, key)?) } else { None };
        let mut values = self.values.write().map_err(|_| MlsStoreError::Poisoned)?;
        if let Some(old) = old {
            values.remove(&old);
        }
        values.insert(k, value);
        Ok(())
    }

    fn put(&self, label: &[u8], key: &(impl StoreKey + ?Sized), value: &(impl Serialize + ?Sized)) -> R<()> {
        self.put_raw(label, key, encode(&value)?)
    }

    /// A schema-1 entry's bytes (JSON), if the store may have one.
    fn legacy_bytes(&self, label: &[u8], key: &(impl StoreKey + ?Sized)) -> R<Option<Vec<u8>>> {
        if !self.is_legacy() {
            return Ok(None);
        }
        let k = legacy_key(label, key)?;
        Ok(self.values.read().map_err(|_| MlsStoreError::Poisoned)?.get(&k).cloned())
    }

    fn get<V: Serialize + DeserializeOwned>(
        &self,
        label: &[u8],
        key: &(impl StoreKey + ?Sized),
    ) -> R<Option<V>> {
        let k = storage_key(label, key)?;
        if let Some(v) = self.values.read().map_err(|_| MlsStoreError::Poisoned)?.get(&k) {
            return decode(v).map(Some);
        }
        let Some(json) = self.legacy_bytes(label, key)? else { return Ok(None) };
        let v: V = from_json(&json)?;
        self.put(label, key, &v)?;
        Ok(Some(v))
    }

    fn remove(&self, label: &[u8], key: &(impl StoreKey + ?Sized)) -> R<()> {
        let k = storage_key(label, key)?;
        let old = if self.is_legacy() { Some(legacy_key(label, key)?) } else { None };
        let mut values = self.values.write().map_err(|_| MlsStoreError::Poisoned)?;
        values.remove(&k);
        if let Some(old) = old {
            values.remove(&old);
        }
        Ok(())
    }

    /// A list entry's items (migrated from schema 1 if need be).
    fn list<V: Serialize + DeserializeOwned>(
        &self,
        label: &[u8],
        key: &(impl StoreKey + ?Sized),
    ) -> R<Vec<V>> {
        let k = storage_key(label, key)?;
        if let Some(v) = self.values.read().map_err(|_| MlsStoreError::Poisoned)?.get(&k) {
            let items: Vec<Vec<u8>> = decode(v)?;
            return items.iter().map(|b| decode(b)).collect();
        }
        let Some(json) = self.legacy_bytes(label, key)? else { return Ok(Vec::new()) };
        let items: Vec<Vec<u8>> = from_json(&json)?;
        let items: Vec<V> = items.iter().map(|b| from_json(b)).collect::<R<_>>()?;
        self.put_list(label, key, &items)?;
        Ok(items)
    }

    fn put_list<V: Serialize>(&self, label: &[u8], key: &(impl StoreKey + ?Sized), items: &[V]) -> R<()> {
        let encoded = items.iter().map(encode).collect::<R<Vec<Vec<u8>>>>()?;
        self.put(label, key, &encoded)
    }

    fn push_item<V: Serialize + DeserializeOwned>(
        &self,
        label: &[u8],
        key: &(impl StoreKey + ?Sized),
        item: &V,
    ) -> R<()> {
        let items: Vec<V> = self.list(label, key)?;
        let mut encoded = items.iter().map(encode).collect::<R<Vec<Vec<u8>>>>()?;
        encoded.push(encode(item)?);
        self.put(label, key, &encoded)
    }

    fn drop_item<V: Serialize + DeserializeOwned>(
        &self,
        label: &[u8],
        key: &(impl StoreKey + ?Sized),
        item: &V,
    ) -> R<()> {
        let items: Vec<V> = self.list(label, key)?;
        let mut encoded = items.iter().map(encode).collect::<R<Vec<Vec<u8>>>>()?;
        let item = encode(item)?;
        if let Some(i) = encoded.iter().position(|x| *x == item) {
            encoded.remove(i);
        }
        self.put(label, key, &encoded)
    }
}

/// The writers of entries keyed by the group id alone.
macro_rules! group_writers {
    ($($name:ident: $entity:ident => $label:expr),* $(,)?) => {$(
        fn $name<GroupId: traits::GroupId<CURRENT_VERSION>, T: traits::$entity<CURRENT_VERSION>>(
            &self,
            group_id: &GroupId,
            value: &T,
        ) -> R<()> {
            self.put($label, group_id, value)
        }
    )*};
}

/// The readers of entries keyed by the group id alone.
macro_rules! group_readers {
    ($($name:ident: $entity:ident => $label:expr),* $(,)?) => {$(
        fn $name<GroupId: traits::GroupId<CURRENT_VERSION>, T: traits::$entity<CURRENT_VERSION>>(
            &self,
            group_id: &GroupId,
        ) -> R<Option<T>> {
            self.get($label, group_id)
        }
    )*};
}

/// The deleters of entries keyed by the group id alone.
macro_rules! group_deleters {
    ($($name:ident => $label:expr),* $(,)?) => {$(
        fn $name<GroupId: traits::GroupId<CURRENT_VERSION>>(&self, group_id: &GroupId) -> R<()> {
            self.remove($label, group_id)
        }
    )*};
}

impl StorageProvider<CURRENT_VERSION> for MlsStore {
    type Error = MlsStoreError;

    group_writers! {
        write_mls_join_config: MlsGroupJoinConfig => label::JOIN_CONFIG,
        write_tree: TreeSync => label::TREE,
        write_interim_transcript_hash: InterimTranscriptHash => label::INTERIM_HASH,
        write_context: GroupContext => label::CONTEXT,
        write_confirmation_tag: ConfirmationTag => label::CONFIRMATION_TAG,
        write_message_secrets: MessageSecrets => label::MESSAGE_SECRETS,
        write_resumption_psk_store: ResumptionPskStore => label::RESUMPTION_PSK,
        write_own_leaf_index: LeafNodeIndex => label::OWN_LEAF_INDEX,
        write_group_epoch_secrets: GroupEpochSecrets => label::EPOCH_SECRETS,
    }

    fn append_own_leaf_node<
        GroupId: traits::GroupId<CURRENT_VERSION>,
        LeafNode: traits::LeafNode<CURRENT_VERSION>,
    >(
        &self,
        group_id: &GroupId,
        leaf_node: &LeafNode,
    ) -> R<()> {
        self.push_item(label::OWN_LEAF_NODES, group_id, leaf_node)
    }

    fn queue_proposal<
        GroupId: traits::GroupId<CURRENT_VERSION>,
        ProposalRef: traits::ProposalRef<CURRENT_VERSION>,
        QueuedProposal: traits::QueuedProposal<CURRENT_VERSION>,
    >(
        &self,
        group_id: &GroupId,
        proposal_ref: &ProposalRef,
        proposal: &QueuedProposal,
    ) -> R<()> {
        self.put(label::PROPOSAL, &(group_id, proposal_ref), proposal)?;
        self.push_item(label::PROPOSAL_REFS, group_id, proposal_ref)
    }

    fn write_group_state<
        GroupState: traits::GroupState<CURRENT_VERSION>,
        GroupId: traits::GroupId<CURRENT_VERSION>,
    >(
        &self,
        group_id: &GroupId,
        group_state: &GroupState,
    ) -> R<()> {
        self.put(label::GROUP_STATE, group_id, group_state)
    }

    fn write_signature_key_pair<
        SignaturePublicKey: traits::SignaturePublicKey<CURRENT_VERSION>,
        SignatureKeyPair: traits::SignatureKeyPair<CURRENT_VERSION>,
    >(
        &self,
        public_key: &SignaturePublicKey,
        signature_key_pair: &SignatureKeyPair,
    ) -> R<()> {
        self.put(label::SIGNATURE_KEY_PAIR, public_key, signature_key_pair)
    }

    fn write_encryption_key_pair<
        EncryptionKey: traits::EncryptionKey<CURRENT_VERSION>,
        HpkeKeyPair: traits::HpkeKeyPair<CURRENT_VERSION>,
    >(
        &self,
        public_key: &EncryptionKey,
        key_pair: &HpkeKeyPair,
    ) -> R<()> {
        self.put(label::ENCRYPTION_KEY_PAIR, public_key, key_pair)
    }

    fn write_encryption_epoch_key_pairs<
        GroupId: traits::GroupId<CURRENT_VERSION>,
        EpochKey: traits::EpochKey<CURRENT_VERSION>,
        HpkeKeyPair: traits::HpkeKeyPair<CURRENT_VERSION>,
    >(
        &self,
        group_id: &GroupId,
        epoch: &EpochKey,
        leaf_index: u32,
        key_pairs: &[HpkeKeyPair],
    ) -> R<()> {
        self.put(label::EPOCH_KEY_PAIRS, &EpochKeyPairs(group_id, epoch, leaf_index), key_pairs)
    }

    fn write_key_package<
        HashReference: traits::HashReference<CURRENT_VERSION>,
        KeyPackage: traits::KeyPackage<CURRENT_VERSION>,
    >(
        &self,
        hash_ref: &HashReference,
        key_package: &KeyPackage,
    ) -> R<()> {
        self.put(label::KEY_PACKAGE, hash_ref, key_package)
    }

    fn write_psk<PskId: traits::PskId<CURRENT_VERSION>, PskBundle: traits::PskBundle<CURRENT_VERSION>>(
        &self,
        psk_id: &PskId,
        psk: &PskBundle,
    ) -> R<()> {
        self.put(label::PSK, psk_id, psk)
    }

    group_readers! {
        mls_group_join_config: MlsGroupJoinConfig => label::JOIN_CONFIG,
        tree: TreeSync => label::TREE,
        group_context: GroupContext => label::CONTEXT,
        interim_transcript_hash: InterimTranscriptHash => label::INTERIM_HASH,
        confirmation_tag: ConfirmationTag => label::CONFIRMATION_TAG,
        message_secrets: MessageSecrets => label::MESSAGE_SECRETS,
        resumption_psk_store: ResumptionPskStore => label::RESUMPTION_PSK,
        own_leaf_index: LeafNodeIndex => label::OWN_LEAF_INDEX,
        group_epoch_secrets: GroupEpochSecrets => label::EPOCH_SECRETS,
    }

    fn own_leaf_nodes<
        GroupId: traits::GroupId<CURRENT_VERSION>,
        LeafNode: traits::LeafNode<CURRENT_VERSION>,
    >(
        &self,
        group_id: &GroupId,
    ) -> R<Vec<LeafNode>> {
        self.list(label::OWN_LEAF_NODES, group_id)
    }

    fn queued_proposal_refs<
        GroupId: traits::GroupId<CURRENT_VERSION>,
        ProposalRef: traits::ProposalRef<CURRENT_VERSION>,
    >(
        &self,
        group_id: &GroupId,
    ) -> R<Vec<ProposalRef>> {
        self.list(label::PROPOSAL_REFS, group_id)
    }

    fn queued_proposals<
        GroupId: traits::GroupId<CURRENT_VERSION>,
        ProposalRef: traits::ProposalRef<CURRENT_VERSION>,
        QueuedProposal: traits::QueuedProposal<CURRENT_VERSION>,
    >(
        &self,
        group_id: &GroupId,
    ) -> R<Vec<(ProposalRef, QueuedProposal)>> {
        let refs: Vec<ProposalRef> = self.list(label::PROPOSAL_REFS, group_id)?;
        let mut out = Vec::with_capacity(refs.len());
        for r in refs {
            let p = self.get(label::PROPOSAL, &(group_id, &r))?.ok_or(MlsStoreError::Codec)?;
            out.push((r, p));
        }
        Ok(out)
    }

    fn group_state<
        GroupState: traits::GroupState<CURRENT_VERSION>,
        GroupId: traits::GroupId<CURRENT_VERSION>,
    >(
        &self,
        group_id: &GroupId,
    ) -> R<Option<GroupState>> {
        self.get(label::GROUP_STATE, group_id)
    }

    fn signature_key_pair<
        SignaturePublicKey: traits::SignaturePublicKey<CURRENT_VERSION>,
        SignatureKeyPair: traits::SignatureKeyPair<CURRENT_VERSION>,
    >(
        &self,
        public_key: &SignaturePublicKey,
    ) -> R<Option<SignatureKeyPair>> {
        self.get(label::SIGNATURE_KEY_PAIR, public_key)
    }

    fn encryption_key_pair<
        HpkeKeyPair: traits::HpkeKeyPair<CURRENT_VERSION>,
        EncryptionKey: traits::EncryptionKey<CURRENT_VERSION>,
    >(
        &self,
        public_key: &EncryptionKey,
    ) -> R<Option<HpkeKeyPair>> {
        self.get(label::ENCRYPTION_KEY_PAIR, public_key)
    }

    fn encryption_epoch_key_pairs<
        GroupId: traits::GroupId<CURRENT_VERSION>,
        EpochKey: traits::EpochKey<CURRENT_VERSION>,
        HpkeKeyPair: traits::HpkeKeyPair<CURRENT_VERSION>,
    >(
        &self,
        group_id: &GroupId,
        epoch: &EpochKey,
        leaf_index: u32,
    ) -> R<Vec<HpkeKeyPair>> {
        Ok(self.get(label::EPOCH_KEY_PAIRS, &EpochKeyPairs(group_id, epoch, leaf_index))?.unwrap_or_default())
    }

    fn key_package<
        KeyPackageRef: traits::HashReference<CURRENT_VERSION>,
        KeyPackage: traits::KeyPackage<CURRENT_VERSION>,
    >(
        &self,
        hash_ref: &KeyPackageRef,
    ) -> R<Option<KeyPackage>> {
        self.get(label::KEY_PACKAGE, hash_ref)
    }

    fn psk<PskBundle: traits::PskBundle<CURRENT_VERSION>, PskId: traits::PskId<CURRENT_VERSION>>(
        &self,
        psk_id: &PskId,
    ) -> R<Option<PskBundle>> {
        self.get(label::PSK, psk_id)
    }

    fn remove_proposal<
        GroupId: traits::GroupId<CURRENT_VERSION>,
        ProposalRef: traits::ProposalRef<CURRENT_VERSION>,
    >(
        &self,
        group_id: &GroupId,
        proposal_ref: &ProposalRef,
    ) -> R<()> {
        self.drop_item(label::PROPOSAL_REFS, group_id, proposal_ref)?;
        self.remove(label::PROPOSAL, &(group_id, proposal_ref))
    }

    group_deleters! {
        delete_own_leaf_nodes => label::OWN_LEAF_NODES,
        delete_group_config => label::JOIN_CONFIG,
        delete_tree => label::TREE,
        delete_confirmation_tag => label::CONFIRMATION_TAG,
        delete_group_state => label::GROUP_STATE,
        delete_context => label::CONTEXT,
        delete_interim_transcript_hash => label::INTERIM_HASH,
        delete_message_secrets => label::MESSAGE_SECRETS,
        delete_all_resumption_psk_secrets => label::RESUMPTION_PSK,
        delete_own_leaf_index => label::OWN_LEAF_INDEX,
        delete_group_epoch_secrets => label::EPOCH_SECRETS,
    }

    fn clear_proposal_queue<
        GroupId: traits::GroupId<CURRENT_VERSION>,
        ProposalRef: traits::ProposalRef<CURRENT_VERSION>,
    >(
        &self,
        group_id: &GroupId,
    ) -> R<()> {
        let refs: Vec<ProposalRef> = self.list(label::PROPOSAL_REFS, group_id)?;
        for r in &refs {
            self.remove(label::PROPOSAL, &(group_id, r))?;
        }
        self.remove(label::PROPOSAL_REFS, group_id)
    }

    fn delete_signature_key_pair<SignaturePublicKey: traits::SignaturePublicKey<CURRENT_VERSION>>(
        &self,
        public_key: &SignaturePublicKey,
    ) -> R<()> {
        self.remove(label::SIGNATURE_KEY_PAIR, public_key)
    }

    fn delete_encryption_key_pair<EncryptionKey: traits::EncryptionKey<CURRENT_VERSION>>(
        &self,
        public_key: &EncryptionKey,
    ) -> R<()> {
        self.remove(label::ENCRYPTION_KEY_PAIR, public_key)
    }

    fn delete_encryption_epoch_key_pairs<
        GroupId: traits::GroupId<CURRENT_VERSION>,
        EpochKey: traits::EpochKey<CURRENT_VERSION>,
    >(
        &self,
        group_id: &GroupId,
        epoch: &EpochKey,
        leaf_index: u32,
    ) -> R<()> {
        self.remove(label::EPOCH_KEY_PAIRS, &EpochKeyPairs(group_id, epoch, leaf_index))
    }

    fn delete_key_package<KeyPackageRef: traits::HashReference<CURRENT_VERSION>>(
        &self,
        hash_ref: &KeyPackageRef,
    ) -> R<()> {
        self.remove(label::KEY_PACKAGE, hash_ref)
    }

    fn delete_psk<PskKey: traits::PskId<CURRENT_VERSION>>(&self, psk_id: &PskKey) -> R<()> {
        self.remove(label::PSK, psk_id)
    }
}

#[cfg(test)]
mod tests {
    use openmls::prelude::{GroupId, LeafNodeIndex};

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
        store.values.write().unwrap().insert(old.clone(), serde_json::to_vec(&idx).unwrap());
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
        store.values.write().unwrap().insert(old, serde_json::to_vec(&LeafNodeIndex::new(1)).unwrap());
        assert_eq!(store.own_leaf_index::<GroupId, LeafNodeIndex>(&gid).unwrap(), None);
    }
}
