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
