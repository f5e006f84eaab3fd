//! Brute-force and flood protection: `LOGIN_*`, `RATE_LIMIT_*`,
//! `PASSWORD_QUEUE_TIMEOUT_MS`, `REVOCATION_FEED_MAX_STREAMS_PER_IP`.

use time::Duration;

use super::{ConfigError, Env};

/// Brute-force and flood protection (API.md "Account protection").
#[derive(Debug, Clone)]
pub struct ProtectionSettings {
    /// `LOGIN_MAX_FAILURES`: consecutive failures of one login identifier before it is locked.
    pub login_max_failures: u32,
    /// `LOGIN_LOCKOUT_SECS`: the first lock; each further lock doubles it.
    pub lockout_base: Duration,
    /// `LOGIN_LOCKOUT_MAX_SECS`: the longest lock.
    pub lockout_max: Duration,
    /// `RATE_LIMIT_AUTH_PER_MIN`: requests per client IP and window on the auth endpoints; 0 turns it off.
    pub auth_rate_limit: u32,
    /// `RATE_LIMIT_AUTH_WINDOW_SECS`: the auth limiter's window (60 s: the limit is per minute).
    pub auth_rate_window: Duration,
    /// `RATE_LIMIT_API_PER_MIN`: requests per client IP and minute on every other `/api/v1` route, counted in
    /// each instance's memory; 0 turns it off.
    pub api_rate_limit: u32,
    /// `PASSWORD_QUEUE_TIMEOUT_MS`: the longest a request waits for a turn at password hashing before `503`.
    pub password_queue_timeout: std::time::Duration,
    /// `REVOCATION_FEED_MAX_STREAMS_PER_IP`: open revocation-feed streams per client IP and instance.
    pub feed_streams_per_ip: u32,
}

impl ProtectionSettings {
    pub(crate) fn from_env(env: &Env<'_>) -> Self {
        let lockout_base = env.seconds("LOGIN_LOCKOUT_SECS", 60);
        let lockout_max = env.seconds("LOGIN_LOCKOUT_MAX_SECS", 900);
        if lockout_max < lockout_base {
            env.report(ConfigError::new(
                "LOGIN_LOCKOUT_MAX_SECS",
                "must not be shorter than LOGIN_LOCKOUT_SECS",
            ));
        }
        let auth_rate_limit = env.parse("RATE_LIMIT_AUTH_PER_MIN", 30);
        if auth_rate_limit == 0 && env.production() {
            env.report(ConfigError::new(
                "RATE_LIMIT_AUTH_PER_MIN",
                "cannot be 0 (off) in production: it is what slows password guessing from one address",
            ));
        }
        Self {
            login_max_failures: env.positive("LOGIN_MAX_FAILURES", 5),
            lockout_base,
            lockout_max,
            auth_rate_limit,
            auth_rate_window: env.seconds("RATE_LIMIT_AUTH_WINDOW_SECS", 60),
            api_rate_limit: env.parse("RATE_LIMIT_API_PER_MIN", 1200),
            password_queue_timeout: env.millis("PASSWORD_QUEUE_TIMEOUT_MS", 2_000),
            feed_streams_per_ip: env.positive("REVOCATION_FEED_MAX_STREAMS_PER_IP", 4),
        }
    }
}
