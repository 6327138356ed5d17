//! Group invites sealed to their joiner (PRIV1, issue 12). A `MemberWelcome` holds an MLS
//! PrivateMessage (the governance sync) whose header names the group id in clear, and
//! each joiner's cut-down Welcome shares its `encrypted_group_info` with the others of
//! the same commit; sent as it is to an inbox, whose topic derives from an installation
//! id that the directory ties to an account, it would tell anyone reading the inbox
//! which installations joined which group, and together. So the whole `MemberWelcome`
//! is sealed with HPKE to the joiner's key-package init key (the way libxmtp wraps its
//! Welcomes): the inbox carries only a KEM output and a ciphertext, unlinkable between
//! joiners. The joiner opens it with the private init key openmls keeps with its key
//! package; a frame that opens with none of ours is not for us.

use openmls::prelude::tls_codec::{DeserializeBytes as _, Serialize as _};
use openmls::prelude::*;
use openmls_traits::crypto::OpenMlsCrypto;
use openmls_traits::storage::StorageProvider as _;
use openmls_traits::types::HpkeCiphertext;
use openmls_traits::OpenMlsProvider;
use zeroize::Zeroizing;

use crate::core::conversation::mls;
use crate::core::conversation::mls_store::Provider;
use crate::core::error::{CoreError, Result};

/// The HPKE `info` of a sealed invite (domain separation from tree tickets).
const INVITE_INFO: &[u8] = b"logos-chat group invite v1";

/// Seals an encoded `MemberWelcome` to a joiner's init key.
pub fn seal(provider: &Provider, init_key: &[u8], member_welcome: &[u8]) -> Result<Vec<u8>> {
    let sealed = provider
        .crypto()
        .hpke_seal(mls::CIPHERSUITE.hpke_config(), init_key, INVITE_INFO, &[], member_welcome)
        .map_err(CoreError::mls)?;
    sealed.tls_serialize_detached().map_err(CoreError::mls)
}

/// Opens a sealed invite with the init key of one of `ours` (our key packages):
/// the encoded `MemberWelcome`, or `NotForUs`.
pub fn open(provider: &Provider, ours: &[KeyPackage], sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
    let sealed = HpkeCiphertext::tls_deserialize_exact_bytes(sealed)
        .map_err(|e| CoreError::decode("sealed invite", e))?;
    for kp in ours {
        let Ok(kp_ref) = kp.hash_ref(provider.crypto()) else { continue };
        let bundle: Option<KeyPackageBundle> =
            provider.storage().key_package(&kp_ref).map_err(CoreError::mls)?;
        let Some(bundle) = bundle else { continue };
        let opened = provider.crypto().hpke_open(
            mls::CIPHERSUITE.hpke_config(),
            &sealed,
            bundle.init_private_key(),
            INVITE_INFO,
            &[],
        );
        if let Ok(plain) = opened {
            return Ok(Zeroizing::new(plain));
        }
    }
    Err(CoreError::NotForUs)
}

mod sending {
    //! Sealing our commit's invites, one per joiner.
    use super::super::commit::OwnCandidate;
    use super::super::*;

    impl GroupConversation {
        /// After our own commit is merged: the Welcome, with the sync sealed in the new epoch.
        pub(in crate::core::conversation::group) fn send_welcomes(
            &mut self,
            provider: &Provider,
            key: &InstallationKey,
            own: &OwnCandidate,
            out: &mut GroupOutput,
        ) -> Result<()> {
            let Some(welcome) = &own.welcome else { return Ok(()) };
            let sync = GroupAppFrame { body: Some(Body::Sync(self.gov.sync())) }.encode_to_vec();
            let sync = self.group.create_message(provider, key, &sync).map_err(CoreError::mls)?;
            let sync = sync.tls_serialize_detached().map_err(CoreError::mls)?;
            // The ratchet tree goes out once, sealed, and each joiner gets a ticket to it (`tree`).
            let tree = tree::seal_tree(provider, &self.group)?;
            // Each joiner gets a Welcome with its own entry only: the full one lists every
            // joiner's key package reference, which names them to anyone who reads the inbox (PRIV1).
            let refs: Vec<&[u8]> = own.joiners.iter().map(|j| j.kp_ref.as_slice()).collect();
            let cut = mls::welcomes_for(welcome, &refs)?;
            for (j, welcome_bytes) in own.joiners.iter().zip(cut) {
                let tree_ticket = tree::seal_ticket(provider, &self.group, &tree, &j.init_key)?;
                let mw = MemberWelcome {
                    welcome_bytes,
                    conversation_sync_bytes: sync.clone(),
                    joiner_identities: Vec::new(),
                    tree_ticket,
                };
                let sealed = invite::seal(provider, &j.init_key, &mw.encode_to_vec())?;
                out.welcomes.push((j.installation.clone(), sealed));
            }
            out.trees.push(tree);
            Ok(())
        }

        /// Commits adds nobody voted for, as a misbehaving steward would.
        #[cfg(test)]
        pub(crate) fn rogue_commit_for_tests(
            &mut self,
            provider: &Provider,
            key: &InstallationKey,
            kps: Vec<KeyPackage>,
        ) -> Result<GroupOutput> {
            let own = self.build_commit(provider, key, kps, Vec::new(), None)?;
            let mut out = GroupOutput::default();
            out.publish.push(own.commit.clone());
            self.group.clear_pending_commit(provider.storage()).map_err(CoreError::mls)?;
            Ok(out)
        }
    }
}
