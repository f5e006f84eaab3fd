//! Email verification, reset and delivery: `REQUIRE_VERIFIED_EMAIL`, `PUBLIC_BASE_URL`, `SMTP_URL`, `MAIL_*`,
//! `VERIFY_TOKEN_TTL_SECS`, `RESET_TOKEN_TTL_SECS`.

use std::path::PathBuf;

use secrecy::{ExposeSecret, SecretString};
use time::Duration;

use super::{ConfigError, Env};

/// Email verification, password reset and mail delivery.
#[derive(Debug)]
pub struct MailSettings {
    /// `REQUIRE_VERIFIED_EMAIL`: refuse login until the email is verified.
    pub require_verified_email: bool,
    /// `PUBLIC_BASE_URL`: where links in emails point (no trailing slash).
    pub public_base_url: String,
    /// `SMTP_URL`: send through this server; unset: write `.eml` files to `MAIL_DIR`.
    smtp_url: Option<SecretString>,
    /// `MAIL_FROM`: the sender mailbox.
    pub from: String,
    /// `MAIL_DIR`: the file mailer's folder.
    pub dir: PathBuf,
    /// `VERIFY_TOKEN_TTL_SECS`.
    pub verify_ttl: Duration,
    /// `RESET_TOKEN_TTL_SECS`.
    pub reset_ttl: Duration,
    /// `MAIL_MAX_ATTEMPTS`: attempts before a message is marked dead.
    pub max_attempts: u32,
    /// `MAIL_RETRY_BASE_SECS`: the first retry delay; it doubles per attempt (at most an hour).
    pub retry_base: Duration,
    /// `MAIL_BREAKER_FAILURES`: failed sends in a row that open the circuit breaker.
    pub breaker_failures: u32,
    /// `MAIL_BREAKER_COOLDOWN_SECS`: how long the breaker stays open before a probe.
    pub breaker_cooldown: Duration,
    /// `MAIL_POLL_MS`: how often the sender looks for due messages.
    pub poll_interval: std::time::Duration,
    /// `MAIL_KEEP_SENT_SECS`: how long a sent message (bodies erased) stays in the outbox.
    pub keep_sent: Duration,
}

impl MailSettings {
    /// The SMTP URL (it may hold a password: never log it).
    pub fn smtp_url(&self) -> Option<&str> {
        self.smtp_url.as_ref().map(|url| url.expose_secret())
    }

    pub(crate) fn from_env(env: &Env<'_>) -> Result<Self, ConfigError> {
        let production = env.production();
        let public_base_url = env
            .get("PUBLIC_BASE_URL")
            .unwrap_or("http://127.0.0.1:8080")
            .trim_end_matches('/')
            .to_owned();
        if !(public_base_url.starts_with("http://") || public_base_url.starts_with("https://")) {
            return Err(ConfigError::new(
                "PUBLIC_BASE_URL",
                "must be an http:// or https:// URL like https://app.example.com",
            ));
        }
        if production && !public_base_url.starts_with("https://") {
            return Err(ConfigError::new(
                "PUBLIC_BASE_URL",
                "must be an https:// URL in production (its links carry reset tokens)",
            ));
        }
        let smtp_url = env.get("SMTP_URL");
        if production && smtp_url.is_none() && env.get("MAIL_DIR").is_none() {
            return Err(ConfigError::new(
                "SMTP_URL",
                "is required in production (without it, messages and their tokens are written to files; \
                 set MAIL_DIR explicitly to choose that)",
            ));
        }
        if let Some(url) = smtp_url
            && !(url.starts_with("smtp://") || url.starts_with("smtps://"))
        {
            return Err(ConfigError::new(
                "SMTP_URL",
                "must start with smtps:// (TLS) or smtp:// (add ?tls=required for STARTTLS)",
            ));
        }
        let from = env
            .get("MAIL_FROM")
            .unwrap_or("SecureCRUD <no-reply@localhost>")
            .to_owned();
        if let Err(err) = securecrud_mail::parse_from(&from) {
            return Err(ConfigError::new("MAIL_FROM", err.to_string()));
        }
        Ok(Self {
            require_verified_email: env.parse("REQUIRE_VERIFIED_EMAIL", false)?,
            public_base_url,
            smtp_url: smtp_url.map(SecretString::from),
            from,
            dir: PathBuf::from(env.get("MAIL_DIR").unwrap_or("mail")),
            verify_ttl: env.seconds("VERIFY_TOKEN_TTL_SECS", 86_400)?,
            reset_ttl: env.seconds("RESET_TOKEN_TTL_SECS", 3_600)?,
            max_attempts: env.positive("MAIL_MAX_ATTEMPTS", 8)?,
            retry_base: env.seconds("MAIL_RETRY_BASE_SECS", 30)?,
            breaker_failures: env.positive("MAIL_BREAKER_FAILURES", 3)?,
            breaker_cooldown: env.seconds("MAIL_BREAKER_COOLDOWN_SECS", 60)?,
            poll_interval: env.millis("MAIL_POLL_MS", 1_000)?,
            keep_sent: env.seconds("MAIL_KEEP_SENT_SECS", 604_800)?,
        })
    }
}
