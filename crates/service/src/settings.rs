//! Typed settings, read once from the environment (and `.env`).
//!
//! Nothing else in the workspace reads environment variables. A bad value stops start-up with a
//! [`ConfigError`] naming the variable. Variable names are part of the contract (docs/CONFIGURATION.md).

use std::{
    collections::HashMap,
    net::{IpAddr, SocketAddr},
    path::PathBuf,
    str::FromStr,
};

use ipnet::IpNet;

use secrecy::{ExposeSecret, SecretBox, SecretSlice, SecretString};
use time::Duration;

/// Secrets shorter than this are refused in production.
pub const MIN_JWT_SECRET_BYTES: usize = 32;
/// Production refuses bcrypt costs below this.
pub const MIN_PRODUCTION_BCRYPT_COST: u32 = 10;
pub const DEFAULT_DATABASE_URL: &str = "sqlite://data/securecrud.db?mode=rwc";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppEnv {
    Development,
    Production,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// A variable with a value the api cannot use.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid configuration: {var}: {message}")]
pub struct ConfigError {
    pub var: &'static str,
    pub message: String,
}

impl ConfigError {
    fn new(var: &'static str, message: impl Into<String>) -> Self {
        Self {
            var,
            message: message.into(),
        }
    }
}

/// Access-token settings.
#[derive(Debug)]
pub struct JwtSettings {
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

/// Brute-force and flood protection (API.md "Account protection").
#[derive(Debug, Clone)]
pub struct ProtectionSettings {
    /// `TRUSTED_PROXIES`: peers whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<IpNet>,
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
}

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
}

/// Everything the api is configured with.
#[derive(Debug)]
pub struct Settings {
    pub env: AppEnv,
    pub bind_addr: SocketAddr,
    database_url: SecretString,
    pub db_max_connections: u32,
    pub jwt: JwtSettings,
    /// True when no `JWT_SECRET` was set in development and a random one was made (tokens die on restart).
    pub jwt_secret_generated: bool,
    pub bcrypt_cost: u32,
    /// Allowed CORS origins; empty means no cross-origin access; `*` any origin (without credentials).
    pub cors_allowed_origins: Vec<String>,
    pub log_format: LogFormat,
    /// HTTP worker threads; `None` means one per core.
    pub workers: Option<usize>,
    /// `ADMIN_PASSWORD`: the password `api create-admin` uses when `--password-stdin` is not given.
    pub admin_password: Option<SecretString>,
    /// `SEED_PASSWORD`: the password of every seeded user when `seed --password` is not given.
    pub seed_password: Option<SecretString>,
    pub protection: ProtectionSettings,
    pub mail: MailSettings,
}

impl Settings {
    /// Reads `.env` (if present) into the environment, then the settings from the environment.
    ///
    /// # Errors
    /// A malformed `.env` or any variable with an unusable value.
    pub fn from_env() -> Result<Self, ConfigError> {
        match dotenvy::dotenv() {
            Ok(_) => {}
            Err(err) if err.not_found() => {}
            Err(err) => return Err(ConfigError::new("(.env)", err.to_string())),
        }
        let mut vars = HashMap::new();
        for (key, value) in std::env::vars_os() {
            if let (Some(key), Some(value)) = (key.to_str(), value.to_str()) {
                vars.insert(key.to_owned(), value.to_owned());
            }
        }
        Self::from_vars(&vars)
    }

    /// Builds settings from a map of variables, as if it were the environment. Tests use this.
    ///
    /// # Errors
    /// Any variable with an unusable value, named in the error.
    pub fn from_vars(vars: &HashMap<String, String>) -> Result<Self, ConfigError> {
        let get = |name: &str| vars.get(name).map(|v| v.trim()).filter(|v| !v.is_empty());
        let env = match get("APP_ENV") {
            None | Some("development") => AppEnv::Development,
            Some("production") => AppEnv::Production,
            Some(_) => {
                return Err(ConfigError::new(
                    "APP_ENV",
                    "must be 'development' or 'production'",
                ));
            }
        };
        let production = env == AppEnv::Production;

        let (secret, jwt_secret_generated) = match get("JWT_SECRET") {
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

        let previous: Vec<&str> = get("JWT_PREVIOUS_SECRETS")
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
        let previous_secrets = previous
            .into_iter()
            .map(|s| SecretBox::new(s.as_bytes().to_vec().into_boxed_slice()))
            .collect();

        let bind_addr = parse(get, "BIND_ADDR", SocketAddr::from(([127, 0, 0, 1], 8080)))?;
        if get("APP_ENV").is_none() && !bind_addr.ip().is_loopback() {
            return Err(ConfigError::new(
                "APP_ENV",
                "must be set when BIND_ADDR is not a loopback address: `production` (or `development` \
                 on purpose); an unset APP_ENV means development, whose defaults are not safe to expose",
            ));
        }

        let bcrypt_cost: u32 = parse(get, "BCRYPT_COST", 12)?;
        if !(4..=31).contains(&bcrypt_cost) {
            return Err(ConfigError::new("BCRYPT_COST", "must be between 4 and 31"));
        }
        if production && bcrypt_cost < MIN_PRODUCTION_BCRYPT_COST {
            return Err(ConfigError::new(
                "BCRYPT_COST",
                format!("must be at least {MIN_PRODUCTION_BCRYPT_COST} in production"),
            ));
        }

        let database_url = get("DATABASE_URL").unwrap_or(DEFAULT_DATABASE_URL);
        if !["sqlite:", "postgres://", "postgresql://"]
            .iter()
            .any(|scheme| database_url.starts_with(scheme))
        {
            return Err(ConfigError::new(
                "DATABASE_URL",
                "must start with sqlite:, postgres:// or postgresql://",
            ));
        }

        let lockout_base = seconds(get, "LOGIN_LOCKOUT_SECS", 60)?;
        let lockout_max = seconds(get, "LOGIN_LOCKOUT_MAX_SECS", 900)?;
        if lockout_max < lockout_base {
            return Err(ConfigError::new(
                "LOGIN_LOCKOUT_MAX_SECS",
                "must not be shorter than LOGIN_LOCKOUT_SECS",
            ));
        }
        let protection = ProtectionSettings {
            trusted_proxies: trusted_proxies(get("TRUSTED_PROXIES"))?,
            login_max_failures: positive(get, "LOGIN_MAX_FAILURES", 5)?,
            lockout_base,
            lockout_max,
            auth_rate_limit: parse(get, "RATE_LIMIT_AUTH_PER_MIN", 30)?,
            auth_rate_window: seconds(get, "RATE_LIMIT_AUTH_WINDOW_SECS", 60)?,
            api_rate_limit: parse(get, "RATE_LIMIT_API_PER_MIN", 1200)?,
            password_queue_timeout: std::time::Duration::from_millis(positive(
                get,
                "PASSWORD_QUEUE_TIMEOUT_MS",
                2_000,
            )?),
        };

        let public_base_url = get("PUBLIC_BASE_URL")
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
        let smtp_url = get("SMTP_URL");
        if production && smtp_url.is_none() && get("MAIL_DIR").is_none() {
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
        let from = get("MAIL_FROM")
            .unwrap_or("SecureCRUD <no-reply@localhost>")
            .to_owned();
        if let Err(err) = securecrud_mail::parse_from(&from) {
            return Err(ConfigError::new("MAIL_FROM", err.to_string()));
        }
        let mail = MailSettings {
            require_verified_email: parse(get, "REQUIRE_VERIFIED_EMAIL", false)?,
            public_base_url,
            smtp_url: smtp_url.map(SecretString::from),
            from,
            dir: PathBuf::from(get("MAIL_DIR").unwrap_or("mail")),
            verify_ttl: seconds(get, "VERIFY_TOKEN_TTL_SECS", 86_400)?,
            reset_ttl: seconds(get, "RESET_TOKEN_TTL_SECS", 3_600)?,
            max_attempts: positive(get, "MAIL_MAX_ATTEMPTS", 8)?,
            retry_base: seconds(get, "MAIL_RETRY_BASE_SECS", 30)?,
            breaker_failures: positive(get, "MAIL_BREAKER_FAILURES", 3)?,
            breaker_cooldown: seconds(get, "MAIL_BREAKER_COOLDOWN_SECS", 60)?,
            poll_interval: std::time::Duration::from_millis(positive(get, "MAIL_POLL_MS", 1_000)?),
            keep_sent: seconds(get, "MAIL_KEEP_SENT_SECS", 604_800)?,
        };

        let workers = match get("WORKERS") {
            None => None,
            Some(_) => Some(positive(get, "WORKERS", 1)?),
        };

        Ok(Self {
            env,
            bind_addr,
            database_url: SecretString::from(database_url),
            db_max_connections: positive(get, "DB_MAX_CONNECTIONS", 20)?,
            jwt: JwtSettings {
                secret: SecretBox::new(secret.into_boxed_slice()),
                previous_secrets,
                issuer: get("JWT_ISSUER").unwrap_or("securecrud").to_owned(),
                audience: get("JWT_AUDIENCE").unwrap_or("securecrud-api").to_owned(),
                access_ttl: seconds(get, "ACCESS_TOKEN_TTL_SECS", 900)?,
                refresh_ttl: seconds(get, "REFRESH_TOKEN_TTL_SECS", 604_800)?,
                refresh_grace: Duration::seconds(
                    parse::<u32>(get, "REFRESH_GRACE_SECS", 10)?.into(),
                ),
                session_max_lifetime: seconds(get, "SESSION_MAX_LIFETIME_SECS", 2_592_000)?,
            },
            jwt_secret_generated,
            bcrypt_cost,
            cors_allowed_origins: cors_origins(get("CORS_ALLOWED_ORIGINS"))?,
            log_format: match get("LOG_FORMAT") {
                None | Some("text") => LogFormat::Text,
                Some("json") => LogFormat::Json,
                Some(_) => return Err(ConfigError::new("LOG_FORMAT", "must be 'text' or 'json'")),
            },
            workers,
            admin_password: get("ADMIN_PASSWORD").map(SecretString::from),
            seed_password: get("SEED_PASSWORD").map(SecretString::from),
            protection,
            mail,
        })
    }

    /// The database URL (it may hold a password: never log it).
    pub fn database_url(&self) -> &str {
        self.database_url.expose_secret()
    }

    /// Replaces the database URL (tests point each app at its own database).
    pub fn set_database_url(&mut self, url: &str) {
        self.database_url = SecretString::from(url);
    }
}

fn parse<'a, T: FromStr>(
    get: impl Fn(&str) -> Option<&'a str>,
    var: &'static str,
    default: T,
) -> Result<T, ConfigError> {
    match get(var) {
        None => Ok(default),
        Some(raw) => raw
            .parse()
            .map_err(|_| ConfigError::new(var, format!("cannot parse {raw:?}"))),
    }
}

/// The longest duration a setting may give (ten years): beyond it, adding it to a timestamp could overflow.
const MAX_SETTING_SECS: i64 = 315_360_000;

/// A positive number of seconds, at most [`MAX_SETTING_SECS`].
fn seconds<'a>(
    get: impl Fn(&str) -> Option<&'a str>,
    var: &'static str,
    default: i64,
) -> Result<Duration, ConfigError> {
    let value: i64 = positive(get, var, default)?;
    if value > MAX_SETTING_SECS {
        return Err(ConfigError::new(
            var,
            format!("must be at most {MAX_SETTING_SECS} seconds (ten years)"),
        ));
    }
    Ok(Duration::seconds(value))
}

fn positive<'a, T: FromStr + PartialOrd + Default>(
    get: impl Fn(&str) -> Option<&'a str>,
    var: &'static str,
    default: T,
) -> Result<T, ConfigError> {
    let value: T = parse(get, var, default)?;
    if value <= T::default() {
        return Err(ConfigError::new(var, "must be a positive integer"));
    }
    Ok(value)
}

/// `TRUSTED_PROXIES`: comma-separated CIDRs (`10.0.0.0/8`) or single addresses (`127.0.0.1`, `::1`).
fn trusted_proxies(raw: Option<&str>) -> Result<Vec<IpNet>, ConfigError> {
    let Some(raw) = raw else {
        return Ok(Vec::new());
    };
    raw.split(',')
        .map(str::trim)
        .filter(|entry| !entry.is_empty())
        .map(|entry| {
            entry
                .parse::<IpNet>()
                .or_else(|_| entry.parse::<IpAddr>().map(IpNet::from))
                .map(|net| net.trunc())
                .map_err(|_| {
                    ConfigError::new(
                        "TRUSTED_PROXIES",
                        format!("{entry:?} is not an IP address or CIDR like 10.0.0.0/8"),
                    )
                })
        })
        .collect()
}

fn cors_origins(raw: Option<&str>) -> Result<Vec<String>, ConfigError> {
    let Some(raw) = raw else {
        return Ok(Vec::new());
    };
    raw.split(',')
        .map(str::trim)
        .filter(|origin| !origin.is_empty())
        .map(|origin| {
            let well_formed = origin == "*"
                || ((origin.starts_with("http://") || origin.starts_with("https://"))
                    && !origin
                        .trim_start_matches("http://")
                        .trim_start_matches("https://")
                        .contains('/'));
            if well_formed {
                Ok(origin.to_owned())
            } else {
                Err(ConfigError::new(
                    "CORS_ALLOWED_ORIGINS",
                    format!("{origin:?} is not an origin like https://app.example.com"),
                ))
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn defaults_need_no_variables() {
        let settings = Settings::from_vars(&vars(&[])).unwrap();
        assert_eq!(settings.env, AppEnv::Development);
        assert_eq!(settings.bind_addr.to_string(), "127.0.0.1:8080");
        assert_eq!(settings.database_url(), DEFAULT_DATABASE_URL);
        assert_eq!(settings.bcrypt_cost, 12);
        assert_eq!(settings.jwt.access_ttl, Duration::minutes(15));
        assert_eq!(settings.jwt.refresh_ttl, Duration::days(7));
        assert!(settings.jwt_secret_generated);
        assert_eq!(settings.jwt.refresh_grace, Duration::seconds(10));
        assert!(settings.jwt.previous_secrets.is_empty());
    }

    #[test]
    fn previous_secrets_are_a_comma_separated_list() {
        let settings =
            Settings::from_vars(&vars(&[("JWT_PREVIOUS_SECRETS", "old-one, older-two,")])).unwrap();
        let secrets: Vec<&[u8]> = settings
            .jwt
            .previous_secrets
            .iter()
            .map(|s| s.expose_secret())
            .collect();
        assert_eq!(secrets, [b"old-one".as_slice(), b"older-two".as_slice()]);
        let zero = Settings::from_vars(&vars(&[("REFRESH_GRACE_SECS", "0")])).unwrap();
        assert_eq!(zero.jwt.refresh_grace, Duration::ZERO);
    }

    #[test]
    fn bad_values_name_their_variable() {
        let cases: &[(&[(&str, &str)], &str)] = &[
            (&[("BCRYPT_COST", "abc")], "BCRYPT_COST"),
            (&[("BCRYPT_COST", "3")], "BCRYPT_COST"),
            (&[("APP_ENV", "staging")], "APP_ENV"),
            (&[("BIND_ADDR", "nowhere")], "BIND_ADDR"),
            (&[("ACCESS_TOKEN_TTL_SECS", "0")], "ACCESS_TOKEN_TTL_SECS"),
            (&[("DB_MAX_CONNECTIONS", "-1")], "DB_MAX_CONNECTIONS"),
            (&[("DATABASE_URL", "mysql://x")], "DATABASE_URL"),
            (&[("LOG_FORMAT", "xml")], "LOG_FORMAT"),
            (&[("WORKERS", "0")], "WORKERS"),
            (&[("REFRESH_GRACE_SECS", "-1")], "REFRESH_GRACE_SECS"),
            (&[("TRUSTED_PROXIES", "10.0.0.0/33")], "TRUSTED_PROXIES"),
            (&[("TRUSTED_PROXIES", "proxy.local")], "TRUSTED_PROXIES"),
            (&[("LOGIN_MAX_FAILURES", "0")], "LOGIN_MAX_FAILURES"),
            (
                &[
                    ("LOGIN_LOCKOUT_SECS", "600"),
                    ("LOGIN_LOCKOUT_MAX_SECS", "60"),
                ],
                "LOGIN_LOCKOUT_MAX_SECS",
            ),
            (
                &[("RATE_LIMIT_AUTH_PER_MIN", "-3")],
                "RATE_LIMIT_AUTH_PER_MIN",
            ),
            (
                &[("RATE_LIMIT_API_PER_MIN", "many")],
                "RATE_LIMIT_API_PER_MIN",
            ),
            (&[("PUBLIC_BASE_URL", "app.example.com")], "PUBLIC_BASE_URL"),
            (&[("SMTP_URL", "mail.example.com:25")], "SMTP_URL"),
            (&[("MAIL_FROM", "not a mailbox")], "MAIL_FROM"),
            (
                &[("REQUIRE_VERIFIED_EMAIL", "yes")],
                "REQUIRE_VERIFIED_EMAIL",
            ),
            (&[("VERIFY_TOKEN_TTL_SECS", "0")], "VERIFY_TOKEN_TTL_SECS"),
            (
                &[("CORS_ALLOWED_ORIGINS", "https://a.example/path")],
                "CORS_ALLOWED_ORIGINS",
            ),
        ];
        for (pairs, var) in cases {
            let err = Settings::from_vars(&vars(pairs)).unwrap_err();
            assert_eq!(err.var, *var, "{pairs:?}");
            assert!(err.to_string().contains(var));
        }
    }

    #[test]
    fn production_refuses_a_missing_or_short_secret_and_a_low_cost() {
        let long = "x".repeat(32);
        let missing = Settings::from_vars(&vars(&[("APP_ENV", "production")])).unwrap_err();
        assert_eq!(missing.var, "JWT_SECRET");
        let short =
            Settings::from_vars(&vars(&[("APP_ENV", "production"), ("JWT_SECRET", "short")]))
                .unwrap_err();
        assert_eq!(short.var, "JWT_SECRET");
        let cheap = Settings::from_vars(&vars(&[
            ("APP_ENV", "production"),
            ("JWT_SECRET", &long),
            ("BCRYPT_COST", "8"),
        ]))
        .unwrap_err();
        assert_eq!(cheap.var, "BCRYPT_COST");
        let ok = Settings::from_vars(&vars(&production(&long, &[]))).unwrap();
        assert!(!ok.jwt_secret_generated);
    }

    /// A complete production environment, with `extra` added or overriding.
    fn production<'a>(secret: &'a str, extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
        let mut pairs = vec![
            ("APP_ENV", "production"),
            ("JWT_SECRET", secret),
            ("PUBLIC_BASE_URL", "https://app.example.com"),
            ("SMTP_URL", "smtps://mail.example.com"),
        ];
        pairs.extend_from_slice(extra);
        pairs
    }

    #[test]
    fn production_fails_closed_naming_the_variable() {
        let long = "x".repeat(32);
        let cases: &[(&[(&str, &str)], &str)] = &[
            (
                &[("PUBLIC_BASE_URL", "http://app.example.com")],
                "PUBLIC_BASE_URL",
            ),
            (&[("SMTP_URL", "")], "SMTP_URL"),
            (
                &[("JWT_PREVIOUS_SECRETS", "short-old-secret")],
                "JWT_PREVIOUS_SECRETS",
            ),
        ];
        for (extra, var) in cases {
            let err = Settings::from_vars(&vars(&production(&long, extra))).unwrap_err();
            assert_eq!(err.var, *var, "{extra:?}");
        }
        let files = Settings::from_vars(&vars(&production(
            &long,
            &[("SMTP_URL", ""), ("MAIL_DIR", "/var/spool/securecrud")],
        )));
        assert!(files.is_ok(), "an explicit MAIL_DIR opts in to files");

        let exposed = Settings::from_vars(&vars(&[("BIND_ADDR", "0.0.0.0:8080")])).unwrap_err();
        assert_eq!(
            exposed.var, "APP_ENV",
            "no silent development mode on a public address"
        );
        let on_purpose = Settings::from_vars(&vars(&[
            ("BIND_ADDR", "0.0.0.0:8080"),
            ("APP_ENV", "development"),
        ]));
        assert!(on_purpose.is_ok());
    }

    #[test]
    fn protection_defaults_follow_the_contract() {
        let settings = Settings::from_vars(&vars(&[])).unwrap();
        let p = &settings.protection;
        assert!(p.trusted_proxies.is_empty());
        assert_eq!(p.login_max_failures, 5);
        assert_eq!(p.lockout_base, Duration::minutes(1));
        assert_eq!(p.lockout_max, Duration::minutes(15));
        assert_eq!(p.auth_rate_limit, 30);
        assert_eq!(p.auth_rate_window, Duration::minutes(1));
    }

    #[test]
    fn trusted_proxies_take_cidrs_and_single_addresses() {
        let settings = Settings::from_vars(&vars(&[(
            "TRUSTED_PROXIES",
            "10.1.2.3/8, 127.0.0.1, ::1, fd00::/8",
        )]))
        .unwrap();
        let nets: Vec<String> = settings
            .protection
            .trusted_proxies
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(nets, ["10.0.0.0/8", "127.0.0.1/32", "::1/128", "fd00::/8"]);
    }

    #[test]
    fn cors_origins_are_a_comma_separated_list() {
        let settings = Settings::from_vars(&vars(&[(
            "CORS_ALLOWED_ORIGINS",
            "https://app.example.com, http://localhost:3000",
        )]))
        .unwrap();
        assert_eq!(
            settings.cors_allowed_origins,
            ["https://app.example.com", "http://localhost:3000"]
        );
    }

    #[test]
    fn debug_output_hides_secrets() {
        let settings = Settings::from_vars(&vars(&[
            ("JWT_SECRET", "super-secret-value-0123456789-abcdef"),
            ("DATABASE_URL", "postgres://app:hunter2@db/app"),
            ("SMTP_URL", "smtps://mailer:swordfish@mail.example.com"),
        ]))
        .unwrap();
        let debug = format!("{settings:?}");
        assert!(!debug.contains("super-secret"));
        assert!(!debug.contains("hunter2"));
        assert!(!debug.contains("swordfish"));
    }
}
