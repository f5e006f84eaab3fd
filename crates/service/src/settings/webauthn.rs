//! Passkeys (WebAuthn): `WEBAUTHN_RP_ID`, `WEBAUTHN_ORIGINS`.

use std::net::IpAddr;

use url::Url;

use super::{ConfigError, Env};

/// Who the api is to authenticators, and which web origins may run its ceremonies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebauthnSettings {
    /// `WEBAUTHN_RP_ID`: the domain passkeys are bound to (by default the host of `PUBLIC_BASE_URL`). A
    /// passkey made for it works on that domain and its subdomains, and nowhere else; changing it later
    /// makes every registered passkey unusable.
    pub rp_id: String,
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
        let rp_id = match env.get("WEBAUTHN_RP_ID") {
            Some(rp_id) => rp_id.trim().to_ascii_lowercase(),
            None => origins
                .first()
                .and_then(|origin| origin.host_str())
                .unwrap_or("localhost")
                .to_owned(),
        };
        let variable = if env.get("WEBAUTHN_RP_ID").is_some() {
            "WEBAUTHN_RP_ID"
        } else {
            "PUBLIC_BASE_URL"
        };
        if let Err(why) = check_rp_id(&rp_id) {
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
        Self { rp_id, origins }
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

/// An RP ID is a domain name: not an IP address, no scheme, port or path, and not a bare top-level label
/// (other than `localhost`).
fn check_rp_id(rp_id: &str) -> Result<(), String> {
    if rp_id.is_empty() {
        return Err("the WebAuthn RP ID is empty".to_owned());
    }
    if rp_id.parse::<IpAddr>().is_ok() || rp_id.starts_with('[') {
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
    if !rp_id.contains('.') && rp_id != "localhost" {
        return Err(format!(
            "the WebAuthn RP ID {rp_id:?} is a top-level domain: use the site's own domain"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rp_ids_are_domains() {
        assert!(check_rp_id("example.com").is_ok());
        assert!(check_rp_id("localhost").is_ok());
        for bad in [
            "",
            "127.0.0.1",
            "[::1]",
            "com",
            "https://example.com",
            "example.com:443",
            "a..b",
        ] {
            assert!(check_rp_id(bad).is_err(), "{bad}");
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
