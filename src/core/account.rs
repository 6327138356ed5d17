//! Account and installation keys, the delegate credential and the signed device
//! bundle (PROTOCOL.md §2.1, §2.2).
//!
//! A user is an account key; each device is an installation (delegate) key that
//! the account lists in a signed bundle. This module owns the secret keys and
//! their encodings; it never does I/O. Secret keys zeroize on drop and never
//! appear in `Debug`.

use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};
use rand_core::CryptoRngCore;
use std::fmt;

use super::address::{AccountId, InstallationId};
use super::error::{CoreError, Result};

/// The prefix of a device-bundle payload (§2.2), 30 bytes with its NUL.
pub const BUNDLE_PREFIX: &[u8; 30] = b"libchat:account-device-bundle\0";
/// The only bundle version.
pub const BUNDLE_VERSION: u8 = 1;

/// An account's Ed25519 key. Its verifying key is the account address.
pub struct AccountKey(SigningKey);

impl AccountKey {
    /// A fresh random account key.
    pub fn generate<R: CryptoRngCore + ?Sized>(rng: &mut R) -> Self {
        AccountKey(SigningKey::generate(rng))
    }
    /// From a 32-byte seed (tests and restore).
    pub fn from_seed(seed: &[u8; 32]) -> Self {
        AccountKey(SigningKey::from_bytes(seed))
    }
    /// The account address.
    pub fn id(&self) -> AccountId {
        AccountId::from_bytes(self.0.verifying_key().to_bytes())
    }
    /// The secret seed, for the sealed account record only.
    pub(crate) fn seed(&self) -> zeroize::Zeroizing<[u8; 32]> {
        zeroize::Zeroizing::new(self.0.to_bytes())
    }
    /// Signs `msg` (an account log's payload).
    pub fn sign(&self, msg: &[u8]) -> [u8; 64] {
        self.0.sign(msg).to_bytes()
    }
    /// Signs a device bundle listing `devices` at `lamport`.
    pub fn sign_bundle(&self, lamport: u64, devices: Vec<InstallationId>) -> Result<DeviceBundle> {
        let payload = DeviceBundle::encode_payload(lamport, &devices)?;
        let signature = self.0.sign(&payload).to_bytes();
        Ok(DeviceBundle { account: self.id(), lamport, devices, payload, signature })
    }
}

impl fmt::Debug for AccountKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AccountKey({}, secret: <redacted>)", self.id().to_hex())
    }
}

/// An installation's Ed25519 (delegate) key: the MLS leaf signature key.
pub struct InstallationKey(SigningKey);

impl InstallationKey {
    /// A fresh random installation key.
    pub fn generate<R: CryptoRngCore + ?Sized>(rng: &mut R) -> Self {
        InstallationKey(SigningKey::generate(rng))
    }
    /// From a 32-byte seed (tests and restore).
    pub fn from_seed(seed: &[u8; 32]) -> Self {
        InstallationKey(SigningKey::from_bytes(seed))
    }
    /// The signer id.
    pub fn id(&self) -> InstallationId {
        InstallationId::from_bytes(self.0.verifying_key().to_bytes())
    }
    /// The secret seed, for the sealed account record only.
    pub(crate) fn seed(&self) -> zeroize::Zeroizing<[u8; 32]> {
        zeroize::Zeroizing::new(self.0.to_bytes())
    }
    /// Signs arbitrary bytes (key-package submissions, MLS signatures).
    pub fn sign(&self, msg: &[u8]) -> [u8; 64] {
        self.0.sign(msg).to_bytes()
    }
}

impl fmt::Debug for InstallationKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "InstallationKey({}, secret: <redacted>)", self.id().to_hex())
    }
}

/// Verifies an Ed25519 signature strictly (`verify_strict`, §2.2).
pub fn verify_ed25519(key: &[u8; 32], msg: &[u8], sig: &[u8]) -> Result<()> {
    let vk = VerifyingKey::from_bytes(key).map_err(|_| CoreError::Verify("bad Ed25519 key"))?;
    let sig = Signature::from_slice(sig).map_err(|_| CoreError::Verify("bad signature length"))?;
    vk.verify_strict(msg, &sig).map_err(|_| CoreError::Verify("bad signature"))
}

/// The delegate credential (§2.1): `0x23 0x23` then TLV records.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct DelegateCredential {
    /// The delegate (installation) key.
    pub installation: InstallationId,
    /// The claimed account; a claim until the directory confirms it.
    pub account: Option<AccountId>,
}

impl DelegateCredential {
    /// Encodes the TLV (102 bytes with both records).
    pub fn to_tlv(&self) -> Vec<u8> {
        let mut out = vec![0x23, 0x23, 0x01, 32];
        out.extend_from_slice(self.installation.as_bytes());
        if let Some(a) = &self.account {
            out.extend_from_slice(&[0x02, 64]);
            out.extend_from_slice(a.to_hex().as_bytes());
        }
        out
    }

    /// The identity id: `hex(TLV)`, whose ASCII bytes are the MLS credential identity.
    pub fn identity_id(&self) -> String {
        hex::encode(self.to_tlv())
    }

    /// Parses the TLV: unknown tags are skipped, overruns are errors, parsing stops
    /// when fewer than 2 bytes remain; the delegate key is required and must be a
    /// valid Ed25519 point.
    pub fn from_tlv(b: &[u8]) -> Result<Self> {
        let bad = |why: &str| CoreError::decode("delegate credential", why);
        let rest = b.strip_prefix(&[0x23, 0x23]).ok_or_else(|| bad("missing 0x2323 prefix"))?;
        let (mut installation, mut account) = (None, None);
        let mut rest = rest;
        while let [tag, len, tail @ ..] = rest {
            let (tag, len) = (*tag, usize::from(*len));
            let (value, next) = tail.split_at_checked(len).ok_or_else(|| bad("value runs past the end"))?;
            rest = next;
            match tag {
                0x01 => {
                    let key: [u8; 32] = value.try_into().map_err(|_| bad("delegate key length"))?;
                    VerifyingKey::from_bytes(&key).map_err(|_| bad("delegate key not a point"))?;
                    installation = Some(InstallationId::from_bytes(key));
                }
                0x02 => {
                    let s = std::str::from_utf8(value).map_err(|_| bad("account not ASCII"))?;
                    account = Some(AccountId::parse(s).map_err(|_| bad("account not hex"))?);
                }
                _ => {}
            }
        }
        Ok(DelegateCredential { installation: installation.ok_or_else(|| bad("no delegate key"))?, account })
    }

    /// Parses an MLS credential identity (the ASCII hex of the TLV).
    pub fn from_identity(identity: &[u8]) -> Result<Self> {
        let tlv = hex::decode(identity).map_err(|e| CoreError::decode("credential identity", e))?;
        Self::from_tlv(&tlv)
    }
}

/// An account's signed list of installations (§2.2).
#[derive(Clone, PartialEq, Eq)]
pub struct DeviceBundle {
    /// The account that signed it.
    pub account: AccountId,
    /// Monotonic version; a lower one than already accepted is a rollback.
    pub lamport: u64,
    /// The listed installations.
    pub devices: Vec<InstallationId>,
    /// The signed payload bytes.
    pub payload: Vec<u8>,
    /// Ed25519 by the account key over `payload`.
    pub signature: [u8; 64],
}

impl fmt::Debug for DeviceBundle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeviceBundle")
            .field("account", &self.account)
            .field("lamport", &self.lamport)
            .field("devices", &self.devices)
            .finish()
    }
}

impl DeviceBundle {
    fn encode_payload(lamport: u64, devices: &[InstallationId]) -> Result<Vec<u8>> {
        let count = u16::try_from(devices.len())
            .map_err(|_| CoreError::InvalidArgument("too many installations".into()))?;
        let mut p = Vec::with_capacity(devices.len().saturating_mul(32).saturating_add(41));
        p.extend_from_slice(BUNDLE_PREFIX);
        p.push(BUNDLE_VERSION);
        p.extend_from_slice(&lamport.to_le_bytes());
        p.extend_from_slice(&count.to_le_bytes());
        for d in devices {
            p.extend_from_slice(d.as_bytes());
        }
        Ok(p)
    }

    /// Verifies `signature` over `payload` under the account that was requested and
    /// decodes it; rejects a bad prefix, version or count (§2.2).
    pub fn verify(account: &AccountId, payload: &[u8], signature: &[u8]) -> Result<Self> {
        verify_ed25519(account.as_bytes(), payload, signature)?;
        let bad = |why: &str| CoreError::decode("device bundle", why);
        let body = payload.strip_prefix(BUNDLE_PREFIX.as_slice()).ok_or_else(|| bad("prefix"))?;
        let (&version, body) = body.split_first().ok_or_else(|| bad("truncated"))?;
        if version != BUNDLE_VERSION {
            return Err(bad("unknown version"));
        }
        let lamport = u64::from_le_bytes(
            body.get(..8).and_then(|b| b.try_into().ok()).ok_or_else(|| bad("truncated"))?,
        );
        let count = u16::from_le_bytes(
            body.get(8..10).and_then(|b| b.try_into().ok()).ok_or_else(|| bad("truncated"))?,
        );
        let keys = body.get(10..).ok_or_else(|| bad("truncated"))?;
        if keys.len() != 32 * usize::from(count) {
            return Err(bad("count does not match length"));
        }
        let devices = keys
            .chunks_exact(32)
            .map(|c| {
                let mut k = [0u8; 32];
                k.copy_from_slice(c);
                InstallationId::from_bytes(k)
            })
            .collect();
        let signature: [u8; 64] = signature.try_into().map_err(|_| bad("signature length"))?;
        Ok(DeviceBundle { account: account.clone(), lamport, devices, payload: payload.to_vec(), signature })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // PROTOCOL.md §8 F.
    #[test]
    fn account_delegate_credential_and_bundle_match_vectors_f() {
        let account = AccountKey::from_seed(&[0x0a; 32]);
        let delegate = InstallationKey::from_seed(&[0x0b; 32]);
        assert_eq!(account.id().to_hex(), "43a72e714401762df66b68c26dfbdf2682aaec9f2474eca4613e424a0fbafd3c");
        assert_eq!(
            delegate.id().to_hex(),
            "66be7e332c7a453332bd9d0a7f7db055f5c5ef1a06ada66d98b39fb6810c473a"
        );
        assert_eq!(delegate.id().inbox_delivery_address(), "6deefbfd");
        assert_eq!(delegate.id().inbox_conversation_id(), "c732b10a2e89");

        let cred = DelegateCredential { installation: delegate.id(), account: Some(account.id()) };
        let tlv = cred.to_tlv();
        assert_eq!(tlv.len(), 102);
        let expected =
            format!("23230120{}0240{}", delegate.id().to_hex(), hex::encode(account.id().to_hex()));
        assert_eq!(hex::encode(&tlv), expected);
        assert_eq!(DelegateCredential::from_identity(cred.identity_id().as_bytes()).unwrap(), cred);

        let bundle = account.sign_bundle(1, vec![delegate.id()]).unwrap();
        assert_eq!(
            hex::encode(&bundle.payload),
            "6c6962636861743a6163636f756e742d6465766963652d62756e646c6500010100000000000000010066be7e332c7a453332bd9d0a7f7db055f5c5ef1a06ada66d98b39fb6810c473a"
        );
        assert_eq!(
            hex::encode(bundle.signature),
            "a599b7c3114a3d903fdd4733f4c1667b4830cc605aac029bb2d43e26e1bbc94ec1c30a5d79eb2ef40092d7d14b76ca036d1bf018b650e38e791218e7a0d0ae0a"
        );
        let back = DeviceBundle::verify(&account.id(), &bundle.payload, &bundle.signature).unwrap();
        assert_eq!(back, bundle);
    }

    #[test]
    fn bundle_is_bound_to_the_requested_account() {
        let a = AccountKey::from_seed(&[1; 32]);
        let b = AccountKey::from_seed(&[2; 32]);
        let bundle = a.sign_bundle(3, vec![InstallationKey::from_seed(&[3; 32]).id()]).unwrap();
        assert!(DeviceBundle::verify(&b.id(), &bundle.payload, &bundle.signature).is_err());
        let mut truncated = bundle.payload.clone();
        truncated.pop();
        assert!(DeviceBundle::verify(&a.id(), &truncated, &bundle.signature).is_err());
    }

    #[test]
    fn credential_parser_rejects_bad_tlv_without_panicking() {
        for bad in
            [&b""[..], b"\x23", b"\x23\x23", b"\x23\x23\x01\x20\x00", b"\x23\x23\x02\x40abc", b"xx\x01\x20"]
        {
            assert!(DelegateCredential::from_tlv(bad).is_err());
        }
        // Unknown tags are skipped; a trailing single byte ends parsing.
        let key = InstallationKey::from_seed(&[9; 32]).id();
        let mut tlv = vec![0x23, 0x23, 0x7f, 1, 0, 0x01, 32];
        tlv.extend_from_slice(key.as_bytes());
        tlv.push(0x99);
        let c = DelegateCredential::from_tlv(&tlv).unwrap();
        assert_eq!((c.installation, c.account), (key, None));
    }

    #[test]
    fn secrets_never_print() {
        let k = AccountKey::from_seed(&[0x0a; 32]);
        let i = InstallationKey::from_seed(&[0x0b; 32]);
        let shown = format!("{k:?} {i:?}");
        assert!(!shown.contains(&hex::encode([0x0a; 32])));
        assert!(!shown.contains(&hex::encode([0x0b; 32])));
        assert!(shown.contains("redacted"));
    }
}
