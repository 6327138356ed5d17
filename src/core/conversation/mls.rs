//! The MLS profile every Gen-2 conversation uses (PROTOCOL.md §2.3, §2.7, D2).
//!
//! One place for the ciphersuite, leaf capabilities, key-package shape and group
//! configs, so that a key package built here is accepted by libchat and the
//! reverse. Owns no state.

use openmls::prelude::tls_codec::Serialize as _;
use openmls::prelude::*;
use openmls_traits::signatures::{Signer, SignerError};
use openmls_traits::types::SignatureScheme;

use crate::core::account::{DelegateCredential, InstallationKey};
use crate::core::error::{CoreError, Result};

/// The default suite, X-Wing hybrid post-quantum (D2): the only one libchat advertises.
pub const CIPHERSUITE: Ciphersuite = Ciphersuite::MLS_256_XWING_CHACHA20POLY1305_SHA256_Ed25519;

/// The group-metadata extension type (§2.8).
pub const GROUP_METADATA_EXTENSION: u16 = 0xFF01;

/// Most members openmls adds in one commit (§2.7).
pub const MAX_ADDS_PER_COMMIT: usize = 50;

/// Past epochs whose secrets a member keeps, so a message that crosses a commit still
/// decrypts (openmls default 0; XMTP keeps 3; local, not wire). Each kept epoch holds its
/// secret tree: about 64 B per member leaf, plus the sender ratchets in use.
pub const MAX_PAST_EPOCHS: usize = 8;

/// How many generations a message may come behind the newest one of its sender and
/// still decrypt (openmls default 5). A lossy network delivers a message late, and a
/// sender re-sends one until it is acknowledged, so a window of a few has it dropped; a
/// skipped generation's key is kept until it is used (44 B), a used one is a 1-byte
/// tombstone, so the window costs at most about 45 KB per sender and epoch, and only
/// while messages are actually missing.
pub const OUT_OF_ORDER_TOLERANCE: u32 = 1_000;

/// How many generations ahead of the newest one a message may jump (openmls default
/// 1,000): a member that was offline while its peer sent this many must still decrypt.
pub const MAXIMUM_FORWARD_DISTANCE: u32 = 10_000;

/// The sender-ratchet window every conversation uses (local, not wire).
pub fn sender_ratchet() -> SenderRatchetConfiguration {
    SenderRatchetConfiguration::new(OUT_OF_ORDER_TOLERANCE, MAXIMUM_FORWARD_DISTANCE)
}

impl Signer for InstallationKey {
    fn sign(&self, payload: &[u8]) -> std::result::Result<Vec<u8>, SignerError> {
        Ok(InstallationKey::sign(self, payload).to_vec())
    }
    fn signature_scheme(&self) -> SignatureScheme {
        SignatureScheme::ED25519
    }
}

/// Leaf capabilities: suite 0x004D; extensions ApplicationId, LastResort, 0xFF01 (§2.3);
/// versions, proposals and credentials stay openmls defaults, as in libchat.
pub fn capabilities() -> Capabilities {
    Capabilities::new(
        None,
        Some(&[CIPHERSUITE]),
        Some(&[
            ExtensionType::ApplicationId,
            ExtensionType::LastResort,
            ExtensionType::Unknown(GROUP_METADATA_EXTENSION),
        ]),
        None,
        None,
    )
}

/// The MLS credential of an installation: a `BasicCredential` whose identity is
/// the ASCII of the identity id, with the delegate key as leaf signature key (§2.1).
pub fn credential_with_key(cred: &DelegateCredential) -> CredentialWithKey {
    CredentialWithKey {
        credential: BasicCredential::new(cred.identity_id().into_bytes()).into(),
        signature_key: cred.installation.as_bytes().to_vec().into(),
    }
}

/// Builds (and stores in the provider) this installation's last-resort key package.
pub fn new_key_package(
    provider: &impl OpenMlsProvider,
    key: &InstallationKey,
    cred: &DelegateCredential,
) -> Result<KeyPackageBundle> {
    KeyPackage::builder()
        .leaf_node_capabilities(capabilities())
        .mark_as_last_resort()
        .build(CIPHERSUITE, provider, key, credential_with_key(cred))
        .map_err(CoreError::mls)
}

/// The config a conversation is created with: ratchet tree in the Welcome (§2.7).
pub fn create_config() -> MlsGroupCreateConfig {
    MlsGroupCreateConfig::builder()
        .ciphersuite(CIPHERSUITE)
        .use_ratchet_tree_extension(true)
        .capabilities(capabilities())
        .max_past_epochs(MAX_PAST_EPOCHS)
        .sender_ratchet_configuration(sender_ratchet())
        .build()
}

/// The config a group is created with: as [`create_config`], with its group-context
/// extensions (the metadata, 0xFF01), and without the ratchet tree in Welcomes: a
/// group's tree travels once per commit, sealed (`group::tree`).
pub fn create_group_config(extensions: Extensions<GroupContext>) -> MlsGroupCreateConfig {
    MlsGroupCreateConfig::builder()
        .ciphersuite(CIPHERSUITE)
        .use_ratchet_tree_extension(false)
        .capabilities(capabilities())
        .max_past_epochs(MAX_PAST_EPOCHS)
        .sender_ratchet_configuration(sender_ratchet())
        .with_group_context_extensions(extensions)
        .build()
}

/// The config a conversation is joined with.
pub fn join_config() -> MlsGroupJoinConfig {
    MlsGroupJoinConfig::builder()
        .use_ratchet_tree_extension(true)
        .max_past_epochs(MAX_PAST_EPOCHS)
        .sender_ratchet_configuration(sender_ratchet())
        .build()
}

/// The config a group is joined with: its Welcomes leave the tree out, as the creator's do.
pub fn group_join_config() -> MlsGroupJoinConfig {
    MlsGroupJoinConfig::builder()
        .use_ratchet_tree_extension(false)
        .max_past_epochs(MAX_PAST_EPOCHS)
        .sender_ratchet_configuration(sender_ratchet())
        .build()
}

/// Brings a group restored from storage to the current receive windows (a group written
/// by an earlier build kept openmls's defaults); writes only when they differ.
pub fn update_windows(
    group: &mut MlsGroup,
    provider: &impl OpenMlsProvider,
    join: &MlsGroupJoinConfig,
) -> Result<()> {
    if group.configuration() == join {
        return Ok(());
    }
    group.set_configuration(provider.storage(), join).map_err(CoreError::mls)
}

/// The delegate credential of an MLS member or sender, checked against its leaf key.
pub fn member_credential(credential: &Credential, signature_key: &[u8]) -> Result<DelegateCredential> {
    let basic = BasicCredential::try_from(credential.clone())
        .map_err(|_| CoreError::Verify("credential is not basic"))?;
    let cred = DelegateCredential::from_identity(basic.identity())?;
    if cred.installation.as_bytes().as_slice() != signature_key {
        return Err(CoreError::Verify("credential names another key than the leaf's"));
    }
    Ok(cred)
}

/// Whether a `process_message` failure is a true replay of traffic this member already
/// handled (its own message, a generation already decrypted): openmls reports these
/// before it changes any state, so they are dropped quietly. A message that is merely
/// late, behind every window (too old a generation, an epoch no longer kept), is not a
/// replay: see [`is_too_late`].
pub fn is_replay<E>(e: &ProcessMessageError<E>) -> bool {
    use openmls::framing::errors::{MessageDecryptionError as Mde, SecretTreeError as Ste};
    matches!(
        e,
        ProcessMessageError::ValidationError(
            ValidationError::CannotDecryptOwnMessage
                | ValidationError::UnableToDecrypt(Mde::SecretTreeError(Ste::SecretReuseError))
        )
    )
}

/// Whether a `process_message` failure means the message came after every receive
/// window had passed it (a generation beyond [`OUT_OF_ORDER_TOLERANCE`], an epoch
/// beyond [`MAX_PAST_EPOCHS`]): it cannot be decrypted any more, and is reported.
pub fn is_too_late<E>(e: &ProcessMessageError<E>) -> bool {
    use openmls::framing::errors::{MessageDecryptionError as Mde, SecretTreeError as Ste};
    matches!(
        e,
        ProcessMessageError::ValidationError(
            ValidationError::WrongEpoch
                | ValidationError::NoPastEpochData
                | ValidationError::UnableToDecrypt(Mde::SecretTreeError(Ste::TooDistantInThePast))
        )
    )
}

/// Maps the failure of joining from a Welcome: a replayed Welcome of a group we hold,
/// and one for a key package we do not hold, are typed (the caller acts on them).
pub fn welcome_error<E: std::fmt::Debug>(e: WelcomeError<E>) -> CoreError {
    match e {
        WelcomeError::GroupAlreadyExists => CoreError::AlreadyJoined,
        WelcomeError::NoMatchingKeyPackage => CoreError::NotForUs,
        e => CoreError::mls(e),
    }
}

/// Bytes (0xFF) a slice decode runs over beyond its input (see [`decode_exact`]): 4 KiB
/// and four per input byte, more than re-encoding can add (a vector whose items overrun
/// its declared length re-encodes with a longer length field, up to 3 bytes more per
/// vector, and every vector takes at least one input byte).
fn decode_padding(len: usize) -> usize {
    len.saturating_mul(4).saturating_add(4096)
}

/// Decodes a whole `T` from network bytes with openmls's slice decoder, which cannot
/// panic here. For some inputs (found by fuzzing, `fuzz/corpus/mls/crash-*`) openmls's
/// slice decoder of extension lists counts what it consumed by re-encoding what it
/// decoded, which can be longer than the bytes there, and then slices the remainder out
/// of range: a panic, a trap in wasm that a stranger could send to any inbox or publish
/// as a key package. So the input is decoded from a copy followed by padding, which
/// keeps that slice in range, and it must leave exactly the padding: an input whose
/// decoder read past its end, or that has trailing bytes, is refused. The padding is
/// 0xFF, never a valid MLS vector length (0b11 prefix): zeros read as empty items, and
/// a crafted length could make the decoder eat the whole padding and still slice past
/// it (the second crash); 0xFF stops any read into it within a few bytes. A value that
/// decoded but re-encodes to another length than its input (items that overran their
/// vector's declared length) leaves another remainder, and is refused.
pub fn decode_exact<T: tls_codec::DeserializeBytes>(
    bytes: &[u8],
) -> std::result::Result<T, tls_codec::Error> {
    let padding = decode_padding(bytes.len());
    let mut padded = Vec::with_capacity(bytes.len().saturating_add(padding));
    padded.extend_from_slice(bytes);
    padded.resize(bytes.len().saturating_add(padding), 0xFF);
    let (value, rest) = T::tls_deserialize_bytes(&padded)?;
    if rest.len() != padding {
        return Err(tls_codec::Error::DecodingError("the input does not decode to its own length".into()));
    }
    Ok(value)
}

/// Decodes an MLSMessage from network bytes without allocating what its length fields
/// merely claim. openmls's decoder for `MlsMessageIn` (even its slice entry point) reads
/// through `std::io::Read`, and tls_codec's reader-based vectors allocate the claimed
/// length (up to 1 GiB in wasm32, where memory never shrinks) before reading a byte. The
/// body is therefore first parsed with the slice decoder, which checks every claim
/// against the bytes that are there; only a body that parses is decoded for real.
/// A PublicMessage (wire format 1) is refused outright: openmls decodes it through the
/// reader even from the slice decoder, and our groups (openmls's default pure-ciphertext
/// policy, as libchat's) reject public messages anyway.
pub fn decode_mls_message(bytes: &[u8]) -> std::result::Result<MlsMessageIn, tls_codec::Error> {
    let body = bytes.get(2..).ok_or(tls_codec::Error::EndOfStream)?;
    // Only private messages (2) and Welcomes (3) come from the network: a public message
    // goes through openmls's reader, and a GroupInfo or KeyPackage carries extension
    // lists openmls's slice decoder can panic on (`mls_shape`; key packages come alone).
    if !matches!(body.get(..2), Some([0, 2] | [0, 3])) {
        return Err(tls_codec::Error::DecodingError(
            "only private messages and Welcomes are accepted".into(),
        ));
    }
    decode_exact::<MlsMessageBodyIn>(body)?;
    // openmls's own slice entry point slices at the re-encoded length too (the third
    // crash: a Welcome whose vector items overran its length re-encoded a byte longer).
    decode_exact::<MlsMessageIn>(bytes)
}

/// Decodes an inbound MLSMessage (TLS bytes) for `group`. `None` for a handshake message
/// of a past epoch: libchat drops those (the creator's own commit reaches a joiner that
/// already holds the next epoch), and so do we, quietly.
pub fn inbound(group: &MlsGroup, bytes: &[u8]) -> Result<Option<ProtocolMessage>> {
    let msg = decode_mls_message(bytes).map_err(|e| CoreError::decode("mls message", e))?;
    let protocol =
        msg.try_into_protocol_message().map_err(|e| CoreError::decode("mls message", format!("{e:?}")))?;
    if protocol.group_id() != group.group_id() {
        return Err(CoreError::Verify("message for another group"));
    }
    if protocol.epoch() < group.epoch() && protocol.content_type() != ContentType::Application {
        return Ok(None);
    }
    Ok(Some(protocol))
}

/// The checked credential of the member that sent a processed message; `None` when the
/// sender is not a member leaf (an external sender).
pub fn sender_credential(group: &MlsGroup, sender: &Sender) -> Result<Option<DelegateCredential>> {
    let Sender::Member(idx) = sender else { return Ok(None) };
    let member =
        group.members().find(|m| m.index == *idx).ok_or(CoreError::Verify("sender is not a member"))?;
    member_credential(&member.credential, member.signature_key.as_slice()).map(Some)
}

/// An MLSMessage(Welcome) cut down to each joiner's own `EncryptedGroupSecrets` (the
/// entry whose `new_member` is that joiner's `kp_ref`), in the order of `kp_refs`: each is
/// still a valid Welcome for its joiner, and no longer lists the other joiners' key
/// package references. Works on the TLS bytes, since openmls builds Welcomes only inside
/// a commit: `version ‖ wire_format ‖ cipher_suite ‖ secrets<V> ‖ encrypted_group_info<V>`
/// (RFC 9420 §12.4.3.1). The Welcome is parsed once, whatever the number of joiners.
pub fn welcomes_for(welcome: &[u8], kp_refs: &[&[u8]]) -> Result<Vec<Vec<u8>>> {
    let bad = |why: &'static str| CoreError::decode("welcome", why);
    let msg = decode_mls_message(welcome).map_err(|e| CoreError::decode("welcome", e))?;
    let MlsMessageBodyIn::Welcome(w) = msg.extract() else { return Err(bad("not a Welcome")) };
    let entries: std::collections::HashMap<Vec<u8>, &EncryptedGroupSecrets> =
        w.secrets().iter().map(|s| (s.new_member().as_slice().to_vec(), s)).collect();
    // 2 bytes version, 2 wire format, 2 cipher suite, then the secrets vector.
    let head = welcome.get(..6).ok_or(bad("truncated"))?;
    let mut rest = welcome.get(6..).ok_or(bad("truncated"))?;
    take_vec(&mut rest)?;
    let mut out = Vec::with_capacity(kp_refs.len());
    for kp_ref in kp_refs {
        let entry = entries
            .get(*kp_ref)
            .ok_or(bad("no entry for this joiner"))?
            .tls_serialize_detached()
            .map_err(CoreError::mls)?;
        let mut one = head.to_vec();
        put_vec(&mut one, &entry);
        one.extend_from_slice(rest);
        decode_mls_message(&one).map_err(|e| CoreError::decode("welcome", e))?;
        out.push(one);
    }
    Ok(out)
}

/// Appends an MLS variable-length vector: a 1-, 2- or 4-byte QUIC-style varint length,
/// then the bytes (RFC 9420 §2.1.2).
pub fn put_vec(out: &mut Vec<u8>, b: &[u8]) {
    match (u8::try_from(b.len()), u16::try_from(b.len())) {
        (Ok(n), _) if n < 64 => out.push(n),
        (_, Ok(n)) if n < 16_384 => out.extend_from_slice(&(0x4000u16 | n).to_be_bytes()),
        // 2^30 bytes or more has no encoding: the length saturates, so a reader finds
        // the vector truncated instead of reading a wrapped length.
        _ => {
            let n = u32::try_from(b.len()).unwrap_or(u32::MAX).min(0x3fff_ffff);
            out.extend_from_slice(&(0x8000_0000u32 | n).to_be_bytes());
        }
    }
    out.extend_from_slice(b);
}

/// Reads an MLS variable-length vector from the front of `b` and advances past it.
pub fn take_vec<'a>(b: &mut &'a [u8]) -> Result<&'a [u8]> {
    let bad = || CoreError::decode("tls vector", "truncated");
    let first = *b.first().ok_or_else(bad)?;
    let (len, head) = match first >> 6 {
        0 => (usize::from(first), 1),
        1 => (usize::from(u16::from_be_bytes([first & 0x3f, *b.get(1).ok_or_else(bad)?])), 2),
        2 => {
            let s = b.first_chunk::<4>().ok_or_else(bad)?;
            let n = u32::from_be_bytes(*s) & 0x3fff_ffff;
            (usize::try_from(n).map_err(|_| bad())?, 4)
        }
        _ => return Err(CoreError::decode("tls vector", "bad varint")),
    };
    let (body, rest) = b.get(head..).and_then(|r| r.split_at_checked(len)).ok_or_else(bad)?;
    *b = rest;
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use openmls::framing::errors::{MessageDecryptionError as Mde, SecretTreeError as Ste};

    #[test]
    fn failures_are_classified_by_their_types() {
        type E = ProcessMessageError<()>;
        let v = |e| E::ValidationError(e);
        let reuse = v(ValidationError::UnableToDecrypt(Mde::SecretTreeError(Ste::SecretReuseError)));
        let far = v(ValidationError::UnableToDecrypt(Mde::SecretTreeError(Ste::TooDistantInThePast)));
        assert!(is_replay(&v(ValidationError::CannotDecryptOwnMessage)) && is_replay(&reuse));
        assert!(!is_too_late(&reuse));
        assert!(is_too_late(&far) && is_too_late(&v(ValidationError::WrongEpoch)));
        assert!(!is_replay(&far));
        let other = v(ValidationError::UnableToDecrypt(Mde::AeadError));
        assert!(!is_replay(&other) && !is_too_late(&other));
        assert_eq!(welcome_error(WelcomeError::<()>::GroupAlreadyExists), CoreError::AlreadyJoined);
        assert_eq!(welcome_error(WelcomeError::<()>::NoMatchingKeyPackage), CoreError::NotForUs);
    }
}
