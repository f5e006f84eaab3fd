//! Two-factor authentication: TOTP codes (RFC 6238, computed by the `totp-rs` crate), TOTP secrets sealed for
//! storage (XChaCha20-Poly1305 under a key derived with HKDF-SHA256), and recovery codes.
//!
//! - [`TotpSecret`]: a random 160-bit secret (RFC 4226 §4's recommended size), its base32 form and
//!   `otpauth://` URI for authenticator apps, and [`TotpSecret::matching_step`]: which time step (30 s) within
//!   ±1 of now a 6-digit code belongs to. Callers remember the last step used per account and refuse any
//!   step not after it, so a code is never accepted twice (RFC 6238 §5.2).
//! - [`SecretSealer`]: encrypts a secret with a fresh random nonce ([`crate::seal`]), bound to a caller-given
//!   context (the account id), so a sealed secret copied to another account's row does not open.
//! - Recovery codes: 16 characters of Crockford's base32 (80 bits), shown as `xxxx-xxxx-xxxx-xxxx`; only
//!   [`hash_recovery_code`] of the normalised form is stored.

use rand::RngCore;
use secrecy::{ExposeSecret, SecretSlice};
use totp_rs::{Algorithm, Secret, TOTP};

use crate::seal::Sealer;

/// Digits in a code.
pub const TOTP_DIGITS: usize = 6;
/// Seconds in a time step.
pub const TOTP_STEP_SECS: u64 = 30;
/// Steps of clock drift accepted either side of now.
const TOTP_SKEW_STEPS: u64 = 1;
/// Bytes in a new secret: 160 bits, the HMAC-SHA1 key size RFC 4226 §4 recommends.
const SECRET_BYTES: usize = 20;
/// Recovery codes are this many characters (80 bits), without the dashes.
pub const RECOVERY_CODE_CHARS: usize = 16;
/// Crockford's base32, lower case: no `i`, `l`, `o`, `u` to misread.
const RECOVERY_ALPHABET: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";

/// What can go wrong with a secret.
#[derive(Debug, thiserror::Error)]
pub enum MfaError {
    /// A sealed secret that is not in this format, was sealed under another key or context, or was altered.
    #[error("the sealed TOTP secret cannot be opened (another key, another account, or altered)")]
    Unseal,
    /// The key could not be derived, or the cipher refused to seal (neither happens with a 256-bit key and a
    /// 20-byte secret; reported rather than stored as something that never opens).
    #[error("the TOTP secret cannot be sealed")]
    Seal,
    /// The issuer or account name cannot go into an `otpauth://` URI (it holds `:`).
    #[error("the issuer or account name cannot be used in an otpauth URI: {0}")]
    Uri(String),
}

/// A TOTP shared secret. Never printed by `Debug`.
pub struct TotpSecret(SecretSlice<u8>);

impl std::fmt::Debug for TotpSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TotpSecret([REDACTED])")
    }
}

impl TotpSecret {
    /// A new random 160-bit secret.
    pub fn generate() -> Self {
        let mut bytes = vec![0u8; SECRET_BYTES];
        rand::rng().fill_bytes(&mut bytes);
        Self(bytes.into())
    }

    /// The secret in base32 (RFC 4648, no padding), as authenticator apps take it.
    pub fn base32(&self) -> String {
        match Secret::Raw(self.0.expose_secret().to_vec()).to_encoded() {
            Secret::Encoded(ref text) => text.trim_end_matches('=').to_owned(),
            Secret::Raw(_) => String::new(),
        }
    }

    /// A secret from its base32 text (as [`TotpSecret::base32`] gives it); `None` if it is not base32 or is
    /// shorter than 128 bits.
    pub fn from_base32(text: &str) -> Option<Self> {
        let bytes = Secret::Encoded(text.to_ascii_uppercase()).to_bytes().ok()?;
        (bytes.len() >= 16).then(|| Self(bytes.into()))
    }

    fn totp(&self, issuer: Option<String>, account: String) -> Result<TOTP, MfaError> {
        TOTP::new(
            Algorithm::SHA1,
            TOTP_DIGITS,
            0,
            TOTP_STEP_SECS,
            self.0.expose_secret().to_vec(),
            issuer,
            account,
        )
        .map_err(|err| MfaError::Uri(err.to_string()))
    }

    /// The `otpauth://totp/…` URI an authenticator app scans (as a QR code) or takes as a link.
    ///
    /// # Errors
    /// [`MfaError::Uri`] when `issuer` or `account` holds a `:`.
    pub fn otpauth_uri(&self, issuer: &str, account: &str) -> Result<String, MfaError> {
        Ok(self
            .totp(Some(issuer.to_owned()), account.to_owned())?
            .get_url())
    }

    /// The code of the time step that holds `unix_time`.
    pub fn code_at(&self, unix_time: u64) -> String {
        self.totp(None, String::new())
            .map(|totp| totp.generate(unix_time))
            .unwrap_or_default()
    }

    /// The time step (Unix time / 30 s) within ±1 step of `unix_time` whose code is `code`, or `None`. Every
    /// candidate is compared, in constant time, whatever matched first.
    pub fn matching_step(&self, code: &str, unix_time: u64) -> Option<u64> {
        if code.len() != TOTP_DIGITS || !code.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let Ok(totp) = self.totp(None, String::new()) else {
            return None;
        };
        let now = unix_time / TOTP_STEP_SECS;
        let mut found = None;
        for step in now.saturating_sub(TOTP_SKEW_STEPS)..=now + TOTP_SKEW_STEPS {
            let expected = totp.generate(step * TOTP_STEP_SECS);
            if constant_time_eq(expected.as_bytes(), code.as_bytes()) {
                found = Some(step);
            }
        }
        found
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Seals and opens TOTP secrets for storage (see [`crate::seal`]). Never printed by `Debug`.
#[derive(Clone)]
pub struct SecretSealer(Sealer);

impl std::fmt::Debug for SecretSealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretSealer([REDACTED])")
    }
}

impl SecretSealer {
    /// A sealer whose 256-bit key is derived from `key_material` (a configured secret of any length) with
    /// HKDF-SHA256, for this purpose only: the same material used elsewhere gives an unrelated key.
    ///
    /// # Errors
    /// [`MfaError::Seal`] if HKDF refuses the length (32 bytes is far below its limit of 8160).
    pub fn new(key_material: &[u8]) -> Result<Self, MfaError> {
        Sealer::derive(
            key_material,
            b"securecrud-mfa",
            b"totp secret encryption v1",
        )
        .map(Self)
        .map_err(|_| MfaError::Seal)
    }

    /// `secret` encrypted under a fresh random nonce and bound to `context` (see [`Sealer::seal`]).
    ///
    /// # Errors
    /// [`MfaError::Seal`] if the cipher refuses (only for messages of gigabytes).
    pub fn seal(&self, secret: &TotpSecret, context: &[u8]) -> Result<String, MfaError> {
        self.0
            .seal(secret.0.expose_secret(), context)
            .map_err(|_| MfaError::Seal)
    }

    /// The secret of a [`SecretSealer::seal`] text sealed under this key for `context`.
    ///
    /// # Errors
    /// [`MfaError::Unseal`] for anything else.
    pub fn open(&self, sealed: &str, context: &[u8]) -> Result<TotpSecret, MfaError> {
        let secret = self.0.open(sealed, context).map_err(|_| MfaError::Unseal)?;
        Ok(TotpSecret(secret.to_vec().into()))
    }
}

/// `count` new recovery codes, each `xxxx-xxxx-xxxx-xxxx` (80 random bits).
pub fn generate_recovery_codes(count: usize) -> Vec<String> {
    let mut rng = rand::rng();
    (0..count)
        .map(|_| {
            let mut bytes = [0u8; RECOVERY_CODE_CHARS];
            rng.fill_bytes(&mut bytes);
            let chars: Vec<char> = bytes
                .iter()
                .map(|b| char::from(RECOVERY_ALPHABET[usize::from(b & 31)]))
                .collect();
            chars
                .chunks(4)
                .map(|group| group.iter().collect::<String>())
                .collect::<Vec<_>>()
                .join("-")
        })
        .collect()
}

/// A recovery code as typed (any case, with or without dashes and spaces) in its stored form, or `None` when
/// it cannot be one.
pub fn normalize_recovery_code(input: &str) -> Option<String> {
    let code: String = input
        .chars()
        .filter(|c| !matches!(c, '-' | ' '))
        .map(|c| c.to_ascii_lowercase())
        .collect();
    (code.len() == RECOVERY_CODE_CHARS && code.bytes().all(|b| RECOVERY_ALPHABET.contains(&b)))
        .then_some(code)
}

/// The stored form of a normalised recovery code: its SHA-256 (the codes carry 80 random bits, so a
/// fast digest cannot be reversed by guessing).
pub fn hash_recovery_code(normalized: &str) -> String {
    crate::hash_token(normalized)
}

/// Whether `input` is shaped like a TOTP code (6 digits, spaces ignored) rather than a recovery code.
pub fn looks_like_totp_code(input: &str) -> Option<String> {
    let digits: String = input.chars().filter(|c| *c != ' ').collect();
    (digits.len() == TOTP_DIGITS && digits.bytes().all(|b| b.is_ascii_digit())).then_some(digits)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 appendix B's SHA-1 secret and vectors (8 digits there; the last 6 are the 6-digit code).
    #[test]
    fn codes_follow_the_rfc_6238_test_vectors() {
        let secret = TotpSecret(b"12345678901234567890".to_vec().into());
        for (time, eight) in [
            (59, "94287082"),
            (1_111_111_109, "07081804"),
            (1_234_567_890, "89005924"),
            (2_000_000_000, "69279037"),
        ] {
            assert_eq!(secret.code_at(time), eight[2..]);
            assert_eq!(secret.matching_step(&eight[2..], time), Some(time / 30));
        }
    }

    #[test]
    fn a_code_matches_one_step_either_side_and_no_further() {
        let secret = TotpSecret::generate();
        let now = 1_800_000_000;
        let code = secret.code_at(now);
        assert_eq!(secret.matching_step(&code, now + 30), Some(now / 30));
        assert_eq!(secret.matching_step(&code, now - 30), Some(now / 30));
        assert_eq!(secret.matching_step(&code, now + 90), None);
        assert_eq!(secret.matching_step("12345", now), None);
        assert_eq!(secret.matching_step("abcdef", now), None);
    }

    #[test]
    fn a_sealed_secret_opens_only_with_its_key_and_context() {
        let sealer = SecretSealer::new(b"key material").unwrap();
        let secret = TotpSecret::generate();
        let sealed = sealer.seal(&secret, b"user-1").unwrap();
        assert!(!sealed.contains(&secret.base32()));
        assert_eq!(
            sealer.open(&sealed, b"user-1").unwrap().base32(),
            secret.base32()
        );
        assert!(sealer.open(&sealed, b"user-2").is_err());
        assert!(
            SecretSealer::new(b"other material")
                .unwrap()
                .open(&sealed, b"user-1")
                .is_err()
        );
        assert_ne!(
            sealer.seal(&secret, b"user-1").unwrap(),
            sealed,
            "a fresh nonce each time"
        );
        let mut altered = sealed.clone().into_bytes();
        let last = altered.len() - 1;
        altered[last] = if altered[last] == b'A' { b'B' } else { b'A' };
        assert!(
            sealer
                .open(&String::from_utf8(altered).unwrap(), b"user-1")
                .is_err()
        );
    }

    #[test]
    fn recovery_codes_are_random_and_normalise() {
        let codes = generate_recovery_codes(10);
        assert_eq!(codes.len(), 10);
        let unique: std::collections::HashSet<_> = codes.iter().collect();
        assert_eq!(unique.len(), 10);
        for code in &codes {
            assert_eq!(code.len(), 19);
            let normalized = normalize_recovery_code(code).unwrap();
            assert_eq!(
                normalize_recovery_code(&code.to_uppercase().replace('-', " ")),
                Some(normalized)
            );
        }
        assert_eq!(normalize_recovery_code("123456"), None);
        assert_eq!(looks_like_totp_code("123 456").as_deref(), Some("123456"));
        assert_eq!(looks_like_totp_code(&codes[0]), None);
    }

    #[test]
    fn the_uri_names_issuer_account_and_secret_and_debug_hides_the_secret() {
        let secret = TotpSecret::generate();
        let uri = secret.otpauth_uri("SecureCRUD", "ada_l").unwrap();
        assert!(uri.starts_with("otpauth://totp/SecureCRUD:ada_l?"), "{uri}");
        assert!(
            uri.contains(&format!("secret={}", secret.base32())),
            "{uri}"
        );
        assert_eq!(
            TotpSecret::from_base32(&secret.base32()).unwrap().base32(),
            secret.base32()
        );
        assert!(!format!("{secret:?}").contains(&secret.base32()));
    }
}
