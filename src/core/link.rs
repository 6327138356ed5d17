//! Installation links: how a new device becomes an installation of an existing account.
//!
//! `create_link` on an installation draws a 16-byte secret and shows it as a code
//! (`logos_link_` and 26 base32 characters: short enough to type, small as a QR code).
//! Both sides derive from the secret a content topic and a key, so the network sees only
//! sealed frames on a topic nobody else can name:
//! 1. the new device sends `Request` (its installation id);
//! 2. the existing installation appends it to the account's signed device list and
//!    answers `Grant` (the account key, so that any remaining device can later revoke a
//!    lost one, and the new list);
//! 3. the new device, now an installation of the account, sends `Ready` (its key
//!    package) and is added to every conversation of the account.
//!
//! A code is single use (the first request binds it to one installation) and expires.
//! Each frame is `kind ‖ nonce(24) ‖ XChaCha20-Poly1305(key, kind as AAD)`; the 128-bit
//! secret is not guessable, so no frame opens or is accepted without the code.
//!
//! The code alone does not open what matters. Store nodes keep the frames for their
//! retention time, and a code is shown on a screen or in a QR code: whoever sees it later
//! must not read the account key or the history. So the request also carries a fresh
//! HPKE public key of the new device (X-Wing, as the chats use), the grant carries a
//! 32-byte secret sealed to it, and the grant's body and every history frame are sealed
//! again under a [`SessionKey`] derived from the code and that secret. The granting
//! installation binds the first request's key with its installation: a later request
//! naming the same installation with another key is not answered.

use rand_core::CryptoRngCore;
use zeroize::Zeroizing;

use super::address::{blake2b, blake2b_hex, InstallationId, CHAT_TOPIC_PREFIX};
use super::aead::{self, NONCE_LEN};
use super::conversation::mls::{put_vec, take_vec};
use super::error::{CoreError, Result};

/// The prefix of a link code.
pub const LINK_PREFIX: &str = "logos_link_";
/// How long a code is good for.
pub const LINK_TTL_MS: u64 = 10 * 60 * 1000;
const SECRET_LEN: usize = 16;
const CODE_CHARS: usize = 26;
const ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";

/// The three frames of a link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// New device → installation: its installation id.
    Request = 1,
    /// Installation → new device: the account key and the new device list.
    Grant = 2,
    /// New device → installation: its key package.
    Ready = 3,
    /// Installation → new device: the code was used by another device, or expired.
    Refused = 4,
    /// Installation → new device: recent history (an `Archive`), one or more frames.
    History = 5,
}

impl Kind {
    fn from_byte(b: u8) -> Option<Kind> {
        match b {
            1 => Some(Kind::Request),
            2 => Some(Kind::Grant),
            3 => Some(Kind::Ready),
            4 => Some(Kind::Refused),
            5 => Some(Kind::History),
            _ => None,
        }
    }
}

/// A link secret (zeroized on drop, never printed).
#[derive(Clone)]
pub struct LinkSecret(Zeroizing<[u8; SECRET_LEN]>);

impl std::fmt::Debug for LinkSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "LinkSecret({}, secret: <redacted>)", self.topic())
    }
}

impl LinkSecret {
    /// A fresh random secret.
    pub fn generate<R: CryptoRngCore + ?Sized>(rng: &mut R) -> Self {
        let mut s = Zeroizing::new([0u8; SECRET_LEN]);
        rng.fill_bytes(s.as_mut());
        LinkSecret(s)
    }

    /// The code to show: the prefix and the secret in lowercase base32 (RFC 4648, no
    /// padding): 26 characters of 5 bits, the last carrying 3 bits and two zero bits.
    pub fn code(&self) -> String {
        let v = u128::from_be_bytes(*self.0);
        let mut out = String::from(LINK_PREFIX);
        for i in 0..CODE_CHARS {
            let shift = u32::try_from(i).ok().and_then(|i| 123u32.checked_sub(i.wrapping_mul(5)));
            let d = match shift {
                Some(s) => v.wrapping_shr(s),
                None => v.wrapping_shl(2),
            } & 31;
            let c = usize::try_from(d).ok().and_then(|d| ALPHABET.get(d)).copied().unwrap_or(b'a');
            out.push(char::from(c));
        }
        out
    }

    /// Parses a code (case-insensitive, spaces and dashes ignored, so it can be typed in groups).
    pub fn parse(code: &str) -> Result<Self> {
        let bad = |why: &'static str| CoreError::InvalidLink(why);
        let body = code.trim();
        let body = body
            .get(..LINK_PREFIX.len())
            .filter(|p| p.eq_ignore_ascii_case(LINK_PREFIX))
            .and_then(|_| body.get(LINK_PREFIX.len()..))
            .ok_or(bad("not a link code"))?;
        let digits = body
            .chars()
            .filter(|c| !matches!(c, ' ' | '-'))
            .map(|c| {
                let c = u8::try_from(c.to_ascii_lowercase()).map_err(|_| bad("not base32"))?;
                let d = ALPHABET.iter().position(|&a| a == c).ok_or(bad("not base32"))?;
                u128::try_from(d).map_err(|_| bad("not base32"))
            })
            .collect::<Result<Vec<u128>>>()?;
        let (last, head) = digits.split_last().ok_or(bad("wrong length"))?;
        if digits.len() != CODE_CHARS || last & 3 != 0 {
            return Err(bad("wrong length"));
        }
        let v = head.iter().fold(0u128, |v, d| v.wrapping_shl(5) | d).wrapping_shl(3) | last.wrapping_shr(2);
        Ok(LinkSecret(Zeroizing::new(v.to_be_bytes())))
    }

    /// The content topic both sides use.
    pub fn topic(&self) -> String {
        let addr = blake2b_hex::<8>(&[b"logos-chat link topic v1|", self.0.as_slice()]);
        format!("{CHAT_TOPIC_PREFIX}link-{addr}/proto")
    }

    fn key(&self) -> Zeroizing<[u8; 32]> {
        Zeroizing::new(blake2b::<32>(&[b"logos-chat link key v1|", self.0.as_slice()]))
    }

    /// Seals one frame.
    pub fn seal<R: CryptoRngCore + ?Sized>(&self, rng: &mut R, kind: Kind, plain: &[u8]) -> Result<Vec<u8>> {
        let mut nonce = [0u8; NONCE_LEN];
        rng.fill_bytes(&mut nonce);
        let k = kind as u8;
        let sealed = aead::seal(&self.key(), &nonce, plain, &[k])?;
        Ok([&[k][..], &nonce, &sealed].concat())
    }

    /// Opens one frame: its kind and plaintext. Anything that does not open is `INVALID_LINK`.
    pub fn open(&self, frame: &[u8]) -> Result<(Kind, Zeroizing<Vec<u8>>)> {
        let (&k, rest) = frame.split_first().ok_or(CoreError::InvalidLink("empty frame"))?;
        let kind = Kind::from_byte(k).ok_or(CoreError::InvalidLink("unknown frame"))?;
        let (nonce, sealed) =
            rest.split_first_chunk::<NONCE_LEN>().ok_or(CoreError::InvalidLink("truncated"))?;
        let plain = aead::open(&self.key(), nonce, sealed, &[k], "link frame")
            .map_err(|_| CoreError::InvalidLink("a frame that does not open with this code"))?;
        Ok((kind, plain))
    }
}

/// A `Grant`'s contents.
pub struct Grant {
    /// The account key's seed.
    pub account_seed: Zeroizing<[u8; 32]>,
    /// The signed device-list payload and its signature.
    pub bundle_payload: Vec<u8>,
    /// The signature over `bundle_payload`.
    pub bundle_signature: Vec<u8>,
    /// The account's log (the same installations, with their history) and its signature.
    pub log_payload: Vec<u8>,
    /// The signature over `log_payload`.
    pub log_signature: Vec<u8>,
    /// The link's session (not encoded: set when the grant is opened).
    pub session: Option<SessionKey>,
}

impl Grant {
    /// Encodes it (the caller seals it).
    pub fn encode(&self) -> Zeroizing<Vec<u8>> {
        let mut out = Zeroizing::new(Vec::new());
        put_vec(&mut out, self.account_seed.as_slice());
        put_vec(&mut out, &self.bundle_payload);
        put_vec(&mut out, &self.bundle_signature);
        put_vec(&mut out, &self.log_payload);
        put_vec(&mut out, &self.log_signature);
        out
    }

    /// Decodes it.
    pub fn decode(mut b: &[u8]) -> Result<Self> {
        let seed =
            <[u8; 32]>::try_from(take_vec(&mut b)?).map_err(|_| CoreError::InvalidLink("account key"))?;
        let bundle_payload = take_vec(&mut b)?.to_vec();
        let bundle_signature = take_vec(&mut b)?.to_vec();
        let log_payload = take_vec(&mut b)?.to_vec();
        let log_signature = take_vec(&mut b)?.to_vec();
        Ok(Grant {
            account_seed: Zeroizing::new(seed),
            bundle_payload,
            bundle_signature,
            log_payload,
            log_signature,
            session: None,
        })
    }
}

/// Most bytes of message content in one `History` frame (under the networks' 150 KiB).
pub const ARCHIVE_FRAME_BYTES: usize = 96 * 1024;
/// Most `History` frames one link sends.
pub const ARCHIVE_MAX_FRAMES: usize = 32;

/// A `History` frame: messages oldest first, each conversation's in one frame, as the
/// sending installation stores them (their `seq` and `outgoing` are the receiver's to set).
#[derive(Clone, PartialEq, prost::Message)]
pub struct Archive {
    /// The messages.
    #[prost(message, repeated, tag = "1")]
    pub messages: Vec<super::store::MessageRecord>,
}

/// The HPKE `info` of a grant's session secret.
pub const GRANT_INFO: &[u8] = b"logos-chat link grant v1";
/// The largest HPKE public key a request may carry (X-Wing's is 1,216 bytes).
const MAX_REQUEST_KEY: usize = 2048;

/// A `Request`'s contents: the new installation and its HPKE public key.
pub fn encode_request(installation: &InstallationId, hpke_public: &[u8]) -> Vec<u8> {
    [installation.as_bytes().as_slice(), hpke_public].concat()
}

/// Decodes a `Request`: the new installation and its HPKE public key.
pub fn decode_request(plain: &[u8]) -> Result<(InstallationId, Vec<u8>)> {
    let (id, key) = plain.split_first_chunk::<32>().ok_or(CoreError::InvalidLink("request"))?;
    if key.is_empty() || key.len() > MAX_REQUEST_KEY {
        return Err(CoreError::InvalidLink("request without a usable key"));
    }
    Ok((InstallationId::from_bytes(*id), key.to_vec()))
}

/// The key a link's grant body and history frames are sealed under inside the code's
/// seal: derived from the code and a secret only the new device's HPKE key opens.
#[derive(Clone)]
pub struct SessionKey(Zeroizing<[u8; 32]>);

impl std::fmt::Debug for SessionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionKey(<redacted>)")
    }
}

impl SessionKey {
    /// The session key of a link and the secret its grant carried.
    pub fn derive(link: &LinkSecret, shared: &[u8]) -> Self {
        SessionKey(Zeroizing::new(blake2b::<32>(&[
            b"logos-chat link session v1|",
            link.0.as_slice(),
            b"|",
            shared,
        ])))
    }

    /// `nonce ‖ XChaCha20-Poly1305` of `plain`, with the frame kind as AAD.
    pub fn seal<R: CryptoRngCore + ?Sized>(&self, rng: &mut R, kind: Kind, plain: &[u8]) -> Result<Vec<u8>> {
        let mut nonce = [0u8; NONCE_LEN];
        rng.fill_bytes(&mut nonce);
        let sealed = aead::seal(&self.0, &nonce, plain, &[kind as u8])?;
        Ok([&nonce[..], &sealed].concat())
    }

    /// Opens what [`SessionKey::seal`] made for `kind`.
    pub fn open(&self, kind: Kind, sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        let (nonce, body) =
            sealed.split_first_chunk::<NONCE_LEN>().ok_or(CoreError::InvalidLink("truncated"))?;
        aead::open(&self.0, nonce, body, &[kind as u8], "link session frame")
            .map_err(|_| CoreError::InvalidLink("a frame that does not open with this link's session"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_chacha::rand_core::SeedableRng as _;

    #[test]
    fn codes_round_trip_and_bad_codes_are_invalid_link() {
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(1);
        for _ in 0..64 {
            let s = LinkSecret::generate(&mut rng);
            let code = s.code();
            assert_eq!(code.len(), LINK_PREFIX.len() + 26);
            assert_eq!(LinkSecret::parse(&code).unwrap().topic(), s.topic());
            let typed = format!("  {} ", code.to_uppercase().replacen("LOGOS_LINK_", "logos_link_", 1));
            assert_eq!(LinkSecret::parse(&typed).unwrap().topic(), s.topic());
        }
        let good = LinkSecret::generate(&mut rng).code();
        for bad in [
            "",
            "logos_link_",
            "hello",
            &good[..good.len() - 1],
            &format!("{good}a"),
            &good.replace("logos_link_", "logos_lnk_"),
            &format!("{}1", &good[..good.len() - 1]),
            "logos_link_ééééééééééééééééééééééééé",
        ] {
            let e = LinkSecret::parse(bad).unwrap_err();
            assert_eq!(e.code().as_str(), "INVALID_LINK", "{bad:?}");
        }
    }

    #[test]
    fn frames_open_only_with_their_code_and_kind() {
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(2);
        let (a, b) = (LinkSecret::generate(&mut rng), LinkSecret::generate(&mut rng));
        let f = a.seal(&mut rng, Kind::Request, &[5; 32]).unwrap();
        let (kind, plain) = a.open(&f).unwrap();
        assert_eq!((kind, plain.as_slice()), (Kind::Request, &[5u8; 32][..]));
        assert!(b.open(&f).is_err());
        let mut relabelled = f.clone();
        relabelled[0] = Kind::Ready as u8;
        assert!(a.open(&relabelled).is_err());
        for cut in 0..f.len() {
            assert!(a.open(&f[..cut]).is_err());
        }
        assert!(!format!("{a:?}").contains(&a.code()[LINK_PREFIX.len()..]));
    }

    #[test]
    fn session_frames_need_the_code_and_the_secret() {
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(3);
        let (a, b) = (LinkSecret::generate(&mut rng), LinkSecret::generate(&mut rng));
        let s = SessionKey::derive(&a, &[1; 32]);
        let f = s.seal(&mut rng, Kind::History, b"archive").unwrap();
        assert_eq!(s.open(Kind::History, &f).unwrap().as_slice(), b"archive");
        assert!(s.open(Kind::Grant, &f).is_err());
        assert!(SessionKey::derive(&a, &[2; 32]).open(Kind::History, &f).is_err());
        assert!(SessionKey::derive(&b, &[1; 32]).open(Kind::History, &f).is_err());
        assert!(!format!("{s:?}").contains("1, 1"));
        let id = InstallationId::from_bytes([7; 32]);
        assert_eq!(decode_request(&encode_request(&id, &[9; 1216])).unwrap(), (id.clone(), vec![9; 1216]));
        assert!(decode_request(id.as_bytes()).is_err(), "a request without a key");
        assert!(decode_request(&encode_request(&id, &[9; 4096])).is_err());
    }
}
