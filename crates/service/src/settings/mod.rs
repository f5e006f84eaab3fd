//! Typed settings, read once from the environment.
//!
//! The binaries read the environment (and `.env`, with dotenvy) once and hand the variables to
//! [`Settings::from_vars`]; nothing else in the workspace reads environment variables. Each concern has its
//! own typed struct built by its own constructor, which validates each of its values once ([`jwt`],
//! [`protection`], [`mail`], [`server`]); a value consumed by a library type is validated by that type's
//! constructor (the bcrypt cost by [`PasswordHasher::new`], the database URL by the persistence crate's
//! [`DatabaseUrl::parse`]). Bad values stop start-up with [`ConfigErrors`], every one named at once. Variable names are part
//! of the contract (docs/CONFIGURATION.md).

mod jwt;
mod mail;
mod mfa;
mod oidc;
mod protection;
mod server;
mod webauthn;

pub use jwt::{JwtSettings, read_private_key};
pub use mail::MailSettings;
pub use mfa::MfaSettings;
pub use oidc::{OidcProviderSettings, OidcSettings};
pub use protection::ProtectionSettings;
pub use server::{LogFormat, ServerSettings};
pub use webauthn::WebauthnSettings;

use std::{borrow::Cow, cell::RefCell, collections::HashMap, str::FromStr};

use secrecy::SecretString;
use securecrud_auth::PasswordHasher;
use securecrud_persistence::{ConnectOptions, DatabaseUrl};
use time::Duration;

/// Secrets shorter than this are refused in production.
pub const MIN_JWT_SECRET_BYTES: usize = 32;
/// A production secret has at least this many different characters: a random one of 32 characters or more
/// has far more (hex has 16 to choose from, base64 64), a typed pattern (`aaaa…`, `abcabc…`) has fewer.
const MIN_SECRET_DISTINCT_CHARS: usize = 12;

/// Why a production secret is refused, if it is: too short, or a pattern rather than random bytes.
pub(crate) fn weak_secret(secret: &str) -> Option<String> {
    if secret.len() < MIN_JWT_SECRET_BYTES {
        return Some(format!(
            "must be at least {MIN_JWT_SECRET_BYTES} bytes in production (e.g. `openssl rand -base64 48`)"
        ));
    }
    let distinct: std::collections::BTreeSet<char> = secret.chars().collect();
    (distinct.len() < MIN_SECRET_DISTINCT_CHARS).then(|| {
        format!(
            "is not random enough for production ({} different characters): make one with `openssl rand \
             -base64 48`",
            distinct.len()
        )
    })
}
/// Production refuses bcrypt costs below this.
pub const MIN_PRODUCTION_BCRYPT_COST: u32 = 10;
pub const DEFAULT_DATABASE_URL: &str = "sqlite://data/securecrud.db?mode=rwc";
/// The longest duration a setting may give (ten years): beyond it, adding it to a timestamp could overflow.
const MAX_SETTING_SECS: i64 = 315_360_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppEnv {
    Development,
    Production,
}

/// A variable with a value the api cannot use.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{var}: {message}")]
pub struct ConfigError {
    /// The variable; per-provider ones (`OIDC_<NAME>_ISSUER`) are named at run time.
    pub var: Cow<'static, str>,
    pub message: String,
}

impl ConfigError {
    pub(crate) fn new(var: impl Into<Cow<'static, str>>, message: impl Into<String>) -> Self {
        Self {
            var: var.into(),
            message: message.into(),
        }
    }
}

/// Every unusable variable of one environment, in the order they were found: a start reports them all at
/// once, so that fixing a configuration takes one restart, not one per variable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors(Vec<ConfigError>);

impl ConfigErrors {
    /// The problems, each naming its variable (never empty).
    pub fn problems(&self) -> &[ConfigError] {
        &self.0
    }

    /// The variables with a problem, in order.
    pub fn vars(&self) -> Vec<&str> {
        self.0.iter().map(|problem| problem.var.as_ref()).collect()
    }
}

impl std::fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0.as_slice() {
            [one] => write!(f, "invalid configuration: {one}"),
            all => {
                write!(f, "invalid configuration ({} problems):", all.len())?;
                for problem in all {
                    write!(f, "\n  - {problem}")?;
                }
                Ok(())
            }
        }
    }
}

impl std::error::Error for ConfigErrors {}

/// The variables, as the constructors read them: trimmed, an empty value the same as none. A value that
/// cannot be used is recorded (see [`Env::report`]) and its default stands in, so that reading goes on and
/// every problem is found in one pass.
pub(crate) struct Env<'a> {
    vars: &'a HashMap<String, String>,
    pub(crate) app: AppEnv,
    problems: RefCell<Vec<ConfigError>>,
}

impl<'a> Env<'a> {
    pub(crate) fn get(&self, var: &str) -> Option<&'a str> {
        self.vars
            .get(var)
            .map(|v| v.trim())
            .filter(|v| !v.is_empty())
    }

    pub(crate) fn production(&self) -> bool {
        self.app == AppEnv::Production
    }

    /// Records a problem; [`Settings::from_vars`] fails with every recorded problem at the end.
    pub(crate) fn report(&self, problem: ConfigError) {
        self.problems.borrow_mut().push(problem);
    }

    /// The value of `result`, or `None` after recording its problem.
    pub(crate) fn check<T>(&self, result: Result<T, ConfigError>) -> Option<T> {
        result.map_err(|problem| self.report(problem)).ok()
    }

    /// `var` parsed, or `default` when unset (or, recorded, when it does not parse).
    pub(crate) fn parse<T: FromStr>(&self, var: &'static str, default: T) -> T {
        match self.get(var) {
            None => default,
            Some(raw) => raw.parse().unwrap_or_else(|_| {
                self.report(ConfigError::new(var, format!("cannot parse {raw:?}")));
                default
            }),
        }
    }

    /// A positive number (a value that is not is recorded, and `default` stands in).
    pub(crate) fn positive<T: FromStr + PartialOrd + Default + Copy>(
        &self,
        var: &'static str,
        default: T,
    ) -> T {
        let value: T = self.parse(var, default);
        if value <= T::default() {
            self.report(ConfigError::new(var, "must be a positive integer"));
            return default;
        }
        value
    }

    /// A positive number of seconds, at most ten years.
    pub(crate) fn seconds(&self, var: &'static str, default: i64) -> Duration {
        let value: i64 = self.positive(var, default);
        if value > MAX_SETTING_SECS {
            self.report(ConfigError::new(
                var,
                format!("must be at most {MAX_SETTING_SECS} seconds (ten years)"),
            ));
            return Duration::seconds(default);
        }
        Duration::seconds(value)
    }

    /// A positive number of milliseconds.
    pub(crate) fn millis(&self, var: &'static str, default: u64) -> std::time::Duration {
        std::time::Duration::from_millis(self.positive(var, default))
    }

    /// Every problem recorded, or `Ok` when there were none.
    fn finish(self) -> Result<(), ConfigErrors> {
        let problems = self.problems.into_inner();
        if problems.is_empty() {
            Ok(())
        } else {
            Err(ConfigErrors(problems))
        }
    }
}

/// Everything the api and its command-line tools are configured with, one struct per concern.
#[derive(Debug)]
pub struct Settings {
    pub env: AppEnv,
    /// The listener, workers, CORS and log format (the HTTP layer and the binary).
    pub server: ServerSettings,
    /// `DATABASE_URL`, validated by the persistence crate's [`DatabaseUrl::parse`].
    pub database_url: DatabaseUrl,
    pub db_max_connections: u32,
    /// `DB_ACQUIRE_TIMEOUT_MS` (default 500, 50–5000): the longest a request waits for a database connection
    /// before `503` (see the persistence crate's `ConnectOptions::acquire_timeout`).
    pub db_acquire_timeout: std::time::Duration,
    /// `SESSION_CACHE_MAX_AGE_MS` (default 1000; 0 turns the cache off): how old a cached session check may
    /// be (see the persistence crate's `Database::find_session_user`).
    pub session_cache_max_age: std::time::Duration,
    pub jwt: JwtSettings,
    /// `BCRYPT_COST`, validated by the hasher that uses it.
    pub password_hasher: PasswordHasher,
    pub protection: ProtectionSettings,
    pub mail: MailSettings,
    pub mfa: MfaSettings,
    /// Passkeys: the RP ID and the accepted origins.
    pub webauthn: WebauthnSettings,
    /// Sign in with OpenID Connect providers: the providers and the app URLs a result may go to.
    pub oidc: OidcSettings,
    /// `ADMIN_PASSWORD`: the password `api create-admin` uses when `--password-stdin` is not given.
    pub admin_password: Option<SecretString>,
    /// `SEED_PASSWORD`: the password of every seeded user when `seed --password` is not given.
    pub seed_password: Option<SecretString>,
}

impl Settings {
    /// Builds settings from a map of variables, as if it were the environment. Tests use this.
    ///
    /// # Errors
    /// Every variable with an unusable value, each named (all of them, not only the first).
    pub fn from_vars(vars: &HashMap<String, String>) -> Result<Self, ConfigErrors> {
        let (app, problems) = app_env(vars);
        let env = Env {
            vars,
            app,
            problems: RefCell::new(problems),
        };
        let server = ServerSettings::from_env(&env);
        let mail = MailSettings::from_env(&env, server.bind_addr);
        let database_url = env.check(
            DatabaseUrl::parse(env.get("DATABASE_URL").unwrap_or(DEFAULT_DATABASE_URL))
                .map_err(|message| ConfigError::new("DATABASE_URL", message)),
        );
        let db_max_connections = env.positive(
            "DB_MAX_CONNECTIONS",
            default_pool_size(database_url.as_ref(), available_cores()),
        );
        let db_acquire_timeout = db_acquire_timeout(&env);
        let session_cache_max_age = session_cache_max_age(&env);
        let jwt = JwtSettings::from_env(&env, &mail.public_base_url);
        let password_hasher = password_hasher(&env);
        let protection = ProtectionSettings::from_env(&env);
        let mfa = MfaSettings::from_env(&env);
        let webauthn = WebauthnSettings::from_env(&env, &mail.public_base_url);
        let oidc = OidcSettings::from_env(&env, &mail.public_base_url);
        env.finish()?;
        let (Some(database_url), Some(password_hasher)) = (database_url, password_hasher) else {
            // Unreachable: a missing value was recorded as a problem, and `finish` returned it.
            return Err(ConfigErrors(vec![ConfigError::new(
                "DATABASE_URL",
                "could not be read",
            )]));
        };
        Ok(Self {
            env: app,
            server: ServerSettings {
                public_origin: origin_of(&mail.public_base_url),
                ..server
            },
            database_url,
            db_max_connections,
            db_acquire_timeout,
            session_cache_max_age,
            jwt,
            password_hasher,
            protection,
            mail,
            mfa,
            webauthn,
            oidc,
            admin_password: env_secret(vars, "ADMIN_PASSWORD"),
            seed_password: env_secret(vars, "SEED_PASSWORD"),
        })
    }
}

/// `APP_ENV` (development by default), and its problem if it is neither: the rest is then read with
/// development's rules (the start fails on this variable anyway).
fn app_env(vars: &HashMap<String, String>) -> (AppEnv, Vec<ConfigError>) {
    match vars
        .get("APP_ENV")
        .map(|v| v.trim())
        .filter(|v| !v.is_empty())
    {
        None | Some("development") => (AppEnv::Development, Vec::new()),
        Some("production") => (AppEnv::Production, Vec::new()),
        Some(_) => (
            AppEnv::Development,
            vec![ConfigError::new(
                "APP_ENV",
                "must be 'development' or 'production'",
            )],
        ),
    }
}

/// A secret variable, trimmed; empty is the same as unset.
fn env_secret(vars: &HashMap<String, String>, var: &str) -> Option<SecretString> {
    vars.get(var)
        .map(|v| v.trim())
        .filter(|v| !v.is_empty())
        .map(SecretString::from)
}

/// The CPU cores this process may use (1 if unknown).
fn available_cores() -> u32 {
    std::thread::available_parallelism().map_or(1, |n| u32::try_from(n.get()).unwrap_or(u32::MAX))
}

/// `DB_MAX_CONNECTIONS` when unset. PostgreSQL: 20, shared out among the HTTP workers. SQLite: four per
/// core, at least 8: its statements run on one thread per connection and it writes one at a time, so a pool
/// much larger than the cores adds threads (each with a glibc malloc arena that keeps what it freed), not
/// speed; but too small a pool leaves the cores idle while each connection's thread hands results back.
/// Measured on 2 cores (`bench/ab_list.sh`, `bench/ab_writes.sh`, docs/BENCHMARKS.md): the task list at 4
/// connections 7,728 req/s, at 8 10,660, at 20 10,508 (and 9,846 in the other run); writes alike at 4 and 20;
/// peak memory under `make bench` 64 MiB at 20.
fn default_pool_size(url: Option<&DatabaseUrl>, cores: u32) -> u32 {
    match url {
        Some(url) if url.is_sqlite() => cores.saturating_mul(4).max(8),
        _ => 20,
    }
}

impl Settings {
    /// How the api connects to its database: the pool size and session-cache age configured here, the rest
    /// the persistence crate's defaults.
    pub fn connect_options(&self) -> ConnectOptions {
        ConnectOptions {
            max_connections: self.db_max_connections,
            acquire_timeout: self.db_acquire_timeout,
            session_cache_max_age: self.session_cache_max_age,
            ..ConnectOptions::default()
        }
    }
}

/// The origin (`scheme://host[:port]`) of a URL that [`MailSettings`] checked starts with `http(s)://`.
fn origin_of(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("https", url));
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let default_port = if scheme == "https" { ":443" } else { ":80" };
    format!(
        "{scheme}://{}",
        authority
            .strip_suffix(default_port)
            .unwrap_or(authority)
            .to_ascii_lowercase()
    )
}

/// `DB_ACQUIRE_TIMEOUT_MS`: 50 ms to 5 s. Under a second keeps API.md's promise that no request waits
/// longer than that for its `503` when the database has gone away.
fn db_acquire_timeout(env: &Env<'_>) -> std::time::Duration {
    const RANGE: std::ops::RangeInclusive<u64> = 50..=5_000;
    let ms: u64 = env.parse("DB_ACQUIRE_TIMEOUT_MS", 500);
    if !RANGE.contains(&ms) {
        env.report(ConfigError::new(
            "DB_ACQUIRE_TIMEOUT_MS",
            format!("must be {} to {} (ms)", RANGE.start(), RANGE.end()),
        ));
    }
    std::time::Duration::from_millis(ms)
}

/// `SESSION_CACHE_MAX_AGE_MS`: 0 (off) to one minute.
fn session_cache_max_age(env: &Env<'_>) -> std::time::Duration {
    const MAX_MS: u64 = 60_000;
    let ms: u64 = env.parse("SESSION_CACHE_MAX_AGE_MS", 1_000);
    if ms > MAX_MS {
        env.report(ConfigError::new(
            "SESSION_CACHE_MAX_AGE_MS",
            format!("must be at most {MAX_MS} (one minute)"),
        ));
    }
    std::time::Duration::from_millis(ms)
}

/// `BCRYPT_COST` (default 12): the hasher's constructor checks bcrypt's range; production asks for 10 or more.
fn password_hasher(env: &Env<'_>) -> Option<PasswordHasher> {
    let cost: u32 = env.parse("BCRYPT_COST", 12);
    let hasher = env.check(
        PasswordHasher::new(cost).map_err(|err| ConfigError::new("BCRYPT_COST", err.to_string())),
    )?;
    if env.production() && cost < MIN_PRODUCTION_BCRYPT_COST {
        env.report(ConfigError::new(
            "BCRYPT_COST",
            format!("must be at least {MIN_PRODUCTION_BCRYPT_COST} in production"),
        ));
    }
    Some(hasher)
}

#[cfg(test)]
mod tests {
    use secrecy::ExposeSecret;
    use securecrud_auth::KeyAlgorithm;

    use super::*;

    /// A secret as `openssl rand -base64 48` makes them.
    const RANDOM_SECRET: &str = "q3J0N1x8vR2mZpL6tYc4Hw9sKdF7gBnE5aUoXiTjMlQe";

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
        assert_eq!(settings.server.bind_addr.to_string(), "127.0.0.1:8080");
        assert_eq!(settings.database_url.expose(), DEFAULT_DATABASE_URL);
        assert_eq!(settings.password_hasher.cost(), 12);
        assert_eq!(settings.jwt.access_ttl, Duration::minutes(15));
        assert_eq!(settings.jwt.refresh_ttl, Duration::days(7));
        assert!(settings.jwt.secret_generated);
        assert_eq!(settings.jwt.refresh_grace, Duration::seconds(10));
        assert!(settings.jwt.previous_secrets.is_empty());
        assert!(settings.server.cookie_secure);
        assert_eq!(settings.server.public_origin, "http://127.0.0.1:8080");
        assert_eq!(
            origin_of("https://App.example.com:443/base/"),
            "https://app.example.com"
        );
        assert!(settings.mfa.development_key);
        assert_eq!(settings.mfa.issuer, "SecureCRUD");
        let with_secret = Settings::from_vars(&vars(&[("JWT_SECRET", "dev secret")])).unwrap();
        assert_eq!(
            with_secret.mfa.key_material.expose_secret(),
            b"dev secret",
            "development seals TOTP secrets with JWT_SECRET"
        );
    }

    #[test]
    fn an_unparseable_database_url_is_refused_without_repeating_its_password() {
        let err = Settings::from_vars(&vars(&[(
            "DATABASE_URL",
            "postgres://app:s3cr/et+pa55@db:5432/app",
        )]))
        .unwrap_err();
        assert!(err.vars().contains(&"DATABASE_URL"));
        let shown = err.to_string();
        assert!(!shown.contains("s3cr"), "{shown}");
        assert!(shown.contains("percent-encoded"), "{shown}");
        let encoded = Settings::from_vars(&vars(&[(
            "DATABASE_URL",
            "postgres://app:s3cr%2Fet+pa55@db:5432/app",
        )]));
        assert!(encoded.is_ok());
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
    fn the_pool_size_defaults_by_engine_and_can_be_set() {
        let url = |raw: &str| DatabaseUrl::parse(raw).unwrap();
        let sqlite = url("sqlite://data/x.db?mode=rwc");
        let postgres = url("postgres://postgres@127.0.0.1/x");
        assert_eq!(default_pool_size(Some(&sqlite), 2), 8);
        assert_eq!(default_pool_size(Some(&sqlite), 1), 8);
        assert_eq!(default_pool_size(Some(&sqlite), 16), 64);
        assert_eq!(default_pool_size(Some(&postgres), 2), 20);
        assert_eq!(default_pool_size(Some(&postgres), 64), 20);
        let settings = Settings::from_vars(&vars(&[(
            "DATABASE_URL",
            "postgres://postgres@127.0.0.1/x",
        )]))
        .unwrap();
        assert_eq!(settings.db_max_connections, 20);
        let settings = Settings::from_vars(&vars(&[
            ("DATABASE_URL", "sqlite://data/x.db?mode=rwc"),
            ("DB_MAX_CONNECTIONS", "7"),
        ]))
        .unwrap();
        assert_eq!(settings.db_max_connections, 7);
    }

    #[test]
    fn bad_values_name_their_variable() {
        let cases: &[(&[(&str, &str)], &str)] = &[
            (&[("DATABASE_URL", "mysql://x")], "DATABASE_URL"),
            (&[("BCRYPT_COST", "abc")], "BCRYPT_COST"),
            (&[("BCRYPT_COST", "3")], "BCRYPT_COST"),
            (&[("APP_ENV", "staging")], "APP_ENV"),
            (&[("BIND_ADDR", "nowhere")], "BIND_ADDR"),
            (&[("ACCESS_TOKEN_TTL_SECS", "0")], "ACCESS_TOKEN_TTL_SECS"),
            (&[("DB_MAX_CONNECTIONS", "-1")], "DB_MAX_CONNECTIONS"),
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
            assert_eq!(err.vars(), [*var], "{pairs:?}");
            assert!(err.to_string().contains(var));
        }
    }

    #[test]
    fn production_refuses_a_missing_or_short_secret_and_a_low_cost() {
        let long = RANDOM_SECRET.to_owned();
        let hs256 = ("JWT_ALGORITHM", "HS256");
        let mail = [
            ("PUBLIC_BASE_URL", "https://app.example.com"),
            ("SMTP_URL", "smtps://mail.example.com"),
        ];
        let missing =
            Settings::from_vars(&vars(&[("APP_ENV", "production"), hs256, mail[0], mail[1]]))
                .unwrap_err();
        assert!(missing.vars().contains(&"JWT_SECRET"));
        let short = Settings::from_vars(&vars(&[
            ("APP_ENV", "production"),
            hs256,
            mail[0],
            mail[1],
            ("JWT_SECRET", "short"),
        ]))
        .unwrap_err();
        assert!(short.vars().contains(&"JWT_SECRET"));
        let cheap = Settings::from_vars(&vars(&[
            ("APP_ENV", "production"),
            hs256,
            mail[0],
            mail[1],
            ("JWT_SECRET", &long),
            ("BCRYPT_COST", "8"),
        ]))
        .unwrap_err();
        assert!(cheap.vars().contains(&"BCRYPT_COST"));
        let ok = Settings::from_vars(&vars(&production(&long, &[]))).unwrap();
        assert!(!ok.jwt.secret_generated);
    }

    /// A complete production environment, with `extra` added or overriding.
    fn production<'a>(secret: &'a str, extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
        let mut pairs = vec![
            ("APP_ENV", "production"),
            ("JWT_ALGORITHM", "HS256"),
            ("JWT_SECRET", secret),
            ("PUBLIC_BASE_URL", "https://app.example.com"),
            ("SMTP_URL", "smtps://mail.example.com"),
            (
                "MFA_ENCRYPTION_KEY",
                "an MFA key of at least 32 bytes, for the tests",
            ),
        ];
        pairs.extend_from_slice(extra);
        pairs
    }

    #[test]
    fn production_fails_closed_naming_the_variable() {
        let long = RANDOM_SECRET.to_owned();
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
            (&[("MFA_ENCRYPTION_KEY", "")], "MFA_ENCRYPTION_KEY"),
            (&[("MFA_ENCRYPTION_KEY", "short")], "MFA_ENCRYPTION_KEY"),
            (&[("COOKIE_SECURE", "false")], "COOKIE_SECURE"),
        ];
        for (extra, var) in cases {
            let err = Settings::from_vars(&vars(&production(&long, extra))).unwrap_err();
            assert!(err.vars().contains(var), "{extra:?}");
        }
        let files = Settings::from_vars(&vars(&production(
            &long,
            &[("SMTP_URL", ""), ("MAIL_DIR", "/var/spool/securecrud")],
        )));
        assert!(files.is_ok(), "an explicit MAIL_DIR opts in to files");

        let exposed = Settings::from_vars(&vars(&[("BIND_ADDR", "0.0.0.0:8080")])).unwrap_err();
        assert!(
            exposed.vars().contains(&"APP_ENV"),
            "no silent development mode on a public address"
        );
        let on_purpose = Settings::from_vars(&vars(&[
            ("BIND_ADDR", "0.0.0.0:8080"),
            ("APP_ENV", "development"),
        ]));
        assert!(on_purpose.is_ok());
    }

    #[test]
    fn production_reports_every_missing_setting_at_once() {
        let err = Settings::from_vars(&vars(&[("APP_ENV", "production")])).unwrap_err();
        assert_eq!(
            err.vars(),
            [
                "PUBLIC_BASE_URL",
                "SMTP_URL",
                "JWT_PRIVATE_KEY_FILE",
                "JWT_SECRET",
                "MFA_ENCRYPTION_KEY"
            ]
        );
        let shown = err.to_string();
        assert!(
            shown.starts_with("invalid configuration (5 problems):"),
            "{shown}"
        );
        for var in err.vars() {
            assert!(shown.contains(&format!("\n  - {var}: ")), "{shown}");
        }
        let mixed = Settings::from_vars(&vars(&[
            ("BCRYPT_COST", "lots"),
            ("WORKERS", "0"),
            ("LOG_FORMAT", "xml"),
        ]))
        .unwrap_err();
        assert_eq!(mixed.vars(), ["WORKERS", "LOG_FORMAT", "BCRYPT_COST"]);
    }

    #[test]
    fn an_unknown_algorithm_is_reported_without_its_consequences() {
        let err = Settings::from_vars(&vars(&[
            ("JWT_ALGORITHM", "RS256"),
            ("JWT_PRIVATE_KEY_FILE", "/tmp/jwt.pem"),
        ]))
        .unwrap_err();
        assert_eq!(err.vars(), ["JWT_ALGORITHM"]);
    }

    #[test]
    fn the_public_url_follows_the_bind_address_in_development() {
        let moved = Settings::from_vars(&vars(&[("BIND_ADDR", "127.0.0.1:8082")])).unwrap();
        assert_eq!(moved.mail.public_base_url, "http://127.0.0.1:8082");
        assert_eq!(moved.jwt.issuer, "http://127.0.0.1:8082");
        assert_eq!(moved.server.public_origin, "http://127.0.0.1:8082");
        let everywhere = Settings::from_vars(&vars(&[
            ("BIND_ADDR", "0.0.0.0:9000"),
            ("APP_ENV", "development"),
        ]))
        .unwrap();
        assert_eq!(everywhere.mail.public_base_url, "http://127.0.0.1:9000");
        let v6 = Settings::from_vars(&vars(&[("BIND_ADDR", "[::1]:8083")])).unwrap();
        assert_eq!(v6.mail.public_base_url, "http://[::1]:8083");
        let explicit = Settings::from_vars(&vars(&[
            ("BIND_ADDR", "127.0.0.1:8082"),
            ("PUBLIC_BASE_URL", "https://app.example.com/"),
        ]))
        .unwrap();
        assert_eq!(explicit.mail.public_base_url, "https://app.example.com");
    }

    #[test]
    fn a_host_name_as_bind_address_says_an_ip_is_needed() {
        let err = Settings::from_vars(&vars(&[("BIND_ADDR", "localhost:8089")])).unwrap_err();
        assert_eq!(err.vars(), ["BIND_ADDR"]);
        assert!(err.to_string().contains("use 127.0.0.1"), "{err}");
    }

    #[test]
    fn production_refuses_weak_settings_all_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("jwt.pem");
        crate::keyring::write_new_key(KeyAlgorithm::EdDsa, &key, false).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
        }
        let key = key.display().to_string();
        let pattern = "a".repeat(40);
        let err = Settings::from_vars(&vars(&[
            ("APP_ENV", "production"),
            ("JWT_ALGORITHM", "EdDSA"),
            ("JWT_PRIVATE_KEY_FILE", &key),
            ("JWT_SECRET", &pattern),
            ("MFA_ENCRYPTION_KEY", "abcabcabcabcabcabcabcabcabcabcabcabc"),
            ("PUBLIC_BASE_URL", "https:// evil.example"),
            ("SMTP_URL", "smtp://mail.example.com:25"),
            ("TRUSTED_PROXIES", "10.0.0.1, 0.0.0.0/0"),
            ("RATE_LIMIT_AUTH_PER_MIN", "0"),
        ]))
        .unwrap_err();
        let mut found = err.vars();
        found.sort_unstable();
        let mut expected = vec![
            "JWT_SECRET",
            "MFA_ENCRYPTION_KEY",
            "PUBLIC_BASE_URL",
            "SMTP_URL",
            "TRUSTED_PROXIES",
            "RATE_LIMIT_AUTH_PER_MIN",
        ];
        if cfg!(unix) {
            expected.push("JWT_PRIVATE_KEY_FILE");
        }
        expected.sort_unstable();
        assert_eq!(found, expected, "{err}");
        let shown = err.to_string();
        assert!(shown.contains("chmod 600"), "{shown}");
        assert!(shown.contains("openssl rand"), "{shown}");

        let same = Settings::from_vars(&vars(&production(
            RANDOM_SECRET,
            &[("MFA_ENCRYPTION_KEY", RANDOM_SECRET)],
        )))
        .unwrap_err();
        assert_eq!(
            same.vars(),
            ["MFA_ENCRYPTION_KEY"],
            "the MFA key equal to JWT_SECRET"
        );
        for allowed in [
            "smtp://127.0.0.1:25",
            "smtp://localhost:25",
            "smtp://mail.example.com:587?tls=required",
            "smtps://user:pass@mail.example.com:465",
        ] {
            let ok =
                Settings::from_vars(&vars(&production(RANDOM_SECRET, &[("SMTP_URL", allowed)])));
            assert!(ok.is_ok(), "{allowed}: {:?}", ok.err());
        }
        let opted_in = Settings::from_vars(&vars(&production(
            RANDOM_SECRET,
            &[
                ("SMTP_URL", "smtp://mail:1025"),
                ("SMTP_ALLOW_PLAINTEXT", "true"),
            ],
        )));
        assert!(opted_in.is_ok(), "{:?}", opted_in.err());
    }

    #[test]
    fn protection_defaults_follow_the_contract() {
        let settings = Settings::from_vars(&vars(&[])).unwrap();
        let p = &settings.protection;
        assert!(settings.server.trusted_proxies.is_empty());
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
            .server
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
            settings.server.cors_allowed_origins,
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

    #[test]
    fn production_signs_with_a_key_pair_by_default_and_needs_its_file() {
        let secret = RANDOM_SECRET.to_owned();
        let base = [
            ("APP_ENV", "production"),
            ("PUBLIC_BASE_URL", "https://app.example.com"),
            ("SMTP_URL", "smtps://mail.example.com"),
            ("JWT_SECRET", secret.as_str()),
            (
                "MFA_ENCRYPTION_KEY",
                "an MFA key of at least 32 bytes, for the tests",
            ),
        ];
        let err = Settings::from_vars(&vars(&base)).unwrap_err();
        assert!(err.vars().contains(&"JWT_PRIVATE_KEY_FILE"));
        assert!(err.to_string().contains("api keys generate"), "{err}");

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("signing.pem");
        let path_text = path.to_string_lossy().into_owned();
        let mut with_file = base.to_vec();
        with_file.push(("JWT_PRIVATE_KEY_FILE", &path_text));
        let unreadable = Settings::from_vars(&vars(&with_file)).unwrap_err();
        assert!(unreadable.vars().contains(&"JWT_PRIVATE_KEY_FILE"));

        crate::keyring::write_new_key(KeyAlgorithm::EdDsa, &path, false).unwrap();
        let ok = Settings::from_vars(&vars(&with_file)).unwrap();
        assert_eq!(ok.jwt.algorithm, KeyAlgorithm::EdDsa);
        assert_eq!(
            ok.jwt.issuer, "https://app.example.com",
            "JWT_ISSUER defaults to PUBLIC_BASE_URL"
        );
        let without_secret: Vec<_> = with_file
            .iter()
            .copied()
            .filter(|(name, _)| *name != "JWT_SECRET")
            .collect();
        let err = Settings::from_vars(&vars(&without_secret)).unwrap_err();
        assert!(
            err.vars().contains(&"JWT_SECRET"),
            "refresh rotation is never keyed by the signing key"
        );

        let mut wrong_alg = with_file.clone();
        wrong_alg.push(("JWT_ALGORITHM", "ES256"));
        assert!(
            Settings::from_vars(&vars(&wrong_alg))
                .unwrap_err()
                .vars()
                .contains(&"JWT_PRIVATE_KEY_FILE")
        );
        let mut short_retire = with_file.clone();
        short_retire.push(("JWT_KEY_RETIRE_SECS", "60"));
        assert!(
            Settings::from_vars(&vars(&short_retire))
                .unwrap_err()
                .vars()
                .contains(&"JWT_KEY_RETIRE_SECS")
        );
        let mut bad_alg = base.to_vec();
        bad_alg.push(("JWT_ALGORITHM", "RS256"));
        assert!(
            Settings::from_vars(&vars(&bad_alg))
                .unwrap_err()
                .vars()
                .contains(&"JWT_ALGORITHM")
        );
    }

    #[test]
    fn development_needs_no_key_and_refuses_a_key_file_with_hs256() {
        let dev = Settings::from_vars(&vars(&[])).unwrap();
        assert_eq!(dev.jwt.algorithm, KeyAlgorithm::Hs256);
        assert_eq!(dev.jwt.issuer, "http://127.0.0.1:8080");
        let eddsa = Settings::from_vars(&vars(&[("JWT_ALGORITHM", "EdDSA")])).unwrap();
        assert!(eddsa.jwt.private_key_file.is_none());
        let err =
            Settings::from_vars(&vars(&[("JWT_PRIVATE_KEY_FILE", "/tmp/x.pem")])).unwrap_err();
        assert!(err.vars().contains(&"JWT_PRIVATE_KEY_FILE"));
    }

    #[test]
    fn the_shutdown_timeout_defaults_to_30_s_and_is_bounded() {
        assert_eq!(
            Settings::from_vars(&vars(&[]))
                .unwrap()
                .server
                .shutdown_timeout_secs,
            30
        );
        let five = Settings::from_vars(&vars(&[("SHUTDOWN_TIMEOUT_SECS", "5")])).unwrap();
        assert_eq!(five.server.shutdown_timeout_secs, 5);
        for bad in ["0", "-1", "3601", "soon"] {
            let err = Settings::from_vars(&vars(&[("SHUTDOWN_TIMEOUT_SECS", bad)])).unwrap_err();
            assert!(err.vars().contains(&"SHUTDOWN_TIMEOUT_SECS"), "{bad}");
        }
    }

    #[test]
    fn the_acquire_timeout_defaults_to_half_a_second_and_is_bounded() {
        let default = Settings::from_vars(&vars(&[])).unwrap();
        assert_eq!(
            default.connect_options().acquire_timeout,
            std::time::Duration::from_millis(500)
        );
        let set = Settings::from_vars(&vars(&[("DB_ACQUIRE_TIMEOUT_MS", "800")])).unwrap();
        assert_eq!(
            set.connect_options().acquire_timeout,
            std::time::Duration::from_millis(800)
        );
        for bad in ["0", "49", "5001", "-1", "soon"] {
            let err = Settings::from_vars(&vars(&[("DB_ACQUIRE_TIMEOUT_MS", bad)])).unwrap_err();
            assert!(err.vars().contains(&"DB_ACQUIRE_TIMEOUT_MS"), "{bad}");
        }
    }

    #[test]
    fn metrics_are_off_unless_an_address_is_given() {
        assert_eq!(
            Settings::from_vars(&vars(&[])).unwrap().server.metrics_addr,
            None
        );
        assert_eq!(
            Settings::from_vars(&vars(&[("METRICS_ADDR", "")]))
                .unwrap()
                .server
                .metrics_addr,
            None
        );
        let set = Settings::from_vars(&vars(&[("METRICS_ADDR", "127.0.0.1:9100")])).unwrap();
        assert_eq!(
            set.server.metrics_addr,
            Some(std::net::SocketAddr::from(([127, 0, 0, 1], 9100)))
        );
        let err = Settings::from_vars(&vars(&[("METRICS_ADDR", "9100")])).unwrap_err();
        assert!(err.vars().contains(&"METRICS_ADDR"));
    }
}
