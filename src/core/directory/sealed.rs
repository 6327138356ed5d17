//! Sealed directory records (PRIV2, issue 13): what an installation publishes to be found
//! names nobody in clear.
//!
//! libchat's records (§2.3) carry the account address, the device keys and the credential
//! in clear on two shared topics, so anyone reading them links every installation to its
//! account. Here the same submissions travel sealed under a key derived from the account
//! address, on topics derived from it: the device list on the account's topic, each key
//! package on a topic of its own derived from the account and the installation. Only
//! someone who already knows the address can name the topics or open the records; an
//! observer sees fixed-size sealed blobs on unrelated topics.
//!
//! A record is `0x01 ‖ nonce (24) ‖ XChaCha20-Poly1305(inner)`, with the topic as AAD (a
//! record copied to another topic does not open), and
//! `inner = kind u8 ‖ length u32 LE ‖ submission ‖ zero padding` to a multiple of
//! [`PAD_TO`] bytes, so the size of a device list does not say how many devices it holds.
//! The submission inside is libchat's own (`AccountSubmissionV1`, `KeyPackageSubmissionV1`)
//! and is verified exactly as a plain one: the seal hides, the signatures authenticate
//! (anyone who knows the address can seal a record, nobody but the account can sign it).

use rand_core::CryptoRngCore;
use zeroize::Zeroizing;

use crate::core::address::{blake2b, blake2b_hex, AccountId, InstallationId};
use crate::core::aead;
use crate::core::error::{CoreError, Result};

/// Every sealed directory topic starts so.
pub const TOPIC_PREFIX: &str = "/logos-chat/1/dir-";

/// The record's version byte.
const VERSION: u8 = 1;
/// Inner records are padded to a multiple of this many bytes.
pub const PAD_TO: usize = 512;
/// The largest sealed record read (a key package is about 1.3 KB; a list of 64 devices 2 KB).
pub const MAX_RECORD: usize = 16 * 1024;

/// What a sealed record holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// An `AccountSubmissionV1` (the signed device list).
    Bundle = 1,
    /// A `KeyPackageSubmissionV1`.
    KeyPackage = 2,
}

fn key(account: &AccountId) -> Zeroizing<[u8; 32]> {
    Zeroizing::new(blake2b::<32>(&[b"logos-chat directory key v1|", account.as_bytes()]))
}

/// The topic an account's sealed device list is published on.
pub fn account_topic(account: &AccountId) -> String {
    let addr = blake2b_hex::<8>(&[b"logos-chat directory account v1|", account.as_bytes()]);
    format!("{TOPIC_PREFIX}{addr}/proto")
}

/// The topic an installation's sealed key package is published on.
pub fn device_topic(account: &AccountId, device: &InstallationId) -> String {
    let addr =
        blake2b_hex::<8>(&[b"logos-chat directory device v1|", account.as_bytes(), b"|", device.as_bytes()]);
    format!("{TOPIC_PREFIX}{addr}/proto")
}

/// Seals `submission` of `kind` for `topic` (one of `account`'s topics).
pub fn seal<R: CryptoRngCore + ?Sized>(
    rng: &mut R,
    account: &AccountId,
    topic: &str,
    kind: Kind,
    submission: &[u8],
) -> Result<Vec<u8>> {
    let len =
        u32::try_from(submission.len()).map_err(|_| CoreError::InvalidArgument("record too large".into()))?;
    let body = submission.len().saturating_add(5);
    let padded = body.div_ceil(PAD_TO).saturating_mul(PAD_TO);
    let mut inner = Zeroizing::new(Vec::with_capacity(padded));
    inner.push(kind as u8);
    inner.extend_from_slice(&len.to_le_bytes());
    inner.extend_from_slice(submission);
    inner.resize(padded, 0);
    let mut nonce = [0u8; aead::NONCE_LEN];
    rng.fill_bytes(&mut nonce);
    let sealed = aead::seal(&key(account), &nonce, &inner, topic.as_bytes())?;
    let mut out = Vec::with_capacity(sealed.len().saturating_add(1 + aead::NONCE_LEN));
    out.push(VERSION);
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&sealed);
    if out.len() > MAX_RECORD {
        return Err(CoreError::InvalidArgument("record too large".into()));
    }
    Ok(out)
}

/// Opens a record read from `topic` of `account`: its kind and the submission inside.
pub fn open(account: &AccountId, topic: &str, record: &[u8]) -> Result<(Kind, Vec<u8>)> {
    const WHAT: &str = "sealed directory record";
    if record.len() > MAX_RECORD {
        return Err(CoreError::decode(WHAT, "too large"));
    }
    let (version, rest) = record.split_first().ok_or_else(|| CoreError::decode(WHAT, "empty"))?;
    if *version != VERSION {
        return Err(CoreError::decode(WHAT, "unknown version"));
    }
    let (nonce, sealed) = rest
        .split_first_chunk::<{ aead::NONCE_LEN }>()
        .ok_or_else(|| CoreError::decode(WHAT, "truncated"))?;
    let inner = aead::open(&key(account), nonce, sealed, topic.as_bytes(), WHAT)?;
    let (kind, rest) = inner.split_first().ok_or_else(|| CoreError::decode(WHAT, "empty"))?;
    let kind = match kind {
        1 => Kind::Bundle,
        2 => Kind::KeyPackage,
        _ => return Err(CoreError::decode(WHAT, "unknown kind")),
    };
    let (len, rest) = rest.split_first_chunk::<4>().ok_or_else(|| CoreError::decode(WHAT, "truncated"))?;
    let len = usize::try_from(u32::from_le_bytes(*len)).map_err(|_| CoreError::decode(WHAT, "length"))?;
    let (submission, padding) = (rest.get(..len), rest.get(len..));
    let (Some(submission), Some(padding)) = (submission, padding) else {
        return Err(CoreError::decode(WHAT, "length runs past the end"));
    };
    if padding.iter().any(|b| *b != 0) {
        return Err(CoreError::decode(WHAT, "padding is not zero"));
    }
    Ok((kind, submission.to_vec()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_chacha::rand_core::SeedableRng as _;

    fn ids() -> (AccountId, InstallationId) {
        (AccountId::from_bytes([3; 32]), InstallationId::from_bytes([4; 32]))
    }

    #[test]
    fn records_open_only_for_their_account_and_topic() {
        let (a, d) = ids();
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(1);
        let topic = device_topic(&a, &d);
        let rec = seal(&mut rng, &a, &topic, Kind::KeyPackage, b"submission").unwrap();
        assert_eq!(rec.len(), 1 + 24 + PAD_TO + 16);
        assert_eq!(open(&a, &topic, &rec).unwrap(), (Kind::KeyPackage, b"submission".to_vec()));
        // Another account, another topic, any flipped byte: nothing opens.
        assert!(open(&AccountId::from_bytes([5; 32]), &topic, &rec).is_err());
        assert!(open(&a, &account_topic(&a), &rec).is_err());
        for i in 0..rec.len() {
            let mut bad = rec.clone();
            bad[i] ^= 0x40;
            assert!(open(&a, &topic, &bad).is_err(), "byte {i}");
        }
        assert!(open(&a, &topic, &[]).is_err());
        assert!(open(&a, &topic, &rec[..20]).is_err());
        assert!(open(&a, &topic, &vec![1u8; MAX_RECORD + 1]).is_err());
    }

    #[test]
    fn lists_of_different_lengths_look_alike() {
        let (a, _) = ids();
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(2);
        let t = account_topic(&a);
        let one = seal(&mut rng, &a, &t, Kind::Bundle, &[7u8; 41 + 32]).unwrap();
        let ten = seal(&mut rng, &a, &t, Kind::Bundle, &[7u8; 41 + 320]).unwrap();
        assert_eq!(one.len(), ten.len());
        assert_ne!(account_topic(&a), account_topic(&AccountId::from_bytes([9; 32])));
        assert!(t.starts_with("/logos-chat/1/dir-") && t.ends_with("/proto"));
    }
}
