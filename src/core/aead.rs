//! XChaCha20-Poly1305 with a 24-byte nonce: the one symmetric seal of the core (sealed
//! ratchet trees and member bundles, installation-link frames).

use zeroize::Zeroizing;

use super::error::{CoreError, Result};

/// The nonce length.
pub const NONCE_LEN: usize = 24;
/// The tag length.
pub const TAG_LEN: usize = 16;

/// Seals `plain` under `key` and `nonce`; returns ciphertext ‖ tag.
pub fn seal(key: &[u8; 32], nonce: &[u8; NONCE_LEN], plain: &[u8], aad: &[u8]) -> Result<Vec<u8>> {
    let mut sealed = vec![0u8; plain.len().saturating_add(TAG_LEN)];
    libcrux_chacha20poly1305::xchacha20_poly1305::encrypt(key, plain, &mut sealed, aad, nonce)
        .map_err(|_| CoreError::InvalidArgument("too large to seal".into()))?;
    Ok(sealed)
}

/// Opens ciphertext ‖ tag; `what` names the frame in errors.
pub fn open(
    key: &[u8; 32],
    nonce: &[u8],
    sealed: &[u8],
    aad: &[u8],
    what: &'static str,
) -> Result<Zeroizing<Vec<u8>>> {
    let nonce =
        <[u8; NONCE_LEN]>::try_from(nonce).map_err(|_| CoreError::decode(what, "nonce is not 24 bytes"))?;
    let Some(len) = sealed.len().checked_sub(TAG_LEN) else {
        return Err(CoreError::decode(what, "truncated"));
    };
    let mut plain = Zeroizing::new(vec![0u8; len]);
    libcrux_chacha20poly1305::xchacha20_poly1305::decrypt(key, &mut plain, sealed, aad, &nonce)
        .map_err(|_| CoreError::Verify("a sealed frame does not open"))?;
    Ok(plain)
}

#[cfg(test)]
mod tests {
    #[test]
    fn seal_round_trips_and_any_flip_fails() {
        let (key, nonce) = ([7u8; 32], [9u8; 24]);
        let sealed = super::seal(&key, &nonce, b"hello", b"aad").unwrap();
        assert_eq!(super::open(&key, &nonce, &sealed, b"aad", "t").unwrap().as_slice(), b"hello");
        for i in 0..sealed.len() {
            let mut bad = sealed.clone();
            bad[i] ^= 1;
            assert!(super::open(&key, &nonce, &bad, b"aad", "t").is_err());
        }
        assert!(super::open(&key, &nonce, &sealed, b"other", "t").is_err());
        assert!(super::open(&key, &nonce[..23], &sealed, b"aad", "t").is_err());
        assert!(super::open(&key, &nonce, &sealed[..15], b"aad", "t").is_err());
    }
}
