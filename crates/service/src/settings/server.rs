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
    pub(crate) fn from_env(env: &Env<'_>) -> Self {
        let bind_addr = bind_addr(env);
        if env.get("APP_ENV").is_none() && !bind_addr.ip().is_loopback() {
            env.report(ConfigError::new(
                "APP_ENV",
                "must be set when BIND_ADDR is not a loopback address: `production` (or `development` \
                 on purpose); an unset APP_ENV means development, whose defaults are not safe to expose",
            ));
        }
        let cookie_secure = env.parse("COOKIE_SECURE", true);
        if !cookie_secure && env.production() {
            env.report(ConfigError::new(
                "COOKIE_SECURE",
                "cannot be false in production: the session cookie must only travel over HTTPS",
            ));
        }
        let shutdown_timeout_secs = env.positive("SHUTDOWN_TIMEOUT_SECS", 30);
        if shutdown_timeout_secs > MAX_SHUTDOWN_TIMEOUT_SECS {
            env.report(ConfigError::new(
                "SHUTDOWN_TIMEOUT_SECS",
                format!("must be at most {MAX_SHUTDOWN_TIMEOUT_SECS} seconds"),
            ));
        }
        Self {
            public_origin: String::new(),
            cookie_secure,
            bind_addr,
            workers: env.get("WORKERS").map(|_| env.positive("WORKERS", 1_usize)),
            cors_allowed_origins: env
                .check(cors_origins(env.get("CORS_ALLOWED_ORIGINS")))
                .unwrap_or_default(),
            trusted_proxies: trusted_proxies_checked(env),
            log_format: match env.get("LOG_FORMAT") {
                None | Some("text") => LogFormat::Text,
                Some("json") => LogFormat::Json,
                Some(_) => {
                    env.report(ConfigError::new("LOG_FORMAT", "must be 'text' or 'json'"));
                    LogFormat::Text
                }
            },
            shutdown_timeout_secs,
            metrics_addr: env.get("METRICS_ADDR").and_then(|raw| {
                env.check(raw.parse().map_err(|_| {
                    ConfigError::new(
                        "METRICS_ADDR",
                        format!(
                            "must be an IP address and port such as 127.0.0.1:9100, not {raw:?}{}",
                            host_name_hint(raw)
                        ),
                    )
                }))
            }),
        }
    }
}

/// The address the api listens on (`BIND_ADDR`, default `127.0.0.1:8080`): an IP address and a port.
fn bind_addr(env: &Env<'_>) -> SocketAddr {
    let default = SocketAddr::from(([127, 0, 0, 1], 8080));
    let Some(raw) = env.get("BIND_ADDR") else {
        return default;
    };
    raw.parse().unwrap_or_else(|_| {
        env.report(ConfigError::new(
            "BIND_ADDR",
            format!(
                "must be an IP address and port such as 127.0.0.1:8080 or [::1]:8080, not {raw:?}{}",
                host_name_hint(raw)
            ),
        ));
        default
    })
}

/// A hint for an address given with a host name (`localhost:8080`), which a listener cannot bind.
fn host_name_hint(raw: &str) -> &'static str {
    match raw.rsplit_once(':') {
        Some(("localhost", _)) => {
            " (a host name is not accepted: use 127.0.0.1 for localhost, or 0.0.0.0 for every interface)"
        }
        Some((host, _)) if host.chars().any(|c| c.is_ascii_alphabetic()) && !host.contains('[') => {
            " (a host name is not accepted: give the IP address of the interface to listen on)"
        }
        _ => "",
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

/// `TRUSTED_PROXIES`, refusing in production a range of every address (`0.0.0.0/0`, `::/0`): it would let
/// any client choose the address the limits, sessions and audit trail see by sending `X-Forwarded-For`.
fn trusted_proxies_checked(env: &Env<'_>) -> Vec<IpNet> {
    let nets = env
        .check(trusted_proxies(env.get("TRUSTED_PROXIES")))
        .unwrap_or_default();
    if env.production() && nets.iter().any(|net| net.prefix_len() == 0) {
        env.report(ConfigError::new(
            "TRUSTED_PROXIES",
            "cannot hold a range of every address (/0) in production: any client could then choose its \
             own address with X-Forwarded-For; list your proxies' addresses",
        ));
    }
    nets
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
