//! Access and refresh tokens: `JWT_*`, `ACCESS_TOKEN_TTL_SECS`, `REFRESH_TOKEN_TTL_SECS`,
//! `REFRESH_GRACE_SECS`, `SESSION_MAX_LIFETIME_SECS`.

use secrecy::{SecretBox, SecretSlice};
use time::Duration;

use super::{ConfigError, Env, MIN_JWT_SECRET_BYTES};

/// Access-token settings.
#[derive(Debug)]
pub struct JwtSettings {
    /// True when no `JWT_SECRET` was set in development and a random one was made (tokens die on restart).
    pub secret_generated: bool,
    pub secret: SecretSlice<u8>,
    /// Old secrets still accepted for verification (by `kid`) while their tokens expire.
    pub previous_secrets: Vec<SecretSlice<u8>>,
    pub issuer: String,
    pub audience: String,
    pub access_ttl: Duration,
    pub refresh_ttl: Duration,
    /// How long a just-rotated refresh token may be presented again and get the same successor.
    pub refresh_grace: Duration,
    /// `SESSION_MAX_LIFETIME_SECS`: refreshing slides a session's expiry, never past its start plus this.
    pub session_max_lifetime: Duration,
}

impl JwtSettings {
    pub(crate) fn from_env(env: &Env<'_>) -> Result<Self, ConfigError> {
        let production = env.production();
        let (secret, secret_generated) = match env.get("JWT_SECRET") {
            Some(secret) if secret.len() >= MIN_JWT_SECRET_BYTES || !production => {
                (secret.as_bytes().to_vec(), false)
            }
            Some(_) => {
                return Err(ConfigError::new(
                    "JWT_SECRET",
                    format!("must be at least {MIN_JWT_SECRET_BYTES} bytes in production"),
                ));
            }
            None if production => {
                return Err(ConfigError::new(
                    "JWT_SECRET",
                    "is required in production (at least 32 random bytes)",
                ));
            }
            None => (securecrud_auth::generate_token().into_bytes(), true),
        };
        let previous: Vec<&str> = env
            .get("JWT_PREVIOUS_SECRETS")
            .map(|raw| {
                raw.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .collect()
            })
            .unwrap_or_default();
        if production && previous.iter().any(|s| s.len() < MIN_JWT_SECRET_BYTES) {
            return Err(ConfigError::new(
                "JWT_PREVIOUS_SECRETS",
                format!("each secret must be at least {MIN_JWT_SECRET_BYTES} bytes in production"),
            ));
        }
        Ok(Self {
            secret_generated,
            secret: SecretBox::new(secret.into_boxed_slice()),
            previous_secrets: previous
                .into_iter()
                .map(|s| SecretBox::new(s.as_bytes().to_vec().into_boxed_slice()))
                .collect(),
            issuer: env.get("JWT_ISSUER").unwrap_or("securecrud").to_owned(),
            audience: env
                .get("JWT_AUDIENCE")
                .unwrap_or("securecrud-api")
                .to_owned(),
            access_ttl: env.seconds("ACCESS_TOKEN_TTL_SECS", 900)?,
            refresh_ttl: env.seconds("REFRESH_TOKEN_TTL_SECS", 604_800)?,
            refresh_grace: Duration::seconds(env.parse::<u32>("REFRESH_GRACE_SECS", 10)?.into()),
            session_max_lifetime: env.seconds("SESSION_MAX_LIFETIME_SECS", 2_592_000)?,
        })
    }
}
