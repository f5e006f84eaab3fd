//! Email verification, reset and delivery: `REQUIRE_VERIFIED_EMAIL`, `PUBLIC_BASE_URL`, `SMTP_URL`, `MAIL_*`,
//! `VERIFY_TOKEN_TTL_SECS`, `RESET_TOKEN_TTL_SECS`.

use std::{
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr},
    path::PathBuf,
};

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

    /// Reads the mail settings. `PUBLIC_BASE_URL` defaults, in development only, to the address the api
    /// listens on (`bind_addr`), so that changing `BIND_ADDR` moves the links, the issuer and the cookie
    /// origin with it; production requires it.
    pub(crate) fn from_env(env: &Env<'_>, bind_addr: SocketAddr) -> Self {
        let public_base_url = public_base_url(env, bind_addr);
        let smtp_url = env.get("SMTP_URL");
        check_smtp_url(env, smtp_url);
        let from = env
            .get("MAIL_FROM")
            .unwrap_or("SecureCRUD <no-reply@localhost>")
            .to_owned();
        if let Err(err) = securecrud_mail::parse_from(&from) {
            env.report(ConfigError::new("MAIL_FROM", err.to_string()));
        }
        Self {
            require_verified_email: env.parse("REQUIRE_VERIFIED_EMAIL", false),
            public_base_url,
            smtp_url: smtp_url.map(SecretString::from),
            from,
            dir: PathBuf::from(env.get("MAIL_DIR").unwrap_or("mail")),
            verify_ttl: env.seconds("VERIFY_TOKEN_TTL_SECS", 86_400),
            reset_ttl: env.seconds("RESET_TOKEN_TTL_SECS", 3_600),
            max_attempts: env.positive("MAIL_MAX_ATTEMPTS", 8),
            retry_base: env.seconds("MAIL_RETRY_BASE_SECS", 30),
            breaker_failures: env.positive("MAIL_BREAKER_FAILURES", 3),
            breaker_cooldown: env.seconds("MAIL_BREAKER_COOLDOWN_SECS", 60),
            poll_interval: env.millis("MAIL_POLL_MS", 1_000),
            keep_sent: env.seconds("MAIL_KEEP_SENT_SECS", 604_800),
        }
    }
}

/// `PUBLIC_BASE_URL` without a trailing slash: required (and https://) in production, by default in
/// development the URL of `bind_addr`.
fn public_base_url(env: &Env<'_>, bind_addr: SocketAddr) -> String {
    let production = env.production();
    let public_base_url = match env.get("PUBLIC_BASE_URL") {
        Some(url) => url.trim_end_matches('/').to_owned(),
        None if production => {
            env.report(ConfigError::new(
                "PUBLIC_BASE_URL",
                "is required in production: the https:// URL clients reach the api at (the tokens' \
                 issuer, and the start of the links in emails)",
            ));
            "https://localhost".to_owned()
        }
        None => url_of(bind_addr),
    };
    if !is_base_url(&public_base_url) {
        env.report(ConfigError::new(
            "PUBLIC_BASE_URL",
            "must be an http:// or https:// URL like https://app.example.com (a host, optionally a port \
             and a path; no spaces, user, query or fragment)",
        ));
    } else if production && !public_base_url.starts_with("https://") {
        env.report(ConfigError::new(
            "PUBLIC_BASE_URL",
            "must be an https:// URL in production (its links carry reset tokens)",
        ));
    }
    public_base_url
}

/// `SMTP_URL`: an smtp:// or smtps:// URL; in production required (unless `MAIL_DIR` is chosen) and
/// encrypted (unless the relay is local or `SMTP_ALLOW_PLAINTEXT` says so).
fn check_smtp_url(env: &Env<'_>, smtp_url: Option<&str>) {
    let production = env.production();
    let allow_plaintext = env.parse("SMTP_ALLOW_PLAINTEXT", false);
    if production && smtp_url.is_none() && env.get("MAIL_DIR").is_none() {
        env.report(ConfigError::new(
            "SMTP_URL",
            "is required in production (without it, messages and their tokens are written to files; \
             set MAIL_DIR explicitly to choose that)",
        ));
    }
    if let Some(url) = smtp_url
        && !(url.starts_with("smtp://") || url.starts_with("smtps://"))
    {
        env.report(ConfigError::new(
            "SMTP_URL",
            "must start with smtps:// (TLS) or smtp:// (add ?tls=required for STARTTLS)",
        ));
    } else if let Some(url) = smtp_url
        && production
        && sends_in_plaintext(url)
        && !allow_plaintext
    {
        env.report(ConfigError::new(
            "SMTP_URL",
            "would send mail, and the reset links in it, unencrypted in production: use smtps:// or add \
             ?tls=required (STARTTLS); a relay on this host (127.0.0.1, ::1, localhost) may stay plain, and \
             SMTP_ALLOW_PLAINTEXT=true allows another one on purpose",
        ));
    }
}

/// Whether `url` is an `http(s)://` URL with a host and nothing a base URL must not hold (user, query,
/// fragment), as written (a value the URL parser would have to repair, such as one with a space, is not).
fn is_base_url(url: &str) -> bool {
    let Ok(parsed) = url::Url::parse(url) else {
        return false;
    };
    matches!(parsed.scheme(), "http" | "https")
        && parsed.host_str().is_some_and(|host| !host.is_empty())
        && parsed.username().is_empty()
        && parsed.password().is_none()
        && parsed.query().is_none()
        && parsed.fragment().is_none()
        && !url.chars().any(|c| c.is_whitespace() || c.is_control())
}

/// Whether an `smtp://` URL sends without TLS to a host other than this one (`smtps://` is TLS; `smtp://` with
/// `tls=required` is STARTTLS; a relay on loopback never leaves the machine).
fn sends_in_plaintext(url: &str) -> bool {
    let Ok(parsed) = url::Url::parse(url) else {
        return false;
    };
    if parsed.scheme() != "smtp" {
        return false;
    }
    let starttls = parsed
        .query_pairs()
        .any(|(key, value)| key == "tls" && value == "required");
    let local = match parsed.host() {
        // `smtp` is not a scheme the URL standard knows: its host is kept as written, addresses included.
        Some(url::Host::Domain(domain)) => {
            domain.eq_ignore_ascii_case("localhost")
                || domain
                    .trim_start_matches('[')
                    .trim_end_matches(']')
                    .parse::<IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback())
        }
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    };
    !starttls && !local
}

/// `http://` and the address the api listens on; an unspecified address (`0.0.0.0`, `::`) as loopback,
/// where a browser on the same machine reaches it.
fn url_of(bind_addr: SocketAddr) -> String {
    let ip = match bind_addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    format!("http://{}", SocketAddr::new(ip, bind_addr.port()))
}
