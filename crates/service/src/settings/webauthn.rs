//! Passkeys (WebAuthn): `WEBAUTHN_RP_ID`, `WEBAUTHN_ORIGINS`.

use std::net::IpAddr;

use url::Url;

use super::{ConfigError, Env};

/// Who the api is to authenticators, and which web origins may run its ceremonies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebauthnSettings {
    /// `WEBAUTHN_RP_ID`: the domain passkeys are bound to (by default the host of `PUBLIC_BASE_URL`). A
    /// passkey made for it works on that domain and its subdomains, and nowhere else; changing it later
    /// makes every registered passkey unusable. `None`: passkeys are off, because the default would be an IP
    /// address (a `PUBLIC_BASE_URL` such as `https://10.0.0.5`), which browsers refuse as an RP ID.
    pub rp_id: Option<String>,
    /// The origins a ceremony may come from: `PUBLIC_BASE_URL`'s and `WEBAUTHN_ORIGINS` (comma-separated).
    /// In development a `PUBLIC_BASE_URL` on a loopback IP address (`http://127.0.0.1:8080`) counts as
    /// `http://localhost:8080`: browsers refuse an IP address as an RP ID.
    pub origins: Vec<Url>,
}

impl WebauthnSettings {
    pub(crate) fn from_env(env: &Env<'_>, public_base_url: &str) -> Self {
        let mut origins = Vec::new();
        // A PUBLIC_BASE_URL that does not parse is reported by its own check.
        if let Ok(url) = Url::parse(public_base_url) {
            origins.push(loopback_as_localhost(env, url));
        }
        for raw in env
            .get("WEBAUTHN_ORIGINS")
            .into_iter()
            .flat_map(|list| list.split(','))
            .map(str::trim)
            .filter(|raw| !raw.is_empty())
        {
            match parse_origin(raw) {
                Ok(origin) if !origins.contains(&origin) => origins.push(origin),
                Ok(_) => {}
                Err(why) => env.report(ConfigError::new(
                    "WEBAUTHN_ORIGINS",
                    format!("{raw:?} {why}"),
                )),
            }
        }
        let explicit = env
            .get("WEBAUTHN_RP_ID")
            .map(|rp_id| rp_id.trim().to_ascii_lowercase());
        let rp_id = match explicit {
            Some(rp_id) => rp_id,
            None => {
                let host = origins
                    .first()
                    .and_then(|origin| origin.host_str())
                    .unwrap_or("localhost")
                    .to_owned();
                if is_ip(&host) {
                    // Nothing to bind passkeys to: they are off (said at start), the rest works as before.
                    return Self {
                        rp_id: None,
                        origins,
                    };
                }
                host
            }
        };
        let variable = if env.get("WEBAUTHN_RP_ID").is_some() {
            "WEBAUTHN_RP_ID"
        } else {
            "PUBLIC_BASE_URL"
        };
        if let Err(why) = check_rp_id(&rp_id, &origins) {
            env.report(ConfigError::new(variable, why));
        } else {
            for origin in &origins {
                let host = origin.host_str().unwrap_or_default();
                if !(host == rp_id || host.ends_with(&format!(".{rp_id}"))) {
                    env.report(ConfigError::new(
                        variable,
                        format!(
                            "the WebAuthn RP ID {rp_id:?} must be the host of every accepted origin or a \
                             parent domain of it, and {origin} is neither (set WEBAUTHN_RP_ID and \
                             WEBAUTHN_ORIGINS together)",
                            origin = origin.origin().ascii_serialization()
                        ),
                    ));
                }
            }
        }
        Self {
            rp_id: Some(rp_id),
            origins,
        }
    }
}

/// In development, `http://127.0.0.1:8080` as `http://localhost:8080` (same scheme and port).
fn loopback_as_localhost(env: &Env<'_>, mut url: Url) -> Url {
    let loopback = url
        .host_str()
        .map(|host| host.trim_start_matches('[').trim_end_matches(']'))
        .and_then(|host| host.parse::<IpAddr>().ok())
        .is_some_and(|ip| ip.is_loopback());
    if loopback && !env.production() {
        // Cannot fail: an http(s) URL with a host can take another host.
        let _ = url.set_host(Some("localhost"));
    }
    strip_to_origin(url)
}

fn strip_to_origin(mut url: Url) -> Url {
    url.set_path("");
    url.set_query(None);
    url.set_fragment(None);
    url
}

/// A `WEBAUTHN_ORIGINS` entry: `https://host[:port]`, or `http://localhost[:port]`.
fn parse_origin(raw: &str) -> Result<Url, &'static str> {
    let url = Url::parse(raw).map_err(|_| "is not a URL")?;
    if !matches!(url.scheme(), "https" | "http") || url.host_str().is_none() {
        return Err("must be an https:// origin (or http://localhost)");
    }
    if url.scheme() == "http" && url.host_str() != Some("localhost") {
        return Err("must be https:// (browsers allow WebAuthn over http only on localhost)");
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("must not carry a user name or password");
    }
    if url.path() != "/" || url.query().is_some() || url.fragment().is_some() {
        return Err("must be an origin only: scheme, host and port, no path");
    }
    Ok(strip_to_origin(url))
}

fn is_ip(host: &str) -> bool {
    host.starts_with('[') || host.parse::<IpAddr>().is_ok()
}

/// An RP ID is a domain name: not an IP address, no scheme, port or path, and not a bare top-level label
/// unless it is the very host of every origin (`localhost`, an intranet name).
fn check_rp_id(rp_id: &str, origins: &[Url]) -> Result<(), String> {
    if rp_id.is_empty() {
        return Err("the WebAuthn RP ID is empty".to_owned());
    }
    if is_ip(rp_id) {
        return Err(format!(
            "the WebAuthn RP ID {rp_id:?} is an IP address, which browsers refuse: set WEBAUTHN_RP_ID to \
             the domain name clients use"
        ));
    }
    let valid_labels = rp_id.split('.').all(|label| {
        !label.is_empty()
            && label.len() <= 63
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
    });
    if !valid_labels {
        return Err(format!(
            "the WebAuthn RP ID {rp_id:?} must be a domain name (no scheme, port or path)"
        ));
    }
    let only_host = origins
        .iter()
        .all(|origin| origin.host_str() == Some(rp_id));
    if !rp_id.contains('.') && !only_host {
        return Err(format!(
            "the WebAuthn RP ID {rp_id:?} is a top-level domain: use the site's own domain"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::Settings;

    fn settings(vars: &[(&str, &str)]) -> Result<WebauthnSettings, Vec<String>> {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Settings::from_vars(&vars)
            .map(|settings| settings.webauthn)
            .map_err(|errors| {
                errors
                    .problems()
                    .iter()
                    .map(|e| format!("{}: {}", e.var, e.message))
                    .collect()
            })
    }

    #[test]
    fn the_rp_id_defaults_to_the_public_host_and_a_loopback_address_to_localhost() {
        let local = settings(&[]).unwrap();
        assert_eq!(local.rp_id.as_deref(), Some("localhost"));
        assert_eq!(
            local.origins,
            [Url::parse("http://localhost:8080").unwrap()]
        );
        let public = settings(&[("PUBLIC_BASE_URL", "https://app.example.com")]).unwrap();
        assert_eq!(public.rp_id.as_deref(), Some("app.example.com"));
    }

    #[test]
    fn an_rp_id_that_is_not_a_parent_of_every_origin_is_refused_at_start() {
        let base = ("PUBLIC_BASE_URL", "https://app.example.com");
        let shared = settings(&[
            base,
            ("WEBAUTHN_RP_ID", "Example.COM"),
            (
                "WEBAUTHN_ORIGINS",
                "https://www.example.com, https://app.example.com",
            ),
        ])
        .unwrap();
        assert_eq!(shared.rp_id.as_deref(), Some("example.com"));
        assert_eq!(shared.origins.len(), 2, "listed once each");
        for (rp_id, origins) in [
            ("example.com", "https://evilexample.com"),
            ("example.com", "https://example.org"),
            ("app.example.com", "https://example.com"),
            ("other.example.com", ""),
        ] {
            let errors = settings(&[
                base,
                ("WEBAUTHN_RP_ID", rp_id),
                ("WEBAUTHN_ORIGINS", origins),
            ])
            .unwrap_err();
            assert!(
                errors.iter().any(|e| e.contains("WEBAUTHN_RP_ID")),
                "{rp_id} with {origins}: {errors:?}"
            );
        }
        // Derived from an IP address, passkeys are off (the rest starts as before); set on purpose, refused.
        let derived = settings(&[("PUBLIC_BASE_URL", "https://10.0.0.5")]).unwrap();
        assert_eq!(derived.rp_id, None);
        let ip = settings(&[base, ("WEBAUTHN_RP_ID", "10.0.0.5")]).unwrap_err();
        assert!(ip.iter().any(|e| e.contains("IP address")), "{ip:?}");
    }

    #[test]
    fn rp_ids_are_domains() {
        let app = [Url::parse("https://app.example.com").unwrap()];
        let local = [Url::parse("http://localhost:8080").unwrap()];
        assert!(check_rp_id("example.com", &app).is_ok());
        assert!(check_rp_id("localhost", &local).is_ok());
        assert!(check_rp_id("intranet", &[Url::parse("https://intranet").unwrap()]).is_ok());
        for bad in [
            "",
            "127.0.0.1",
            "[::1]",
            "com",
            "https://example.com",
            "example.com:443",
            "a..b",
        ] {
            assert!(check_rp_id(bad, &app).is_err(), "{bad}");
        }
    }

    #[test]
    fn origins_are_https_or_localhost_without_a_path() {
        assert!(parse_origin("https://app.example.com").is_ok());
        assert!(parse_origin("http://localhost:3000").is_ok());
        for bad in [
            "http://app.example.com",
            "https://app.example.com/login",
            "https://user@app.example.com",
            "ftp://app.example.com",
            "app.example.com",
        ] {
            assert!(parse_origin(bad).is_err(), "{bad}");
        }
    }
}
