//! Token-signing keys at run time (EdDSA / ES256; HS256 needs none of this).
//!
//! Each instance signs with the private key in its `JWT_PRIVATE_KEY_FILE` (in development without one, a key
//! made at start). Its public half is installed in the shared `signing_keys` table: a key new to the table
//! becomes current and retires the previous current key, which every instance then keeps accepting (and
//! publishing in the JWKS) for `JWT_KEY_RETIRE_SECS`. So `api keys rotate` (a new key file plus its
//! installation) and deploying a new key file to the instances are the same operation.
//!
//! Every [`KEYRING_REFRESH`] each instance re-reads its key file (taking over a new key it finds there) and
//! the table (accepting keys other instances installed). A token signed with a key not known yet triggers
//! an early refresh, at most once per [`UNKNOWN_KEY_REFRESH`].

use std::{
    path::PathBuf,
    sync::{Arc, Mutex, PoisonError},
    time::Instant,
};

use anyhow::Context;
use securecrud_auth::{KeyAlgorithm, PublicJwk, SigningKey, VerifyingKey};
use securecrud_persistence::StoredSigningKey;
use time::{Duration, OffsetDateTime};

use crate::{ServiceError, Services, settings::read_private_key};

/// How often an instance looks for a new key in its file and in the table.
pub const KEYRING_REFRESH: std::time::Duration = std::time::Duration::from_secs(10);
/// The least time between two refreshes caused by tokens with an unknown `kid`.
const UNKNOWN_KEY_REFRESH: std::time::Duration = std::time::Duration::from_secs(1);
/// The longest a JWKS may be cached: bounded further by the next retirement.
const JWKS_MAX_AGE_SECS: i64 = 300;

/// Where this instance's signing key comes from.
#[derive(Debug)]
pub(crate) struct KeySource {
    pub(crate) algorithm: KeyAlgorithm,
    pub(crate) file: Option<PathBuf>,
    pub(crate) retire: Duration,
    /// When the table was last read because of an unknown `kid`.
    last_unknown_refresh: Mutex<Option<Instant>>,
    /// Refreshes run one at a time, so an older key set is never applied after a newer one.
    refreshing: tokio::sync::Mutex<()>,
}

impl KeySource {
    pub(crate) fn new(algorithm: KeyAlgorithm, file: Option<PathBuf>, retire: Duration) -> Self {
        Self {
            algorithm,
            file,
            retire,
            last_unknown_refresh: Mutex::new(None),
            refreshing: tokio::sync::Mutex::new(()),
        }
    }

    /// The signing key at start: from the file, or (development without one) a new in-memory key.
    pub(crate) fn initial_key(&self) -> anyhow::Result<SigningKey> {
        match &self.file {
            Some(path) => self.read_file(path),
            None => {
                log::warn!(
                    "JWT_PRIVATE_KEY_FILE is not set: signing with a new {} key made at start; tokens \
                     stop verifying when this process ends (make a key file with `api keys generate`)",
                    self.algorithm
                );
                Ok(SigningKey::generate(self.algorithm)?.0)
            }
        }
    }

    fn read_file(&self, path: &std::path::Path) -> anyhow::Result<SigningKey> {
        use secrecy::ExposeSecret;
        let pem = read_private_key(path).map_err(anyhow::Error::msg)?;
        SigningKey::from_pem(self.algorithm, pem.expose_secret())
            .with_context(|| format!("JWT_PRIVATE_KEY_FILE {}", path.display()))
    }

    /// Whether an unknown `kid` may cause a refresh now (and if so, records that it does).
    fn may_refresh_for_unknown_key(&self) -> bool {
        let mut last = self
            .last_unknown_refresh
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let due = last.is_none_or(|at| at.elapsed() >= UNKNOWN_KEY_REFRESH);
        if due {
            *last = Some(Instant::now());
        }
        due
    }
}

impl Services {
    /// Loads every key still accepted from the table, takes over a new key found in `JWT_PRIVATE_KEY_FILE`
    /// (it becomes current), and installs this instance's own key if the table does not know it yet (a
    /// server's first start with it). Nothing to do with HS256. Refreshes run one at a time.
    ///
    /// The table is applied first, so a retirement or revocation takes effect here even when the key file
    /// cannot be read or holds a retired key; a new key is accepted before anything is signed with it.
    ///
    /// # Errors
    /// When the database fails, the key file cannot be read, or this instance's key has passed its end
    /// (retired longer than `JWT_KEY_RETIRE_SECS` ago, or revoked): then the tokens it signs are refused
    /// everywhere, and deploying the current key file is the cure.
    ///
    /// Returns whether this instance signs with key pairs at all (false with HS256: nothing to refresh).
    pub async fn refresh_keys(&self) -> Result<bool, ServiceError> {
        let Some(source) = &self.inner.keys else {
            return Ok(false);
        };
        let _one_at_a_time = source.refreshing.lock().await;
        let jwt = &self.inner.jwt;
        let mut stored = self.db.signing_keys().await?;
        let mut signing = jwt.signing_key();
        jwt.verifier()
            .set_keys(accepted_keys(source, &stored, &signing, self.db.now())?);

        let mut file_error = None;
        if let Some(path) = &source.file {
            match source.read_file(path) {
                Ok(on_disk) if on_disk.kid() != signing.kid() => {
                    let row = self.install(&on_disk, &stored).await?;
                    stored = self.db.signing_keys().await?;
                    if row.retired_at.is_none() {
                        let next = Arc::new(on_disk);
                        // Accepted before anything is signed with it.
                        jwt.verifier().set_keys(accepted_keys(
                            source,
                            &stored,
                            &next,
                            self.db.now(),
                        )?);
                        log::info!(kid = next.kid(); "signing with the new key from JWT_PRIVATE_KEY_FILE");
                        jwt.set_signing_key_shared(Arc::clone(&next));
                        signing = next;
                    } else {
                        log::warn!(
                            kid = on_disk.kid();
                            "JWT_PRIVATE_KEY_FILE holds a key a rotation already retired: not switching to it"
                        );
                    }
                }
                Ok(_) => {}
                Err(err) => file_error = Some(err),
            }
        }
        if !stored.iter().any(|row| row.kid == signing.kid()) {
            self.install(&signing, &stored).await?;
            stored = self.db.signing_keys().await?;
        }
        let accepted = accepted_keys(source, &stored, &signing, self.db.now())?;
        let own_accepted = accepted.iter().any(|key| key.kid() == signing.kid());
        jwt.verifier().set_keys(accepted);
        if let Some(err) = file_error {
            return Err(ServiceError::Unexpected(err));
        }
        if !own_accepted {
            return Err(ServiceError::Unexpected(anyhow::anyhow!(
                "the signing key {} (JWT_PRIVATE_KEY_FILE) was retired or revoked and is no longer \
                 accepted: every token signed with it is refused; deploy the current key file",
                signing.kid()
            )));
        }
        Ok(true)
    }

    /// Installs `key` in the table unless `stored` (the table as last read) shows it already.
    async fn install(
        &self,
        key: &SigningKey,
        stored: &[StoredSigningKey],
    ) -> Result<StoredSigningKey, ServiceError> {
        if let Some(known) = stored.iter().find(|row| row.kid == key.kid()) {
            return Ok(known.clone());
        }
        let jwk = key.public_jwk().context("a key pair has a public key")?;
        let json = serde_json::to_string(jwk).context("serialising a JWK")?;
        Ok(self
            .db
            .install_signing_key(key.kid(), key.alg().as_str(), &json)
            .await?)
    }

    /// After a token with an unknown `kid`: reads the table again unless that was done less than a second
    /// ago. Returns whether the key is known now.
    pub(crate) async fn refresh_for_unknown_key(&self, token: &str) -> bool {
        let Some(source) = &self.inner.keys else {
            return false;
        };
        let Some(kid) = securecrud_auth::token_kid(token) else {
            return false;
        };
        if !source.may_refresh_for_unknown_key() {
            return false;
        }
        if let Err(err) = self.refresh_keys().await {
            log::warn!("refreshing the signing keys failed: {err}");
            return false;
        }
        self.inner.jwt.verifier().knows(&kid)
    }

    /// The public keys that verify access tokens (RFC 7517), and how long the set may be cached: at most
    /// five minutes, and never past the moment a published key retires. Empty with HS256.
    pub fn jwks(&self) -> (Vec<PublicJwk>, u32) {
        let keys = self.inner.jwt.verifier().keys();
        let at = self.db.now();
        let until_retirement = keys
            .iter()
            .filter_map(VerifyingKey::not_after)
            .filter(|end| *end > at)
            .map(|end| (end - at).whole_seconds())
            .min()
            .unwrap_or(JWKS_MAX_AGE_SECS);
        let max_age = until_retirement.clamp(0, JWKS_MAX_AGE_SECS);
        let jwks = keys
            .iter()
            .filter(|key| key.not_after().is_none_or(|end| end > at))
            .filter_map(|key| key.public_jwk().cloned())
            .collect();
        (jwks, u32::try_from(max_age).unwrap_or(0))
    }
}

/// The keys to accept: every stored key not past its end, and this instance's own signing key, with its
/// end as the table has it (none while current or unknown to the table). Current keys first: a token
/// without `kid` is tried with the first key only.
fn accepted_keys(
    source: &KeySource,
    stored: &[StoredSigningKey],
    signing: &SigningKey,
    at: OffsetDateTime,
) -> Result<Vec<VerifyingKey>, ServiceError> {
    let end = |row: &StoredSigningKey| key_end(row, source.retire);
    let own_end = stored
        .iter()
        .find(|row| row.kid == signing.kid())
        .and_then(end);
    let mut accepted = Vec::with_capacity(stored.len() + 1);
    if own_end.is_none_or(|end| end > at) {
        let own = signing.verifying_key().context("own public key")?;
        accepted.push(own.accepted_until(own_end));
    }
    for row in stored.iter().filter(|row| row.kid != signing.kid()) {
        let not_after = end(row);
        if not_after.is_some_and(|end| end <= at) {
            continue;
        }
        match parse_stored(row) {
            Ok(key) => accepted.push(key.accepted_until(not_after)),
            Err(err) => {
                log::warn!(kid = row.kid.as_str(); "ignoring a stored signing key: {err:#}")
            }
        }
    }
    accepted.sort_by_key(|key| key.not_after().is_some());
    Ok(accepted)
}

/// When a stored key stops being accepted: its retirement plus `retire` (this instance's
/// `JWT_KEY_RETIRE_SECS`), or its revocation, whichever comes first; `None` while it is current and not
/// revoked. A revocation is an absolute time in the shared table, so every instance applies the same one.
fn key_end(row: &StoredSigningKey, retire: Duration) -> Option<OffsetDateTime> {
    let retired = row.retired_at.map(|retired| retired + retire);
    match (retired, row.revoked_at) {
        (Some(retired), Some(revoked)) => Some(retired.min(revoked)),
        (retired, revoked) => retired.or(revoked),
    }
}

/// A stored key as a verifying key.
fn parse_stored(row: &StoredSigningKey) -> anyhow::Result<VerifyingKey> {
    let jwk: PublicJwk = serde_json::from_str(&row.public_jwk).context("the stored JWK")?;
    anyhow::ensure!(jwk.kid == row.kid, "the JWK's kid differs from its row's");
    Ok(VerifyingKey::from_jwk(&jwk)?)
}

/// Generates a key of `algorithm`, writes it to `path` (mode 0600, written beside it first and renamed
/// into place, so a reader never sees half a key), and returns it.
///
/// # Errors
/// When the file cannot be written; with `replace` false, also when it exists.
pub fn write_new_key(
    algorithm: KeyAlgorithm,
    path: &std::path::Path,
    replace: bool,
) -> anyhow::Result<SigningKey> {
    use secrecy::ExposeSecret;
    use std::io::Write;
    if !replace && path.exists() {
        anyhow::bail!(
            "{} exists already: not overwriting a key (use `api keys rotate` to replace it)",
            path.display()
        );
    }
    let (key, pem) = SigningKey::generate(algorithm)?;
    let dir = path
        .parent()
        .filter(|dir| !dir.as_os_str().is_empty())
        .unwrap_or_else(|| std::path::Path::new("."));
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let temp = dir.join(format!(
        ".{}.{}.tmp",
        path.file_name()
            .map(|name| name.to_string_lossy().into_owned())
            .unwrap_or_default(),
        std::process::id()
    ));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let written = options
        .open(&temp)
        .and_then(|mut file| {
            file.write_all(pem.expose_secret().as_bytes())?;
            file.sync_all()
        })
        .and_then(|()| {
            if replace {
                std::fs::rename(&temp, path)
            } else {
                // A link fails if the name exists, even if it appeared since the check above.
                std::fs::hard_link(&temp, path).and_then(|()| std::fs::remove_file(&temp))
            }
        })
        // The directory entry itself, so a crash cannot bring the old key back after the database
        // was told about the new one.
        .and_then(|()| std::fs::File::open(dir)?.sync_all());
    if let Err(err) = written {
        let _ = std::fs::remove_file(&temp);
        return Err(err).with_context(|| format!("writing {}", path.display()));
    }
    Ok(key)
}

/// A key's state for `api keys list`.
#[derive(Debug, Clone)]
pub struct KeyListing {
    pub kid: String,
    pub alg: String,
    pub created_at: OffsetDateTime,
    pub retired_at: Option<OffsetDateTime>,
    /// When it was revoked (it leaked), if it was.
    pub revoked_at: Option<OffsetDateTime>,
    /// When it stops being accepted (retired or revoked keys only), by this process's retirement window.
    pub accepted_until: Option<OffsetDateTime>,
}

impl Services {
    /// `JWT_KEY_RETIRE_SECS` (zero with HS256, which has no key pairs).
    fn key_retire(&self) -> Duration {
        self.inner
            .keys
            .as_ref()
            .map_or(Duration::ZERO, |source| source.retire)
    }

    /// Revokes `kid` as of now, in the shared table (every instance refuses it from then on, at its next
    /// look at the table, whatever its retirement window), and returns the row as stored afterwards.
    async fn revoke_now(&self, kid: &str) -> Result<StoredSigningKey, ServiceError> {
        self.db
            .revoke_signing_key(kid, self.db.now())
            .await?
            .ok_or_else(|| ServiceError::Unexpected(anyhow::anyhow!("no key {kid} is known")))
    }

    /// Every stored key pair's public half, the newest first, with when each stops being accepted.
    ///
    /// # Errors
    /// When the database fails.
    pub async fn list_keys(&self) -> Result<Vec<KeyListing>, ServiceError> {
        let retire = self.key_retire();
        Ok(self
            .db
            .signing_keys()
            .await?
            .into_iter()
            .map(|row| KeyListing {
                accepted_until: key_end(&row, retire),
                kid: row.kid,
                alg: row.alg,
                created_at: row.created_at,
                retired_at: row.retired_at,
                revoked_at: row.revoked_at,
            })
            .collect())
    }

    /// Rotation: a new key of the configured algorithm is written to `JWT_PRIVATE_KEY_FILE` and installed
    /// as current; the previous key stays accepted for `JWT_KEY_RETIRE_SECS`. Running instances take the
    /// new key from the file within [`KEYRING_REFRESH`] (when they share it), and accept it at once.
    ///
    /// With `revoke_previous` (a leaked key), the previous key stops being accepted at once instead: here
    /// immediately, on the other instances at their next look at the table (within [`KEYRING_REFRESH`]);
    /// every token it signed is refused and its holders refresh.
    ///
    /// # Errors
    /// With HS256 or without a key file, or when the file or the database cannot be written.
    pub async fn rotate_key(
        &self,
        revoke_previous: bool,
    ) -> anyhow::Result<(String, Option<String>)> {
        let source = self
            .inner
            .keys
            .as_ref()
            .context("rotation needs JWT_ALGORITHM=EdDSA or ES256")?;
        let path = source
            .file
            .as_ref()
            .context("rotation needs JWT_PRIVATE_KEY_FILE (where the new key is written)")?;
        let previous = self.inner.jwt.signing_key().kid().to_owned();
        let key = write_new_key(source.algorithm, path, true)?;
        let kid = key.kid().to_owned();
        self.install(&key, &[]).await?;
        if revoke_previous {
            self.revoke_now(&previous).await?;
        }
        self.refresh_keys().await?;
        Ok((kid, Some(previous).filter(|p| !p.is_empty())))
    }

    /// Stops accepting retired keys at once (leaked keys): here immediately, on the other instances at their
    /// next look at the table (within [`KEYRING_REFRESH`]). The current key cannot be revoked this way:
    /// rotate first (`rotate_key(true)` does both). Revoking a key twice is harmless.
    ///
    /// # Errors
    /// For an unknown `kid` or the current key (nothing is revoked then), or when the database fails.
    pub async fn revoke_keys(&self, kids: &[String]) -> anyhow::Result<()> {
        let stored = self.db.signing_keys().await?;
        for kid in kids {
            match stored.iter().find(|row| &row.kid == kid) {
                None => anyhow::bail!("no key {kid} is known: nothing revoked"),
                Some(row) if row.retired_at.is_none() => anyhow::bail!(
                    "{kid} is the current key: rotate first (`api keys rotate --revoke-previous`); nothing \
                     revoked"
                ),
                Some(_) => {}
            }
        }
        for kid in kids {
            self.revoke_now(kid).await?;
        }
        Ok(())
    }
}
