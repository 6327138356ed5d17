//! Contact cards (issue 14): a self-contained, signed string that lets someone start a
//! chat with no directory at all. `logos_chatcard_` and the base64url (no padding) of a
//! `ContactCard`: the account's signed device list (libchat's `AccountSubmissionV1`),
//! its log, and the key-package submissions of its installations, each signed as in the
//! directory. A card is only a carrier: every record in it is verified exactly as one
//! read from the directory, and a card that does not parse or verify is `INVALID_CARD`.
//! A card with one X-Wing key package is about 3.3 kB (4.4 k characters), more than a QR
//! code's 2,953 bytes; a compact card (the list and the log only, about 450 characters)
//! fits one, and leaves the key packages to the directory.

use prost::Message as _;

use super::account::DeviceBundle;
use super::account_log::{AccountLog, LOG_PREFIX};
use super::address::{AccountId, InstallationId};
use super::error::{CoreError, Result};
use super::wire::{decode, AccountSubmissionV1, KeyPackageSubmissionV1};

/// The prefix of a card.
pub const CARD_PREFIX: &str = "logos_chatcard_";
/// The longest card read (characters after the prefix).
pub const MAX_CARD_CHARS: usize = 32 * 1024;
/// The most key packages one card carries.
pub const MAX_CARD_KEY_PACKAGES: usize = 16;

/// A card's contents.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ContactCard {
    /// The account's signed device list (`AccountSubmissionV1`).
    #[prost(bytes = "vec", tag = "1")]
    pub bundle: Vec<u8>,
    /// The account's log (`AccountSubmissionV1` whose payload is a log).
    #[prost(bytes = "vec", tag = "2")]
    pub log: Vec<u8>,
    /// Key-package submissions (`KeyPackageSubmissionV1`) of listed installations.
    #[prost(bytes = "vec", repeated, tag = "3")]
    pub key_packages: Vec<Vec<u8>>,
}

/// A card whose records verified.
#[derive(Debug)]
pub struct OpenedCard {
    /// Whose card it is.
    pub account: AccountId,
    /// The device list.
    pub bundle: DeviceBundle,
    /// The log.
    pub log: AccountLog,
    /// The key-package submissions (their delegate signatures verified), for the directory.
    pub key_packages: Vec<Vec<u8>>,
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

fn b64_encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().saturating_mul(4).div_ceil(3));
    for chunk in bytes.chunks(3) {
        let b = [
            chunk.first().copied().unwrap_or(0),
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        let chars = chunk.len().saturating_add(1);
        for i in 0..chars {
            let shift = 18u32.saturating_sub(6u32.saturating_mul(u32::try_from(i).unwrap_or(0)));
            let idx = usize::try_from((n >> shift) & 63).unwrap_or(0);
            out.push(char::from(B64.get(idx).copied().unwrap_or(b'A')));
        }
    }
    out
}

fn b64_decode(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len().saturating_mul(3) / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in s.bytes() {
        let v = u32::try_from(B64.iter().position(|&x| x == c)?).ok()?;
        acc = (acc << 6) | v;
        bits = bits.saturating_add(6);
        if bits >= 8 {
            bits = bits.saturating_sub(8);
            out.push(u8::try_from((acc >> bits) & 0xff).ok()?);
        }
    }
    // Leftover bits must be zero and fewer than six (a canonical encoding).
    if bits >= 6 || acc & ((1u32 << bits).saturating_sub(1)) != 0 {
        return None;
    }
    Some(out)
}

/// Encodes a card.
pub fn encode(card: &ContactCard) -> String {
    format!("{CARD_PREFIX}{}", b64_encode(&card.encode_to_vec()))
}

/// Whether a string is meant as a card (the app passed a card, not an account id).
pub fn looks_like_card(s: &str) -> bool {
    s.trim().starts_with(CARD_PREFIX)
}

/// Parses and verifies a card: the list under the account it names, the log under the
/// same account, every key package's delegate signature and its device on the list.
pub fn open(s: &str) -> Result<OpenedCard> {
    let body = s.trim().strip_prefix(CARD_PREFIX).ok_or(CoreError::InvalidCard("not a contact card"))?;
    if body.len() > MAX_CARD_CHARS {
        return Err(CoreError::InvalidCard("too long"));
    }
    let bytes = b64_decode(body).ok_or(CoreError::InvalidCard("not base64url"))?;
    open_bytes(&bytes)
}

/// [`open`] on the decoded bytes (also the fuzz harness's entry).
pub fn open_bytes(bytes: &[u8]) -> Result<OpenedCard> {
    let card = ContactCard::decode(bytes).map_err(|_| CoreError::InvalidCard("does not decode"))?;
    let bad = |_| CoreError::InvalidCard("a record in it does not verify");
    let sub: AccountSubmissionV1 = decode("card list", &card.bundle).map_err(bad)?;
    let account = <[u8; 32]>::try_from(sub.account_pub.as_slice())
        .map(AccountId::from_bytes)
        .map_err(|_| CoreError::InvalidCard("account"))?;
    let bundle = DeviceBundle::verify(&account, &sub.payload, &sub.signature).map_err(bad)?;
    // The log is required: a card altered to drop it would otherwise still parse.
    let l: AccountSubmissionV1 = decode("card log", &card.log).map_err(bad)?;
    if l.account_pub != sub.account_pub || !l.payload.starts_with(LOG_PREFIX) {
        return Err(CoreError::InvalidCard("a log of another account"));
    }
    let log = AccountLog::verify(&account, &l.payload, &l.signature).map_err(bad)?;
    if !log.lists_exactly(&bundle.devices) {
        return Err(CoreError::InvalidCard("the log and the list differ"));
    }
    if card.key_packages.len() > MAX_CARD_KEY_PACKAGES {
        return Err(CoreError::InvalidCard("too many key packages"));
    }
    for kp in &card.key_packages {
        let k: KeyPackageSubmissionV1 = decode("card key package", kp).map_err(bad)?;
        let device = <[u8; 32]>::try_from(k.device_id.as_slice())
            .map(InstallationId::from_bytes)
            .map_err(|_| CoreError::InvalidCard("device"))?;
        super::account::verify_ed25519(device.as_bytes(), &k.payload, &k.signature).map_err(bad)?;
        if !bundle.devices.contains(&device) {
            return Err(CoreError::InvalidCard("a key package of an installation the list does not show"));
        }
    }
    Ok(OpenedCard { account, bundle, log, key_packages: card.key_packages })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64url_round_trips_and_refuses_what_is_not_canonical() {
        for n in 0..40usize {
            let bytes: Vec<u8> = (0..n).map(|i| (i as u8).wrapping_mul(37)).collect();
            let s = b64_encode(&bytes);
            assert_eq!(s.len(), (n * 4).div_ceil(3));
            assert_eq!(b64_decode(&s).unwrap(), bytes);
        }
        assert_eq!(b64_encode(b"hello"), "aGVsbG8");
        assert!(b64_decode("aGVsbG9").is_none(), "non-zero leftover bits");
        assert!(b64_decode("a").is_none());
        assert!(b64_decode("aGV+").is_none(), "standard alphabet");
        assert!(open("logos_chatcard_!!").is_err());
        assert_eq!(open("hello").unwrap_err().code().as_str(), "INVALID_CARD");
    }
}
