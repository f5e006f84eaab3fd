//! Two-factor authentication: `MFA_ENCRYPTION_KEY`, `MFA_ISSUER`.

use secrecy::{SecretBox, SecretSlice};

use super::{ConfigError, Env, weak_secret};

/// What seals TOTP secrets in development when neither `MFA_ENCRYPTION_KEY` nor `JWT_SECRET` is set: a fixed,
/// public value, so that enrolments survive a restart of `make run`. Production refuses to start without
/// `MFA_ENCRYPTION_KEY`.
const DEVELOPMENT_KEY: &[u8] = b"securecrud development only: not a secret";

/// Two-factor settings.
#[derive(Debug)]
pub struct MfaSettings {
    /// The key material TOTP secrets are sealed with (a key is derived from it with HKDF): `MFA_ENCRYPTION_KEY`;
    /// in development `JWT_SECRET` (or a fixed development value) when unset.
    pub key_material: SecretSlice<u8>,
    /// True when the development fallback is in use (logged at start).
    pub development_key: bool,
    /// `MFA_ISSUER` (default `SecureCRUD`): the name authenticator apps show beside the account.
    pub issuer: String,
    /// `MFA_MAX_FAILURES` (default 100): wrong second factors in a row, per account, after which codes are
    /// refused until an admin resets the account's two-factor authentication. Nothing done with the password
    /// or the mailbox (a reset, a right password) clears the count; only a second factor that verifies.
    pub max_failures: u32,
}

impl MfaSettings {
    pub(crate) fn from_env(env: &Env<'_>) -> Self {
        let (material, development_key) = match env.get("MFA_ENCRYPTION_KEY") {
            Some(key) => {
                if env.production() {
                    if let Some(why) = weak_secret(key) {
                        env.report(ConfigError::new("MFA_ENCRYPTION_KEY", why));
                    } else if env.get("JWT_SECRET") == Some(key) {
                        env.report(ConfigError::new(
                            "MFA_ENCRYPTION_KEY",
                            "must differ from JWT_SECRET in production (two secrets, two jobs: a leak of \
                             one must not open the other)",
                        ));
                    }
                }
                (key.as_bytes().to_vec(), false)
            }
            None if env.production() => {
                env.report(ConfigError::new(
                    "MFA_ENCRYPTION_KEY",
                    "is required in production (at least 32 random bytes): it encrypts the TOTP secrets \
                     of two-factor authentication and the mail waiting to be sent; keep it with the api's \
                     instances and never change it without re-enrolling",
                ));
                (DEVELOPMENT_KEY.to_vec(), true)
            }
            None => match env.get("JWT_SECRET") {
                Some(secret) => (secret.as_bytes().to_vec(), false),
                None => (DEVELOPMENT_KEY.to_vec(), true),
            },
        };
        let issuer = env.get("MFA_ISSUER").unwrap_or("SecureCRUD").to_owned();
        if issuer.contains(':') || issuer.chars().count() > 64 {
            env.report(ConfigError::new(
                "MFA_ISSUER",
                "must be at most 64 characters without ':' (it goes into otpauth:// URIs)",
            ));
        }
        Self {
            key_material: SecretBox::new(material.into_boxed_slice()),
            development_key,
            issuer,
            max_failures: env.positive("MFA_MAX_FAILURES", 100),
        }
    }
}
