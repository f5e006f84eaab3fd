//! bcrypt off the async threads, with bounded concurrency.
//!
//! Each hash or verification runs on tokio's blocking pool and holds one permit of a semaphore sized to the
//! machine's cores less one (at least one), so a login flood queues here and leaves a core to the requests
//! that hash nothing. The queue is bounded in time: a request that would wait longer than
//! `PASSWORD_QUEUE_TIMEOUT_MS` for a permit gets [`ServiceError::Busy`] (`503` with `Retry-After`) instead of
//! hanging.

use std::{sync::Arc, time::Duration};

use anyhow::Context;
use securecrud_auth::PasswordHasher;
use securecrud_domain::{LoginPassword, Password};
use tokio::sync::Semaphore;

use crate::ServiceError;

#[derive(Debug)]
pub struct PasswordPool {
    hasher: Arc<PasswordHasher>,
    permits: Arc<Semaphore>,
    queue_timeout: Duration,
    /// Each request's wait for its turn.
    waits: Option<prometheus::Histogram>,
    /// Requests refused after waiting `queue_timeout`.
    rejected: Option<prometheus::IntCounter>,
}

/// What a client waiting out a full queue is told to wait (`Retry-After`).
const BUSY_RETRY_AFTER_SECS: u64 = 1;

impl PasswordPool {
    /// A pool hashing with `hasher`, where a request waits at most `queue_timeout` for its turn.
    pub fn new(hasher: PasswordHasher, queue_timeout: Duration) -> Self {
        let cores = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
        Self {
            hasher: Arc::new(hasher),
            permits: Arc::new(Semaphore::new(cores.saturating_sub(1).max(1))),
            queue_timeout,
            waits: None,
            rejected: None,
        }
    }

    /// Records every wait for a turn in `waits` and every refusal in `rejected`.
    pub(crate) fn with_metrics(
        mut self,
        waits: prometheus::Histogram,
        rejected: prometheus::IntCounter,
    ) -> Self {
        self.waits = Some(waits);
        self.rejected = Some(rejected);
        self
    }

    async fn run<T: Send + 'static>(
        &self,
        job: impl FnOnce(&PasswordHasher) -> T + Send + 'static,
    ) -> Result<T, ServiceError> {
        let started = std::time::Instant::now();
        let acquire = Arc::clone(&self.permits).acquire_owned();
        let waited = tokio::time::timeout(self.queue_timeout, acquire).await;
        if let Some(waits) = &self.waits {
            waits.observe(started.elapsed().as_secs_f64());
        }
        let permit = match waited {
            Ok(permit) => permit.context("the password semaphore was closed")?,
            Err(_) => {
                if let Some(rejected) = &self.rejected {
                    rejected.inc();
                }
                log::warn!(
                    "password hashing queue full: a request waited {} ms and was refused",
                    self.queue_timeout.as_millis()
                );
                return Err(ServiceError::Busy {
                    retry_after_secs: BUSY_RETRY_AFTER_SECS,
                });
            }
        };
        let hasher = Arc::clone(&self.hasher);
        // The permit moves into the blocking task: if the caller's future is dropped, bcrypt still holds
        // its slot until it finishes, so the bound holds.
        Ok(tokio::task::spawn_blocking(move || {
            let _permit = permit;
            job(&hasher)
        })
        .await
        .context("a password task failed")?)
    }

    /// The bcrypt hash of a new password.
    ///
    /// # Errors
    /// [`ServiceError::Unexpected`] if bcrypt fails.
    pub async fn hash(&self, password: Password) -> Result<String, ServiceError> {
        self.hash_secret(password, Password::expose).await
    }

    /// Whether `password` matches `hash`; with no hash (unknown user) a dummy verification of the same cost
    /// runs and the answer is `false`.
    ///
    /// # Errors
    /// [`ServiceError::Unexpected`] if the blocking task fails.
    pub async fn verify(
        &self,
        password: LoginPassword,
        hash: Option<String>,
    ) -> Result<Verified, ServiceError> {
        self.run(move |h| match hash {
            Some(hash) if password.fits_bcrypt() => {
                let matches = h.verify(password.expose(), &hash);
                Verified {
                    matches,
                    needs_rehash: matches && h.needs_rehash(&hash),
                    password,
                }
            }
            _ => {
                h.verify_dummy(password.expose());
                Verified {
                    matches: false,
                    needs_rehash: false,
                    password,
                }
            }
        })
        .await
    }

    /// Re-hashes a password that just verified, at the current cost.
    ///
    /// # Errors
    /// [`ServiceError::Unexpected`] if bcrypt fails.
    pub async fn rehash(&self, password: LoginPassword) -> Result<String, ServiceError> {
        self.hash_secret(password, LoginPassword::expose).await
    }

    /// Hashes a secret on the blocking pool; the plain text is exposed only inside the bcrypt call.
    async fn hash_secret<S: Send + 'static>(
        &self,
        secret: S,
        expose: fn(&S) -> &str,
    ) -> Result<String, ServiceError> {
        let hash = self.run(move |h| h.hash(expose(&secret))).await?;
        Ok(hash.context("hashing a password failed")?)
    }
}

/// The outcome of a verification. Gives the password back for a re-hash.
#[derive(Debug)]
pub struct Verified {
    pub matches: bool,
    pub needs_rehash: bool,
    pub password: LoginPassword,
}
