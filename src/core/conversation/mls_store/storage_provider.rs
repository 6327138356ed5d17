//! openmls's `StorageProvider` over [`MlsStore`]: each of the trait's methods is one
//! entry (or list) under its label, through the store's put / get / remove helpers.

use openmls_traits::storage::{traits, StorageProvider, CURRENT_VERSION};

use super::{label, EpochKeyPairs, MlsStore, MlsStoreError, R};

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
