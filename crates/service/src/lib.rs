//! SecureCRUD service: the use cases, over domain + auth + persistence. No HTTP.
//!
//! Job: [`Settings`] (typed configuration read once from the environment) and [`Services`], whose methods are
//! the use cases (register, login, authenticate, refresh, logout, account changes, health). The api's HTTP layer, its CLI and the seed tool all
//! call these, so every rule is written once.
//!
//! Error policy: every use case returns [`ServiceError`], whose variants say what went wrong in terms a client
//! can act on (validation, conflict, credentials, token, availability). `Unexpected` carries an `anyhow` chain
//! for the logs and is never shown to a client. bcrypt runs on tokio's blocking pool behind a semaphore
//! ([`passwords`]), never on the async worker threads.

mod account;
mod admin;
mod audit;
mod email;
mod error;
mod import;
mod keyring;
mod metrics;
mod mfa;
mod oidc;
mod outbox;
mod passkeys;
pub mod passwords;
mod protection;
mod revocations;
mod sessions;
mod settings;
mod tasks;
mod users;

pub use admin::Promotion;
pub use error::{CredentialKind, ServiceError};
pub use keyring::{KEYRING_REFRESH, KeyListing, write_new_key};
pub use metrics::Metrics;
pub use mfa::{MfaCode, SecondFactor, SeededMfa, TotpEnrolment};
pub use oidc::{
    AppProof, CallbackOutcome, CallbackParams, IdentityInfo, ProviderInfo, StartedSignIn,
};
pub use passkeys::{CeremonyOptions, PasskeyInfo, RegisteredPasskey};
pub use protection::Swept;
pub use revocations::{FEED_KEEPALIVE, FEED_POLL, FeedItem};
pub use sessions::CurrentSession;
pub use settings::{
    AppEnv, ConfigError, ConfigErrors, JwtSettings, LogFormat, MailSettings, MfaSettings,
    OidcProviderSettings, OidcSettings, ProtectionSettings, ServerSettings, Settings,
    WebauthnSettings,
};
pub use users::{
    ClientInfo, LoginInput, LoginOutcome, MfaChallenge, PasswordChange, ProfileUpdate, TokenPair,
};
pub use webauthn_rs::prelude::{PublicKeyCredential, RegisterPublicKeyCredential};

use std::sync::{
    Arc,
    atomic::{AtomicBool, Ordering},
};

use anyhow::Context;
use secrecy::ExposeSecret;
use securecrud_auth::{JwtKeys, SuccessorKey};

use crate::keyring::KeySource;
use securecrud_mail::{CircuitBreaker, Mailer};
use securecrud_persistence::Database;
use time::Duration;

use crate::passwords::PasswordPool;

/// The application's use cases and what they need. Cheap to clone (an `Arc` and the database handle).
#[derive(Debug, Clone)]
pub struct Services {
    inner: Arc<Inner>,
    /// The database, through this runtime's pool (see [`Services::for_this_runtime`]).
    db: Database,
}

#[derive(Debug)]
struct Inner {
    passwords: PasswordPool,
    jwt: JwtKeys,
    /// Where the signing key pair comes from; `None` with HS256.
    keys: Option<KeySource>,
    /// Successor keys: the first makes successors, every one is accepted (see [`successor_keys`]).
    successors: Vec<SuccessorKey>,
    refresh_ttl: Duration,
    refresh_grace: Duration,
    session_max_lifetime: Duration,
    protection: ProtectionSettings,
    api_limiter: protection::MemoryLimiter,
    mail: MailConfig,
    mailer: Arc<dyn Mailer>,
    breaker: CircuitBreaker,
    metrics: Metrics,
    /// Seals the TOTP secrets stored for two-factor authentication.
    sealer: securecrud_auth::mfa::SecretSealer,
    /// Seals the bodies of the messages waiting in the outbox (see `outbox`).
    mail_sealer: securecrud_auth::seal::Sealer,
    /// `MFA_ISSUER`.
    mfa_issuer: String,
    /// `MFA_MAX_FAILURES`: wrong second factors in a row after which codes are refused until an admin reset.
    mfa_max_failures: u32,
    /// The WebAuthn relying party (RP ID and accepted origins from the settings); `None`: passkeys are off.
    webauthn: Option<webauthn_rs::Webauthn>,
    /// The OpenID Connect providers a user may sign in with.
    oidc: oidc::Providers,
    /// Set when the server begins its graceful stop (see [`Services::begin_draining`]).
    draining: AtomicBool,
    feed: revocations::Feed,
}

/// What the email flows and the outbox sender need of [`MailSettings`].
#[derive(Debug, Clone)]
struct MailConfig {
    require_verified_email: bool,
    public_base_url: String,
    verify_ttl: Duration,
    reset_ttl: Duration,
    max_attempts: u32,
    retry_base: Duration,
    poll_interval: std::time::Duration,
    keep_sent: Duration,
}

impl From<&MailSettings> for MailConfig {
    fn from(mail: &MailSettings) -> Self {
        Self {
            require_verified_email: mail.require_verified_email,
            public_base_url: mail.public_base_url.clone(),
            verify_ttl: mail.verify_ttl,
            reset_ttl: mail.reset_ttl,
            max_attempts: mail.max_attempts,
            retry_base: mail.retry_base,
            poll_interval: mail.poll_interval,
            keep_sent: mail.keep_sent,
        }
    }
}

impl Services {
    /// Connects to the configured database, applies pending migrations, and builds the services. The
    /// signing key is not installed in the shared key table: a server does that ([`Services::refresh_keys`],
    /// as [`Services::open`] does), not the commands that issue no token.
    ///
    /// # Errors
    /// If the database cannot be reached or a migration fails.
    pub async fn connect(settings: &Settings) -> anyhow::Result<Self> {
        let db = Database::connect(&settings.database_url, &settings.connect_options()).await?;
        db.migrate_up().await?;
        Self::new(settings, db)
    }

    /// Builds the services over an already connected and migrated database, and loads the signing keys
    /// (see [`Services::refresh_keys`]).
    ///
    /// # Errors
    /// As [`Services::new`] and [`Services::refresh_keys`].
    pub async fn open(settings: &Settings, db: Database) -> anyhow::Result<Self> {
        let services = Self::new(settings, db)?;
        services.refresh_keys().await?;
        Ok(services)
    }

    /// Builds the services over an already connected and migrated database. With a key pair, only this
    /// instance's own key is accepted until [`Services::refresh_keys`] runs (as [`Services::open`] does).
    ///
    /// # Errors
    /// If the key file cannot be read (settings validation already checked it).
    pub fn new(settings: &Settings, db: Database) -> anyhow::Result<Self> {
        let metrics = Metrics::new(db.begin_waits()).context("building the metrics failed")?;
        let passwords = PasswordPool::new(
            settings.password_hasher.clone(),
            settings.protection.password_queue_timeout,
        )
        .with_metrics(
            metrics.password_wait().clone(),
            metrics.password_rejected().clone(),
        );
        let (jwt, keys) = signing_keys(&settings.jwt)?;
        Ok(Self {
            db,
            inner: Arc::new(Inner {
                passwords,
                jwt,
                keys,
                successors: successor_keys(&settings.jwt)?,
                refresh_ttl: settings.jwt.refresh_ttl,
                refresh_grace: settings.jwt.refresh_grace,
                session_max_lifetime: settings.jwt.session_max_lifetime,
                protection: settings.protection.clone(),
                api_limiter: protection::MemoryLimiter::default(),
                mail: MailConfig::from(&settings.mail),
                mailer: outbox::mailer(&settings.mail)?,
                breaker: CircuitBreaker::new(
                    "mail",
                    settings.mail.breaker_failures,
                    std::time::Duration::from_secs(
                        u64::try_from(settings.mail.breaker_cooldown.whole_seconds()).unwrap_or(60),
                    ),
                ),
                metrics,
                sealer: securecrud_auth::mfa::SecretSealer::new(
                    settings.mfa.key_material.expose_secret(),
                )
                .context("deriving the TOTP sealing key failed")?,
                mail_sealer: outbox::mail_sealer(settings.mfa.key_material.expose_secret())
                    .context("deriving the outbox sealing key failed")?,
                mfa_issuer: settings.mfa.issuer.clone(),
                mfa_max_failures: settings.mfa.max_failures,
                webauthn: passkeys::relying_party(&settings.webauthn, &settings.mfa.issuer)?,
                oidc: oidc::Providers::new(
                    &settings.oidc,
                    settings.mfa.key_material.expose_secret(),
                )?,
                draining: AtomicBool::new(false),
                feed: revocations::Feed::new(settings.protection.feed_streams_per_ip),
            }),
        })
    }

    /// The database handle: for the black-box tests that must reach past the API on purpose (to arrange a
    /// state no route leads to).
    #[cfg(feature = "test-support")]
    pub fn database(&self) -> &Database {
        &self.db
    }

    /// Moves this api's clock forward by `by` (every expiry, lock, retry time and TOTP step it compares
    /// with): for the black-box tests, which reach an expiry this way instead of waiting for it. Access
    /// tokens are the exception: their `exp` is checked against the system's clock.
    #[cfg(feature = "test-support")]
    pub fn advance_clock(&self, by: std::time::Duration) {
        self.db.clock().advance(by);
    }

    /// The most connections the main pool opens (`DB_MAX_CONNECTIONS`), to share out among HTTP workers.
    pub fn pool_size(&self) -> u32 {
        self.db.pool_status().max
    }

    /// PostgreSQL: hears every committed change to users and sessions, from any instance or tool, and
    /// invalidates the session cache accordingly, until the listener's connection is lost (see the persistence
    /// crate's session cache). Returns at once on SQLite or with the cache off.
    pub async fn watch_session_changes(&self) {
        self.db.watch_sessions().await;
    }

    /// The `iss` of the access tokens (`JWT_ISSUER`, by default `PUBLIC_BASE_URL`).
    pub fn issuer(&self) -> &str {
        self.inner.jwt.issuer()
    }

    /// `PUBLIC_BASE_URL`, without a trailing slash: where this api is reached from outside.
    pub fn public_base_url(&self) -> &str {
        &self.inner.mail.public_base_url
    }

    /// These services for one worker runtime of the server, using a database pool of its own of at most
    /// `max_connections` on PostgreSQL (see the persistence crate's `Database::for_this_runtime`); everything
    /// else (caches, limiters, keys, metrics) is shared. Call it on the runtime that will use the result.
    pub fn for_this_runtime(&self, max_connections: u32) -> Self {
        Self {
            inner: Arc::clone(&self.inner),
            db: self.db.for_this_runtime(max_connections),
        }
    }

    /// The server has begun its graceful stop: from now on every answer closes its connection (see
    /// [`Services::is_draining`]).
    pub fn begin_draining(&self) {
        self.inner.draining.store(true, Ordering::Relaxed);
        self.inner.feed.begin_draining();
    }

    /// Whether the graceful stop has begun (see [`Services::begin_draining`]).
    pub fn is_draining(&self) -> bool {
        self.inner.draining.load(Ordering::Relaxed)
    }

    /// Whether the database answered its last probe (see [`Services::watch_database`]).
    pub fn database_available(&self) -> bool {
        self.db.is_available()
    }

    /// Probes the database until dropped, so that an outage is answered with `503` at once (see the
    /// persistence crate's `Database::watch_availability`).
    pub async fn watch_database(&self) {
        self.db.watch_availability().await;
    }

    /// This instance's metrics (the HTTP layer records its requests here).
    pub fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }

    /// Every metric in Prometheus's text format. The outbox gauges are counted in the database now (kept
    /// at their last value while it does not answer, so a scrape never waits on an outage).
    pub async fn render_metrics(&self) -> String {
        let db = &self.db;
        let up = db.is_available();
        let outbox = if up {
            tokio::time::timeout(METRICS_QUERY_TIMEOUT, db.outbox_counts())
                .await
                .ok()
                .and_then(|counts| {
                    counts
                        .inspect_err(|err| log::warn!("counting the outbox failed: {err:#}"))
                        .ok()
                })
        } else {
            None
        };
        self.inner
            .metrics
            .render(outbox, self.mail_circuit_open(), up, db.pool_status())
    }

    /// Whether the mail circuit breaker is open (sends paused because the mail server keeps failing).
    pub fn mail_circuit_open(&self) -> bool {
        self.inner.breaker.is_open()
    }

    /// Whether the database answers.
    ///
    /// # Errors
    /// [`ServiceError::Unavailable`] when it does not.
    pub async fn health(&self) -> Result<(), ServiceError> {
        Ok(self.db.ping().await?)
    }

    /// Whether this instance is ready for traffic: the database answers and every migration this version
    /// knows is applied.
    ///
    /// # Errors
    /// [`ServiceError::Unavailable`] when the database does not answer or a migration is pending.
    pub async fn readiness(&self) -> Result<(), ServiceError> {
        let db = &self.db;
        if !db.is_available() {
            return Err(ServiceError::Unavailable(anyhow::anyhow!(
                "the database does not answer"
            )));
        }
        db.ping().await?;
        let status = db
            .migration_status()
            .await
            .map_err(ServiceError::Unavailable)?;
        match status.iter().find(|migration| !migration.applied) {
            Some(pending) => Err(ServiceError::Unavailable(anyhow::anyhow!(
                "migration {} is not applied",
                pending.name
            ))),
            None => Ok(()),
        }
    }
}

/// The longest a scrape waits for the outbox counts.
const METRICS_QUERY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(1);

/// The refresh successor keys, one derived from each signing secret. Successors are made with the key of the
/// **oldest** secret still configured (the last of `JWT_PREVIOUS_SECRETS`, else `JWT_SECRET`), and a repeat
/// is recognised under any of them. During a secret rotation the instances that have the new secret keep the
/// old one as a previous secret, so old and new instances make the same successor and a concurrent refresh
/// across them is not taken for reuse (docs/AUTH-CRATE.md, "Rotating the signing secret").
fn successor_keys(jwt: &JwtSettings) -> anyhow::Result<Vec<SuccessorKey>> {
    let mut secrets: Vec<&[u8]> = std::iter::once(jwt.secret.expose_secret())
        .chain(jwt.previous_secrets.iter().map(|s| s.expose_secret()))
        .collect();
    secrets.rotate_right(1);
    secrets
        .into_iter()
        .map(|secret| {
            SuccessorKey::derive(secret).context("deriving a refresh successor key failed")
        })
        .collect()
}

/// The token keys `settings` name: a key pair's (only this instance's own key accepted until the first
/// [`Services::refresh_keys`]) with its key source, or the HS256 secrets.
fn signing_keys(settings: &JwtSettings) -> anyhow::Result<(JwtKeys, Option<KeySource>)> {
    if !settings.algorithm.is_asymmetric() {
        let jwt = JwtKeys::new(
            &settings.secret,
            &settings.previous_secrets,
            &settings.issuer,
            &settings.audience,
            settings.access_ttl,
        );
        return Ok((jwt, None));
    }
    let source = KeySource::new(
        settings.algorithm,
        settings.private_key_file.clone(),
        settings.key_retire,
    );
    let signing = source.initial_key()?;
    let own = signing.verifying_key()?;
    let jwt = JwtKeys::with_signing_key(
        signing,
        vec![own],
        &settings.issuer,
        &settings.audience,
        settings.access_ttl,
    );
    Ok((jwt, Some(source)))
}
