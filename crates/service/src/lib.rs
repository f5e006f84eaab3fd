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

mod admin;
mod audit;
mod error;
mod import;
pub mod passwords;
mod protection;
mod sessions;
mod settings;
mod tasks;
mod users;

pub use admin::Promotion;
pub use error::ServiceError;
pub use securecrud_persistence::{AccountChange, ConflictField, ImportedTask, ProfileChange};
pub use securecrud_persistence::{AuditPage, SessionInfo, Swept};
pub use sessions::CurrentSession;
pub use settings::{AppEnv, ConfigError, JwtSettings, LogFormat, ProtectionSettings, Settings};
pub use users::{ClientInfo, LoginInput, PasswordChange, TokenPair};

use std::sync::Arc;

use anyhow::Context;
use secrecy::ExposeSecret;
use securecrud_auth::{JwtKeys, SuccessorKey};
use securecrud_persistence::{ConnectOptions, Database};
use time::Duration;

use crate::passwords::PasswordPool;

/// The application's use cases and what they need. Cheap to clone (one `Arc`).
#[derive(Debug, Clone)]
pub struct Services {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    db: Database,
    passwords: PasswordPool,
    jwt: JwtKeys,
    successor: SuccessorKey,
    refresh_ttl: Duration,
    refresh_grace: Duration,
    protection: ProtectionSettings,
    api_limiter: protection::MemoryLimiter,
}

impl Services {
    /// Connects to the configured database, applies pending migrations, and builds the services.
    ///
    /// # Errors
    /// If the database cannot be reached or a migration fails.
    pub async fn connect(settings: &Settings) -> anyhow::Result<Self> {
        let db = Database::connect(
            settings.database_url(),
            &ConnectOptions {
                max_connections: settings.db_max_connections,
                ..ConnectOptions::default()
            },
        )
        .await?;
        db.migrate_up().await?;
        Self::new(settings, db)
    }

    /// Builds the services over an already connected and migrated database.
    ///
    /// # Errors
    /// If the bcrypt cost is out of range (settings validation already refuses that).
    pub fn new(settings: &Settings, db: Database) -> anyhow::Result<Self> {
        let passwords = PasswordPool::new(settings.bcrypt_cost).context("invalid BCRYPT_COST")?;
        let jwt = JwtKeys::new(
            &settings.jwt.secret,
            &settings.jwt.previous_secrets,
            &settings.jwt.issuer,
            &settings.jwt.audience,
            settings.jwt.access_ttl,
        );
        Ok(Self {
            inner: Arc::new(Inner {
                db,
                passwords,
                jwt,
                successor: SuccessorKey::derive(settings.jwt.secret.expose_secret())
                    .context("deriving the refresh successor key failed")?,
                refresh_ttl: settings.jwt.refresh_ttl,
                refresh_grace: settings.jwt.refresh_grace,
                protection: settings.protection.clone(),
                api_limiter: protection::MemoryLimiter::default(),
            }),
        })
    }

    /// The database handle, for the CLI and tests.
    pub fn database(&self) -> &Database {
        &self.inner.db
    }

    /// Whether the database answers.
    ///
    /// # Errors
    /// [`ServiceError::Unavailable`] when it does not.
    pub async fn health(&self) -> Result<(), ServiceError> {
        Ok(self.inner.db.ping().await?)
    }
}
