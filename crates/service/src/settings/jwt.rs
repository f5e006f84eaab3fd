//! Access and refresh tokens: `JWT_*`, `ACCESS_TOKEN_TTL_SECS`, `REFRESH_TOKEN_TTL_SECS`,
//! `REFRESH_GRACE_SECS`, `SESSION_MAX_LIFETIME_SECS`.

use std::path::PathBuf;

use secrecy::{ExposeSecret, SecretBox, SecretSlice};
use securecrud_auth::{KeyAlgorithm, SigningKey};
use time::Duration;

use super::{ConfigError, Env, weak_secret};

/// Access-token settings.
#[derive(Debug)]
pub struct JwtSettings {
    /// `JWT_ALGORITHM`: `HS256` (the development default), `EdDSA` (the production default) or `ES256`.
    pub algorithm: KeyAlgorithm,
    /// `JWT_PRIVATE_KEY_FILE`: the PEM private key that signs tokens with `EdDSA` or `ES256`. Checked here
    /// at start; read again by the api when it loads or reloads its keys. `None` in development means an
    /// in-memory key made at start.
    pub private_key_file: Option<PathBuf>,
    /// `JWT_KEY_RETIRE_SECS`: how long a key made old by a rotation stays published and accepted.
    pub key_retire: Duration,
    /// True when no `JWT_SECRET` was set in development and a random one was made (tokens die on restart).
    pub secret_generated: bool,
    /// With HS256, the key that signs and verifies tokens. With a key pair, only the source of the refresh
    /// successor key (see `successor_keys`); required in production either way.
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
    /// Reads the token settings; `JWT_ISSUER` defaults to `public_base_url` (RFC 8414: the issuer is the
    /// server's URL).
    pub(crate) fn from_env(env: &Env<'_>, public_base_url: &str) -> Self {
        let production = env.production();
        let (algorithm, known) = algorithm(env, production);
        let private_key_file = env.get("JWT_PRIVATE_KEY_FILE").map(PathBuf::from);
        // The checks that depend on the algorithm are left out when it is unknown: they would only report
        // consequences of the stand-in.
        if known {
            check_key_file(env, production, algorithm, private_key_file.as_deref());
        }
        // With a key pair the secret signs nothing: it only keys refresh-token rotation, and is shared by
        // the api's instances alone (never by the services that verify tokens). It is never derived from
        // the signing key, which rotates and may leak.
        let secret = env.get("JWT_SECRET");
        if known {
            check_secret(env, production, algorithm, secret);
        }
        let (secret, secret_generated) = match secret {
            Some(secret) => (secret.as_bytes().to_vec(), false),
            None => (securecrud_auth::generate_token().into_bytes(), true),
        };
        let previous = previous_secrets(env, production);
        let access_ttl = env.seconds("ACCESS_TOKEN_TTL_SECS", 900);
        let key_retire = env.seconds("JWT_KEY_RETIRE_SECS", 86_400);
        if known && production && algorithm.is_asymmetric() && key_retire < access_ttl {
            env.report(ConfigError::new(
                "JWT_KEY_RETIRE_SECS",
                "must be at least ACCESS_TOKEN_TTL_SECS in production (tokens signed just before a \
                 rotation must outlive it)",
            ));
        }
        Self {
            algorithm,
            private_key_file,
            key_retire,
            secret_generated,
            secret: SecretBox::new(secret.into_boxed_slice()),
            previous_secrets: previous
                .into_iter()
                .map(|s| SecretBox::new(s.as_bytes().to_vec().into_boxed_slice()))
                .collect(),
            issuer: env.get("JWT_ISSUER").unwrap_or(public_base_url).to_owned(),
            audience: env
                .get("JWT_AUDIENCE")
                .unwrap_or("securecrud-api")
                .to_owned(),
            access_ttl,
            refresh_ttl: env.seconds("REFRESH_TOKEN_TTL_SECS", 604_800),
            refresh_grace: Duration::seconds(env.parse::<u32>("REFRESH_GRACE_SECS", 10).into()),
            session_max_lifetime: env.seconds("SESSION_MAX_LIFETIME_SECS", 2_592_000),
        }
    }
}

/// `JWT_ALGORITHM` (EdDSA in production, HS256 in development by default), and whether it was understood
/// (if not, HS256 stands in and the error is reported).
fn algorithm(env: &Env<'_>, production: bool) -> (KeyAlgorithm, bool) {
    match env.get("JWT_ALGORITHM") {
        None if production => (KeyAlgorithm::EdDsa, true),
        None => (KeyAlgorithm::Hs256, true),
        Some(raw) => match raw.parse() {
            Ok(algorithm) => (algorithm, true),
            Err(_) => {
                env.report(ConfigError::new(
                    "JWT_ALGORITHM",
                    "must be HS256, EdDSA or ES256",
                ));
                (KeyAlgorithm::Hs256, false)
            }
        },
    }
}

/// `JWT_PRIVATE_KEY_FILE`: only with a key pair, required with one in production, a key of `algorithm`
/// that others cannot read.
fn check_key_file(
    env: &Env<'_>,
    production: bool,
    algorithm: KeyAlgorithm,
    private_key_file: Option<&std::path::Path>,
) {
    match (algorithm.is_asymmetric(), private_key_file) {
        (false, Some(_)) => env.report(ConfigError::new(
            "JWT_PRIVATE_KEY_FILE",
            "is only used with JWT_ALGORITHM=EdDSA or ES256",
        )),
        (true, Some(path)) => {
            env.check(check_private_key(algorithm, path));
            if production && let Some(why) = readable_by_others(path) {
                env.report(ConfigError::new("JWT_PRIVATE_KEY_FILE", why));
            }
        }
        (true, None) if production => env.report(ConfigError::new(
            "JWT_PRIVATE_KEY_FILE",
            format!(
                "is required in production with JWT_ALGORITHM={algorithm} (the production default): \
                 make one with `api keys generate`, or set JWT_ALGORITHM=HS256 with a JWT_SECRET \
                 for a single-service deployment"
            ),
        )),
        _ => {}
    }
}

/// `JWT_SECRET`: required and strong in production, whatever the algorithm.
fn check_secret(env: &Env<'_>, production: bool, algorithm: KeyAlgorithm, secret: Option<&str>) {
    match secret {
        Some(secret) if production => {
            if let Some(why) = weak_secret(secret) {
                env.report(ConfigError::new("JWT_SECRET", why));
            }
        }
        None if production && algorithm.is_asymmetric() => env.report(ConfigError::new(
            "JWT_SECRET",
            "is required in production (at least 32 random bytes): with a key pair it signs no \
             token, it keys refresh-token rotation and stays with the api's instances",
        )),
        None if production => env.report(ConfigError::new(
            "JWT_SECRET",
            "is required in production with JWT_ALGORITHM=HS256 (at least 32 random bytes)",
        )),
        _ => {}
    }
}

/// `JWT_PREVIOUS_SECRETS`, comma-separated; each strong in production.
fn previous_secrets<'e>(env: &Env<'e>, production: bool) -> Vec<&'e str> {
    let previous: Vec<&str> = env
        .get("JWT_PREVIOUS_SECRETS")
        .map(|raw| {
            raw.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .collect()
        })
        .unwrap_or_default();
    if production && let Some(why) = previous.iter().find_map(|old| weak_secret(old)) {
        env.report(ConfigError::new(
            "JWT_PREVIOUS_SECRETS",
            format!("an entry {why}"),
        ));
    }
    previous
}

/// Why a private key file is open to other users (a mode that lets them read or write it), if it is.
fn readable_by_others(path: &std::path::Path) -> Option<String> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path).ok()?.permissions().mode() & 0o777;
        (mode & 0o077 != 0).then(|| {
            format!(
                "{} may be read or written by other users (mode {mode:o}): `chmod 600` it (`api keys \
                 generate` and `rotate` write 0600)",
                path.display()
            )
        })
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        None
    }
}

/// Reads and parses the private key file, so that a missing or wrong file stops the api at start naming
/// the variable.
fn check_private_key(algorithm: KeyAlgorithm, path: &std::path::Path) -> Result<(), ConfigError> {
    let pem =
        read_private_key(path).map_err(|why| ConfigError::new("JWT_PRIVATE_KEY_FILE", why))?;
    SigningKey::from_pem(algorithm, pem.expose_secret()).map_err(|err| {
        ConfigError::new("JWT_PRIVATE_KEY_FILE", format!("{}: {err}", path.display()))
    })?;
    Ok(())
}

/// The PEM text of a private key file.
///
/// # Errors
/// A message naming the file when it cannot be read.
pub fn read_private_key(path: &std::path::Path) -> Result<secrecy::SecretString, String> {
    std::fs::read_to_string(path)
        .map(secrecy::SecretString::from)
        .map_err(|err| format!("{} cannot be read: {err}", path.display()))
}
