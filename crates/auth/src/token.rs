//! Opaque tokens: 256 random bits, URL-safe base64 (43 characters). Only their SHA-256 is ever stored.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::{Digest, Sha256};

/// A new random token of 256 bits from the thread-local CSPRNG.
pub fn generate_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The lower-case hex SHA-256 of a token: the form that is stored and looked up.
pub fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// The key that derives deterministic successors of tokens: HMAC-SHA256 of a token under this key, URL-safe
/// base64 (43 characters). Whoever holds only a token cannot compute its successor; the server can, again and
/// again, without storing it. Refresh rotation uses this so that concurrent refreshes with one token all get
/// the same successor.
#[derive(Clone)]
pub struct SuccessorKey(Hmac<Sha256>);

impl SuccessorKey {
    /// # Errors
    /// Only if `hmac` refused the key length, which HMAC-SHA256 never does.
    pub fn new(key: &[u8]) -> Result<Self, hmac::digest::InvalidLength> {
        Ok(Self(<Hmac<Sha256> as Mac>::new_from_slice(key)?))
    }

    /// A successor key derived from a server secret (HMAC of a fixed label under the secret), so that it is
    /// never the secret itself and never used for anything else.
    ///
    /// # Errors
    /// Only if `hmac` refused the key length, which HMAC-SHA256 never does.
    pub fn derive(secret: &[u8]) -> Result<Self, hmac::digest::InvalidLength> {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret)?;
        mac.update(b"securecrud/refresh-successor/v1");
        Self::new(&mac.finalize().into_bytes())
    }

    /// The successor of `token`.
    pub fn successor(&self, token: &str) -> String {
        let mut mac = self.0.clone();
        mac.update(token.as_bytes());
        URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
    }
}

impl std::fmt::Debug for SuccessorKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SuccessorKey([REDACTED])")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_43_url_safe_characters_and_unique() {
        let a = generate_token();
        let b = generate_token();
        assert_eq!(a.len(), 43);
        assert!(
            a.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        );
        assert_ne!(a, b);
    }

    #[test]
    fn successors_are_deterministic_keyed_and_token_shaped() {
        let token = generate_token();
        let one = SuccessorKey::new(b"key one").unwrap();
        let a = one.successor(&token);
        assert_eq!(a, one.successor(&token), "same input, same successor");
        assert_ne!(
            a,
            SuccessorKey::new(b"key two").unwrap().successor(&token),
            "another key"
        );
        assert_ne!(a, one.successor(&generate_token()));
        assert!(!format!("{one:?}").contains("key one"));
        assert_eq!(a.len(), 43);
    }

    #[test]
    fn hashes_are_stable_hex_sha256() {
        assert_eq!(
            hash_token("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
