//! Sealing for data that must wait in a database and never be readable there: XChaCha20-Poly1305 under a
//! 256-bit key derived with HKDF-SHA256 from a configured secret, for one purpose only.
//!
//! A sealed text is `v1.` and the URL-safe base64 of a fresh random 192-bit nonce followed by the ciphertext and
//! its tag. Each is bound to a caller-given context (authenticated, not stored): a sealed value copied into
//! another row (another account, another recipient) does not open there.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use chacha20poly1305::{
    KeyInit, XChaCha20Poly1305, XNonce,
    aead::{Aead, Payload},
};
use hkdf::Hkdf;
use rand::RngCore;
use sha2::Sha256;
use zeroize::Zeroizing;

/// The prefix of a sealed text: the format's version.
const SEALED_PREFIX: &str = "v1.";
const NONCE_BYTES: usize = 24;

/// What can go wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    /// Not a sealed text, sealed under another key or context, or altered.
    #[error("the sealed value cannot be opened (another key, another context, or altered)")]
    Open,
    /// The key could not be derived or the cipher refused (neither happens with a 256-bit key and values far
    /// below gigabytes; reported rather than stored as something that never opens).
    #[error("the value cannot be sealed")]
    Seal,
}

/// Seals and opens values for one purpose. Never printed by `Debug`.
#[derive(Clone)]
pub struct Sealer {
    cipher: XChaCha20Poly1305,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sealer([REDACTED])")
    }
}

impl Sealer {
    /// A sealer whose key is derived from `key_material` (a configured secret of any length) with HKDF-SHA256
    /// under `salt` and `purpose`: the same material with another salt or purpose gives an unrelated key.
    ///
    /// # Errors
    /// [`SealError::Seal`] if HKDF refuses the length (32 bytes is far below its limit of 8160).
    pub fn derive(key_material: &[u8], salt: &[u8], purpose: &[u8]) -> Result<Self, SealError> {
        let hkdf = Hkdf::<Sha256>::new(Some(salt), key_material);
        let mut key = Zeroizing::new([0u8; 32]);
        hkdf.expand(purpose, key.as_mut_slice())
            .map_err(|_| SealError::Seal)?;
        Ok(Self {
            cipher: XChaCha20Poly1305::new(&(*key).into()),
        })
    }

    /// `value` encrypted under a fresh random nonce and bound to `context`.
    ///
    /// # Errors
    /// [`SealError::Seal`] if the cipher refuses (only for values of gigabytes).
    pub fn seal(&self, value: &[u8], context: &[u8]) -> Result<String, SealError> {
        let mut nonce = [0u8; NONCE_BYTES];
        rand::rng().fill_bytes(&mut nonce);
        let sealed = self
            .cipher
            .encrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: value,
                    aad: context,
                },
            )
            .map_err(|_| SealError::Seal)?;
        let mut bytes = nonce.to_vec();
        bytes.extend_from_slice(&sealed);
        Ok(format!("{SEALED_PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes)))
    }

    /// The value of a [`Sealer::seal`] text sealed under this key for `context`, zeroed when dropped.
    ///
    /// # Errors
    /// [`SealError::Open`] for anything else.
    pub fn open(&self, sealed: &str, context: &[u8]) -> Result<Zeroizing<Vec<u8>>, SealError> {
        let encoded = sealed.strip_prefix(SEALED_PREFIX).ok_or(SealError::Open)?;
        let bytes = URL_SAFE_NO_PAD
            .decode(encoded)
            .map_err(|_| SealError::Open)?;
        if bytes.len() <= NONCE_BYTES {
            return Err(SealError::Open);
        }
        let (nonce, ciphertext) = bytes.split_at(NONCE_BYTES);
        let nonce: [u8; NONCE_BYTES] = nonce.try_into().map_err(|_| SealError::Open)?;
        self.cipher
            .decrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: ciphertext,
                    aad: context,
                },
            )
            .map(Zeroizing::new)
            .map_err(|_| SealError::Open)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_value_opens_only_with_its_key_purpose_and_context() {
        let sealer = Sealer::derive(b"key material", b"salt", b"purpose").unwrap();
        let sealed = sealer
            .seal(b"a link with a token", b"to@example.com")
            .unwrap();
        assert!(sealed.starts_with("v1."));
        assert!(!sealed.contains("token"));
        assert_eq!(
            sealer.open(&sealed, b"to@example.com").unwrap().as_slice(),
            b"a link with a token"
        );
        assert_eq!(
            sealer.open(&sealed, b"eve@example.com"),
            Err(SealError::Open)
        );
        for other in [
            Sealer::derive(b"other material", b"salt", b"purpose").unwrap(),
            Sealer::derive(b"key material", b"other salt", b"purpose").unwrap(),
            Sealer::derive(b"key material", b"salt", b"other purpose").unwrap(),
        ] {
            assert_eq!(other.open(&sealed, b"to@example.com"), Err(SealError::Open));
        }
        let mut altered = sealed.clone().into_bytes();
        let last = altered.len() - 1;
        altered[last] = if altered[last] == b'A' { b'B' } else { b'A' };
        let altered = String::from_utf8(altered).unwrap();
        assert_eq!(
            sealer.open(&altered, b"to@example.com"),
            Err(SealError::Open)
        );
        for garbage in ["", "v1.", "v1.AAAA", "v2.AAAA", "plain text"] {
            assert_eq!(sealer.open(garbage, b""), Err(SealError::Open));
        }
    }

    #[test]
    fn each_seal_of_one_value_differs() {
        let sealer = Sealer::derive(b"key material", b"salt", b"purpose").unwrap();
        assert_ne!(
            sealer.seal(b"value", b"").unwrap(),
            sealer.seal(b"value", b"").unwrap()
        );
    }
}
