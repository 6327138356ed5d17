//! The ratchet tree, sent once per commit instead of inside every joiner's Welcome.
//!
//! A Welcome that carries the tree is about as large as the tree (1.5 MB at 1,000
//! X-Wing members), and each joiner gets a Welcome of its own (PRIV1), so a batch of 50
//! joiners at that size cost 80 MB and a 1,000-member creation 1.6 GB. Instead the
//! committer seals the tree once under a fresh key and publishes it on the group topic
//! (a `GroupTree`, segmented like anything over 100 KiB). Each joiner's `MemberWelcome`
//! carries a `TreeTicket` (group id, tree key, digest of the sealed tree) HPKE-sealed to
//! the init key of the key package it is added with, so only that joiner can open it and
//! the inbox shows nobody which group it joins. The joiner opens the ticket, follows the
//! group topic and joins when the tree arrives; openmls checks the tree against the tree
//! hash in the signed GroupInfo, so a wrong tree cannot be slipped in.
//!
//! Next to the tree, under the same key, the committer seals the members' signed account
//! bundles it holds (`GroupBundles`): a joiner confirms who each member's installations
//! belong to from them, instead of reading the whole directory (each bundle is verified
//! against its account key as a directory record is). They are outside the digest the
//! tickets name, so the client adds them to a tree the group code sealed.

use crate::core::conversation::mls_store::Provider;
use openmls::prelude::tls_codec::{DeserializeBytes as _, Serialize as _};
use openmls::prelude::*;
use openmls_traits::crypto::OpenMlsCrypto;
use openmls_traits::random::OpenMlsRand;
use openmls_traits::storage::StorageProvider as _;
use openmls_traits::types::HpkeCiphertext;
use openmls_traits::OpenMlsProvider;
use prost::Message as _;
use zeroize::Zeroizing;

use crate::core::address::blake2b;
use crate::core::aead::{self, NONCE_LEN};
use crate::core::error::{CoreError, Result};
use crate::core::wire::{GroupBundles, GroupTree, MemberWelcome, TreeTicket};

/// HPKE `info` of a sealed ticket.
const TICKET_INFO: &[u8] = b"logos-chat group tree ticket v1";
/// Associated data of the sealed tree.
const TREE_AAD: &[u8] = b"logos-chat group tree v1";
/// Associated data of the members' bundles sealed with a tree.
const BUNDLES_AAD: &[u8] = b"logos-chat group tree bundles v1";

/// The suffix of the conversation hint a `GroupTree` envelope carries.
pub const TREE_HINT_SUFFIX: &str = "/tree";

/// A tree sealed for one commit's joiners: the frame to publish and what each ticket names.
pub struct SealedTree {
    tree: GroupTree,
    key: Zeroizing<[u8; 32]>,
    digest: [u8; 32],
}

impl std::fmt::Debug for SealedTree {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SealedTree").field("bytes", &self.tree.ciphertext.len()).finish_non_exhaustive()
    }
}

impl SealedTree {
    /// Seals the members' bundles (encoded `AccountSubmissionV1`s) next to the tree.
    pub fn add_bundles(&mut self, provider: &Provider, submissions: Vec<Vec<u8>>) -> Result<()> {
        if submissions.is_empty() {
            return Ok(());
        }
        let plain = Zeroizing::new(GroupBundles { submissions }.encode_to_vec());
        let nonce: [u8; NONCE_LEN] =
            provider.rand().random_array().map_err(|_| CoreError::mls("no randomness"))?;
        let sealed = aead::seal(&self.key, &nonce, &plain, BUNDLES_AAD)?;
        self.tree.bundles_nonce = nonce.to_vec();
        self.tree.bundles = sealed;
        Ok(())
    }

    /// The encoded `GroupTree` to publish.
    pub fn frame(&self) -> Vec<u8> {
        self.tree.encode_to_vec()
    }
}

/// The digest a ticket names its tree by: of the sealed tree alone, whatever else the frame
/// carries. It hashes the bytes a frame of just `nonce` and `ciphertext` encodes to (prost
/// leaves empty fields out), without building that frame: the ciphertext can be megabytes.
pub fn digest_of(tree: &GroupTree) -> [u8; 32] {
    let field = |tag: u32, bytes: &[u8]| {
        let mut head = Vec::with_capacity(12);
        if !bytes.is_empty() {
            prost::encoding::encode_key(tag, prost::encoding::WireType::LengthDelimited, &mut head);
            prost::encoding::encode_varint(bytes.len() as u64, &mut head);
        }
        head
    };
    let (nonce_head, cipher_head) = (field(1, &tree.nonce), field(2, &tree.ciphertext));
    blake2b::<32>(&[b"logos-chat group tree|", &nonce_head, &tree.nonce, &cipher_head, &tree.ciphertext])
}

/// Parses a `GroupTree` frame.
pub fn parse(frame: &[u8]) -> Result<GroupTree> {
    GroupTree::decode(frame).map_err(|e| CoreError::decode("group tree", e))
}

/// Seals the group's current ratchet tree under a fresh key.
pub fn seal_tree(provider: &Provider, group: &MlsGroup) -> Result<SealedTree> {
    let tree = Zeroizing::new(group.export_ratchet_tree().tls_serialize_detached().map_err(CoreError::mls)?);
    let key: Zeroizing<[u8; 32]> =
        Zeroizing::new(provider.rand().random_array().map_err(|_| CoreError::mls("no randomness"))?);
    let nonce: [u8; NONCE_LEN] =
        provider.rand().random_array().map_err(|_| CoreError::mls("no randomness"))?;
    let ciphertext = aead::seal(&key, &nonce, &tree, TREE_AAD)?;
    let tree = GroupTree { nonce: nonce.to_vec(), ciphertext, ..GroupTree::default() };
    Ok(SealedTree { digest: digest_of(&tree), tree, key })
}

/// A ticket for one joiner, sealed to `init_key` (its key package's HPKE init key).
pub fn seal_ticket(
    provider: &Provider,
    group: &MlsGroup,
    tree: &SealedTree,
    init_key: &[u8],
) -> Result<Vec<u8>> {
    let ticket = Zeroizing::new(
        TreeTicket {
            group_id: group.group_id().as_slice().to_vec(),
            key: tree.key.to_vec(),
            digest: tree.digest.to_vec(),
        }
        .encode_to_vec(),
    );
    let sealed = provider
        .crypto()
        .hpke_seal(group.ciphersuite().hpke_config(), init_key, TICKET_INFO, &[], &ticket)
        .map_err(CoreError::mls)?;
    sealed.tls_serialize_detached().map_err(CoreError::mls)
}

/// An opened ticket: where the tree is and how to open it (a copy zeroizes its key too).
#[derive(Clone)]
pub struct Ticket {
    /// The group id.
    pub group_id: Vec<u8>,
    /// The digest of the `GroupTree` frame.
    pub digest: [u8; 32],
    key: Zeroizing<[u8; 32]>,
}

impl std::fmt::Debug for Ticket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ticket").field("group_id", &hex::encode(&self.group_id)).finish_non_exhaustive()
    }
}

/// Opens the ticket of a `MemberWelcome` with the init key of the key package its Welcome
/// is for (looked up in the provider's storage, where openmls keeps the bundle).
pub fn open_ticket(provider: &Provider, mw: &MemberWelcome) -> Result<Ticket> {
    let msg = crate::core::conversation::mls::decode_mls_message(&mw.welcome_bytes)
        .map_err(|e| CoreError::decode("welcome", e))?;
    let MlsMessageBodyIn::Welcome(w) = msg.extract() else {
        return Err(CoreError::decode("welcome", "not a Welcome"));
    };
    let sealed = HpkeCiphertext::tls_deserialize_exact_bytes(&mw.tree_ticket)
        .map_err(|e| CoreError::decode("tree ticket", e))?;
    for secrets in w.secrets() {
        let kp_ref = secrets.new_member();
        let bundle: Option<KeyPackageBundle> =
            provider.storage().key_package(&kp_ref).map_err(CoreError::mls)?;
        let Some(bundle) = bundle else { continue };
        let opened = provider
            .crypto()
            .hpke_open(
                bundle.key_package().ciphersuite().hpke_config(),
                &sealed,
                bundle.init_private_key(),
                TICKET_INFO,
                &[],
            )
            .map(Zeroizing::new)
            .map_err(|_| CoreError::Verify("tree ticket does not open"))?;
        let t = TreeTicket::decode(opened.as_slice()).map_err(|e| CoreError::decode("tree ticket", e))?;
        let key = <[u8; 32]>::try_from(t.key.as_slice())
            .map_err(|_| CoreError::decode("tree ticket", "key is not 32 bytes"))?;
        let digest = <[u8; 32]>::try_from(t.digest.as_slice())
            .map_err(|_| CoreError::decode("tree ticket", "digest is not 32 bytes"))?;
        let mut t = t;
        zeroize::Zeroize::zeroize(&mut t.key);
        return Ok(Ticket { group_id: t.group_id, digest, key: Zeroizing::new(key) });
    }
    // Not for a key package of ours (the Welcome of someone else, or of a reset device).
    Err(CoreError::NotForUs)
}

/// Opens a `GroupTree` frame whose digest the ticket names: the ratchet tree, and the
/// members' bundles sealed with it (encoded `AccountSubmissionV1`s, not yet verified).
pub fn open_tree(t: &GroupTree, ticket: &Ticket) -> Result<(RatchetTreeIn, Vec<Vec<u8>>)> {
    if digest_of(t) != ticket.digest {
        return Err(CoreError::Verify("not the tree the ticket names"));
    }
    let tree = aead::open(&ticket.key, &t.nonce, &t.ciphertext, TREE_AAD, "group tree")?;
    crate::core::conversation::mls_shape::check_ratchet_tree(tree.as_slice())?;
    let tree = crate::core::conversation::mls::decode_exact::<RatchetTreeIn>(tree.as_slice())
        .map_err(|e| CoreError::decode("ratchet tree", e))?;
    let bundles = if t.bundles.is_empty() {
        Vec::new()
    } else {
        let plain = aead::open(&ticket.key, &t.bundles_nonce, &t.bundles, BUNDLES_AAD, "group bundles")?;
        GroupBundles::decode(plain.as_slice()).map_err(|e| CoreError::decode("group bundles", e))?.submissions
    };
    Ok((tree, bundles))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bundles_added_to_a_frame_leave_the_digest_its_tickets_name() {
        let bare = GroupTree { nonce: vec![1; NONCE_LEN], ciphertext: vec![2; 200], ..GroupTree::default() };
        let with = GroupTree { bundles_nonce: vec![3; NONCE_LEN], bundles: vec![4; 40], ..bare.clone() };
        let digest = |t: &GroupTree| digest_of(&parse(&t.encode_to_vec()).unwrap());
        assert_eq!(digest(&bare), digest(&with));
        // What stop 9's tickets named: the hash of the whole two-field frame.
        assert_eq!(digest(&bare), blake2b::<32>(&[b"logos-chat group tree|", &bare.encode_to_vec()]));
        let other = GroupTree { ciphertext: vec![5; 200], ..bare.clone() };
        assert_ne!(digest(&bare), digest(&other));
        assert!(parse(b"\xff\xff not a frame").is_err());
    }
}
