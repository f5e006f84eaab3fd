//! The HTTP server: `BIND_ADDR`, `WORKERS`, `CORS_ALLOWED_ORIGINS`, `TRUSTED_PROXIES`, `LOG_FORMAT`,
//! `SHUTDOWN_TIMEOUT_SECS`.

use std::net::{IpAddr, SocketAddr};

use ipnet::IpNet;

use super::{ConfigError, Env};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// What the HTTP layer and the binary need to serve.
#[derive(Debug, Clone)]
pub struct ServerSettings {
    pub bind_addr: SocketAddr,
    /// HTTP worker threads; `None` means one per core.
    pub workers: Option<usize>,
    /// Allowed CORS origins; empty means no cross-origin access; `*` any origin (without credentials).
    pub cors_allowed_origins: Vec<String>,
    /// `TRUSTED_PROXIES`: peers whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<IpNet>,
    pub log_format: LogFormat,
    /// `SHUTDOWN_TIMEOUT_SECS` (30): after SIGTERM/SIGINT, how long in-flight requests may take to finish
    /// before the server stops anyway.
    pub shutdown_timeout_secs: u64,
    /// `METRICS_ADDR`: where `GET /metrics` is served (Prometheus text), on a listener of its own, so that
    /// it is never exposed with the api; `None` (unset or empty) serves no metrics.
    pub metrics_addr: Option<SocketAddr>,
    /// `COOKIE_SECURE` (default true): whether the browser-session cookie is `Secure` (and so named
    /// `__Host-securecrud_refresh`); false (named `securecrud_refresh`) is refused in production.
    pub cookie_secure: bool,
    /// The origin of `PUBLIC_BASE_URL` (`https://app.example.com`): with `CORS_ALLOWED_ORIGINS`, the origins
    /// a request that uses the session cookie may come from. Set by [`super::Settings::from_vars`].
    pub public_origin: String,
}

/// The longest `SHUTDOWN_TIMEOUT_SECS` accepted: an hour.
const MAX_SHUTDOWN_TIMEOUT_SECS: u64 = 3600;

impl ServerSettings {
    pub(crate) fn from_env(env: &Env<'_>) -> Result<Self, ConfigError> {
        let bind_addr = env.parse("BIND_ADDR", SocketAddr::from(([127, 0, 0, 1], 8080)))?;
        if env.get("APP_ENV").is_none() && !bind_addr.ip().is_loopback() {
            return Err(ConfigError::new(
                "APP_ENV",
                "must be set when BIND_ADDR is not a loopback address: `production` (or `development` \
                 on purpose); an unset APP_ENV means development, whose defaults are not safe to expose",
            ));
        }
        let cookie_secure = env.parse("COOKIE_SECURE", true)?;
        if !cookie_secure && env.production() {
            return Err(ConfigError::new(
                "COOKIE_SECURE",
                "cannot be false in production: the session cookie must only travel over HTTPS",
            ));
        }
        Ok(Self {
            public_origin: String::new(),
            cookie_secure,
            bind_addr,
            workers: match env.get("WORKERS") {
                None => None,
                Some(_) => Some(env.positive("WORKERS", 1)?),
            },
            cors_allowed_origins: cors_origins(env.get("CORS_ALLOWED_ORIGINS"))?,
            trusted_proxies: trusted_proxies(env.get("TRUSTED_PROXIES"))?,
            log_format: match env.get("LOG_FORMAT") {
                None | Some("text") => LogFormat::Text,
                Some("json") => LogFormat::Json,
                Some(_) => return Err(ConfigError::new("LOG_FORMAT", "must be 'text' or 'json'")),
            },
            shutdown_timeout_secs: match env.positive("SHUTDOWN_TIMEOUT_SECS", 30)? {
                secs if secs > MAX_SHUTDOWN_TIMEOUT_SECS => {
                    return Err(ConfigError::new(
                        "SHUTDOWN_TIMEOUT_SECS",
                        format!("must be at most {MAX_SHUTDOWN_TIMEOUT_SECS} seconds"),
                    ));
                }
                secs => secs,
            },
            metrics_addr: match env.get("METRICS_ADDR").map(str::trim) {
                None | Some("") => None,
                Some(raw) => Some(raw.parse().map_err(|_| {
                    ConfigError::new(
                        "METRICS_ADDR",
                        format!("must be an address and port such as 127.0.0.1:9100, not {raw:?}"),
                    )
                })?),
            },
        })
    }
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
