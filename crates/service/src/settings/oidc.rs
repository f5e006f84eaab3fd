//! Sign in with an OpenID Connect provider: `OIDC_PROVIDERS`, per provider `OIDC_<NAME>_*`, and
//! `OIDC_REDIRECT_ALLOWLIST`.

use std::fmt;

use secrecy::SecretString;
use url::Url;

use super::{ConfigError, Env};

/// The longest provider name (it is a path segment and part of variable names).
const MAX_NAME_LEN: usize = 32;

/// The configured providers and the app URLs that may receive a result.
#[derive(Debug, Clone)]
pub struct OidcSettings {
    /// `OIDC_PROVIDERS` (comma-separated names), each with its own variables; none: the routes list nothing.
    pub providers: Vec<OidcProviderSettings>,
    /// `OIDC_REDIRECT_ALLOWLIST`: the exact app URLs a flow may end at, compared as strings (a port, a path
    /// or anything else that differs is another URL).
    pub redirect_allowlist: Vec<String>,
    /// `OIDC_TIMEOUT_MS` (default 10000): the longest a request to a provider (discovery, keys, the code
    /// exchange) may take.
    pub timeout: std::time::Duration,
}

/// One provider, found by its issuer's discovery document.
#[derive(Clone)]
pub struct OidcProviderSettings {
    /// Lower case letters, digits and `_`, starting with a letter: the `{name}` of the routes.
    pub name: String,
    /// `OIDC_<NAME>_DISPLAY_NAME` (default: the name).
    pub display_name: String,
    /// `OIDC_<NAME>_ISSUER`: `https` (in development `http` too), as given: the provider's discovery
    /// document must name exactly this issuer (a trailing `/` makes another one).
    pub issuer: String,
    /// `OIDC_<NAME>_CLIENT_ID`.
    pub client_id: String,
    /// `OIDC_<NAME>_CLIENT_SECRET` or the first line of `OIDC_<NAME>_CLIENT_SECRET_FILE`; `None`: a public
    /// client (PKCE only).
    pub client_secret: Option<SecretString>,
    /// `OIDC_<NAME>_SCOPES` (default `openid email profile`; `openid` is always asked).
    pub scopes: Vec<String>,
    /// `OIDC_<NAME>_SIGNUP` (default `true`): whether a first sign-in may make an account.
    pub signup: bool,
    /// `{PUBLIC_BASE_URL}/api/v1/auth/oidc/{name}/callback`: what to register at the provider.
    pub redirect_uri: Url,
}

impl fmt::Debug for OidcProviderSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OidcProviderSettings")
            .field("name", &self.name)
            .field("display_name", &self.display_name)
            .field("issuer", &self.issuer)
            .field("client_id", &self.client_id)
            .field(
                "client_secret",
                &self.client_secret.as_ref().map(|_| "[redacted]"),
            )
            .field("scopes", &self.scopes)
            .field("signup", &self.signup)
            .field("redirect_uri", &self.redirect_uri.as_str())
            .finish()
    }
}

impl OidcSettings {
    pub(crate) fn from_env(env: &Env<'_>, public_base_url: &str) -> Self {
        let mut providers: Vec<OidcProviderSettings> = Vec::new();
        let mut names: Vec<String> = Vec::new();
        for raw in list(env.get("OIDC_PROVIDERS")) {
            let name = raw.to_ascii_lowercase();
            if let Err(why) = check_name(&name) {
                env.report(ConfigError::new("OIDC_PROVIDERS", format!("{raw:?} {why}")));
                continue;
            }
            if names.contains(&name) {
                env.report(ConfigError::new(
                    "OIDC_PROVIDERS",
                    format!("{raw:?} is listed twice"),
                ));
                continue;
            }
            names.push(name.clone());
            if let Some(provider) = provider(env, &name, public_base_url) {
                providers.push(provider);
            }
        }
        let mut redirect_allowlist = Vec::new();
        for raw in list(env.get("OIDC_REDIRECT_ALLOWLIST")) {
            match check_app_url(env, raw) {
                Ok(()) => redirect_allowlist.push(raw.to_owned()),
                Err(why) => env.report(ConfigError::new(
                    "OIDC_REDIRECT_ALLOWLIST",
                    format!("{raw:?} {why}"),
                )),
            }
        }
        if !providers.is_empty() && redirect_allowlist.is_empty() {
            env.report(ConfigError::new(
                "OIDC_REDIRECT_ALLOWLIST",
                "is needed with OIDC_PROVIDERS: the app URLs that may receive a sign-in's result",
            ));
        }
        Self {
            providers,
            redirect_allowlist,
            timeout: env.millis("OIDC_TIMEOUT_MS", 10_000),
        }
    }

    /// Whether `redirect_uri` is on the allowlist, exactly.
    pub fn allows_redirect(&self, redirect_uri: &str) -> bool {
        self.redirect_allowlist
            .iter()
            .any(|url| url == redirect_uri)
    }
}

fn list(value: Option<&str>) -> impl Iterator<Item = &str> {
    value
        .into_iter()
        .flat_map(|list| list.split(','))
        .map(str::trim)
        .filter(|item| !item.is_empty())
}

fn check_name(name: &str) -> Result<(), &'static str> {
    let mut chars = name.chars();
    let starts_with_letter = chars.next().is_some_and(|c| c.is_ascii_lowercase());
    if !starts_with_letter
        || name.len() > MAX_NAME_LEN
        || !name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
    {
        return Err("is not a provider name: 1–32 letters, digits or `_`, starting with a letter");
    }
    Ok(())
}

/// The settings of provider `name`, or `None` after reporting what is missing or wrong.
fn provider(env: &Env<'_>, name: &str, public_base_url: &str) -> Option<OidcProviderSettings> {
    let prefix = format!("OIDC_{}_", name.to_ascii_uppercase());
    let var = |suffix: &str| format!("{prefix}{suffix}");
    let issuer = match env.get(&var("ISSUER")) {
        None => {
            env.report(ConfigError::new(
                var("ISSUER"),
                "is required for this provider",
            ));
            None
        }
        Some(raw) => match check_issuer(env, raw) {
            Ok(()) => Some(raw.to_owned()),
            Err(why) => {
                env.report(ConfigError::new(var("ISSUER"), format!("{raw:?} {why}")));
                None
            }
        },
    };
    let client_id = env.get(&var("CLIENT_ID")).map(str::to_owned);
    if client_id.is_none() {
        env.report(ConfigError::new(
            var("CLIENT_ID"),
            "is required for this provider",
        ));
    }
    let client_secret = client_secret(env, &var("CLIENT_SECRET"), &var("CLIENT_SECRET_FILE"));
    let mut scopes: Vec<String> = env
        .get(&var("SCOPES"))
        .unwrap_or("openid email profile")
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    if !scopes.iter().any(|scope| scope == "openid") {
        scopes.insert(0, "openid".to_owned());
    }
    let signup = match env.get(&var("SIGNUP")) {
        None | Some("true") => true,
        Some("false") => false,
        Some(other) => {
            env.report(ConfigError::new(
                var("SIGNUP"),
                format!("{other:?} is neither true nor false"),
            ));
            true
        }
    };
    let redirect_uri = Url::parse(&format!(
        "{}/api/v1/auth/oidc/{name}/callback",
        public_base_url.trim_end_matches('/')
    ))
    .ok()?;
    Some(OidcProviderSettings {
        name: name.to_owned(),
        display_name: env.get(&var("DISPLAY_NAME")).unwrap_or(name).to_owned(),
        issuer: issuer?,
        client_id: client_id?,
        client_secret: client_secret?,
        scopes,
        signup,
        redirect_uri,
    })
}

/// The client secret from its variable or its file (`Some(None)`: neither, a public client).
fn client_secret(env: &Env<'_>, var: &str, file_var: &str) -> Option<Option<SecretString>> {
    match (env.get(var), env.get(file_var)) {
        (Some(_), Some(_)) => {
            env.report(ConfigError::new(
                file_var.to_owned(),
                format!("set either {var} or {file_var}, not both"),
            ));
            None
        }
        (Some(secret), None) => Some(Some(SecretString::from(secret.to_owned()))),
        (None, Some(path)) => match std::fs::read_to_string(path) {
            Ok(contents) => match contents.lines().next().map(str::trim) {
                Some(secret) if !secret.is_empty() => {
                    Some(Some(SecretString::from(secret.to_owned())))
                }
                _ => {
                    env.report(ConfigError::new(
                        file_var.to_owned(),
                        format!("{path}: the file is empty"),
                    ));
                    None
                }
            },
            Err(err) => {
                env.report(ConfigError::new(
                    file_var.to_owned(),
                    format!("{path}: {err}"),
                ));
                None
            }
        },
        (None, None) => Some(None),
    }
}

/// An issuer: an absolute `https` URL (`http` accepted in development), without query or fragment.
fn check_issuer(env: &Env<'_>, raw: &str) -> Result<(), &'static str> {
    let url = Url::parse(raw).map_err(|_| "is not an absolute URL")?;
    match url.scheme() {
        "https" => {}
        "http" if !env.production() => {}
        "http" => return Err("must be https in production"),
        _ => return Err("must be an https URL"),
    }
    if url.query().is_some() || url.fragment().is_some() || !url.username().is_empty() {
        return Err("must have no query, fragment or user name");
    }
    Ok(())
}

/// An app URL a result may be sent to: absolute `http(s)` without fragment or user info (`https` in
/// production, except on a loopback host, where native apps listen).
fn check_app_url(env: &Env<'_>, raw: &str) -> Result<(), &'static str> {
    let url = Url::parse(raw).map_err(|_| "is not an absolute URL")?;
    if url.as_str() != raw && url.as_str() != format!("{raw}/") {
        // What the client sends is compared with the text as given: text that a parser would rewrite
        // (upper-case host, default port, dot segments) could never match.
        return Err(
            "is not in its normal form (lower-case scheme and host, no default port, no dot segments)",
        );
    }
    if url.fragment().is_some() || !url.username().is_empty() || url.password().is_some() {
        return Err("must have no fragment and no user info");
    }
    let loopback = matches!(url.host_str(), Some("localhost" | "127.0.0.1" | "[::1]"));
    match url.scheme() {
        "https" => Ok(()),
        "http" if !env.production() || loopback => Ok(()),
        "http" => Err("must be https in production (http only on localhost)"),
        _ => Err("must be an http or https URL"),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use crate::Settings;

    fn settings(pairs: &[(&str, &str)]) -> Result<Settings, crate::ConfigErrors> {
        let vars: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Settings::from_vars(&vars)
    }

    #[test]
    fn a_provider_is_read_from_its_own_variables() {
        let settings = settings(&[
            ("PUBLIC_BASE_URL", "https://api.example.com"),
            ("OIDC_PROVIDERS", "Corp"),
            ("OIDC_CORP_ISSUER", "http://127.0.0.1:9000"),
            ("OIDC_CORP_CLIENT_ID", "securecrud"),
            ("OIDC_CORP_CLIENT_SECRET", "s3cret"),
            ("OIDC_CORP_DISPLAY_NAME", "Corp SSO"),
            ("OIDC_CORP_SCOPES", "email"),
            (
                "OIDC_REDIRECT_ALLOWLIST",
                "https://app.example.com/signed-in, http://localhost:3000/cb",
            ),
        ])
        .unwrap();
        let corp = &settings.oidc.providers[0];
        assert_eq!(corp.name, "corp");
        assert_eq!(corp.display_name, "Corp SSO");
        assert_eq!(corp.scopes, ["openid", "email"]);
        assert!(corp.signup);
        assert_eq!(
            corp.redirect_uri.as_str(),
            "https://api.example.com/api/v1/auth/oidc/corp/callback"
        );
        assert!(!format!("{corp:?}").contains("s3cret"));
        assert!(
            settings
                .oidc
                .allows_redirect("https://app.example.com/signed-in")
        );
        for variant in [
            "https://app.example.com/signed-in/",
            "https://app.example.com:8443/signed-in",
            "https://app.example.com/signed-in/x",
            "https://evil@app.example.com/signed-in",
            "https://app.example.com/signed-in?x=1",
            "HTTPS://app.example.com/signed-in",
        ] {
            assert!(!settings.oidc.allows_redirect(variant), "{variant}");
        }
    }

    #[test]
    fn every_bad_provider_variable_is_named() {
        let err = settings(&[
            ("OIDC_PROVIDERS", "corp,9bad,corp"),
            ("OIDC_CORP_ISSUER", "ftp://idp.example.com"),
            ("OIDC_CORP_SIGNUP", "maybe"),
            ("OIDC_REDIRECT_ALLOWLIST", "https://user@app.example.com/cb"),
        ])
        .unwrap_err();
        assert_eq!(
            err.vars(),
            [
                "OIDC_CORP_ISSUER",
                "OIDC_CORP_CLIENT_ID",
                "OIDC_CORP_SIGNUP",
                "OIDC_PROVIDERS",
                "OIDC_PROVIDERS",
                "OIDC_REDIRECT_ALLOWLIST",
            ],
            "{err}"
        );
    }

    #[test]
    fn production_wants_https_issuers_and_apps() {
        let err = settings(&[
            ("APP_ENV", "production"),
            ("OIDC_PROVIDERS", "corp"),
            ("OIDC_CORP_ISSUER", "http://idp.example.com"),
            ("OIDC_CORP_CLIENT_ID", "securecrud"),
            (
                "OIDC_REDIRECT_ALLOWLIST",
                "http://app.example.com/cb,http://127.0.0.1:7777/cb",
            ),
        ])
        .unwrap_err();
        let problems: Vec<String> = err.problems().iter().map(ToString::to_string).collect();
        assert!(
            problems.iter().any(|p| p.starts_with("OIDC_CORP_ISSUER:")),
            "{problems:?}"
        );
        assert!(
            problems
                .iter()
                .any(|p| p.contains("OIDC_REDIRECT_ALLOWLIST: \"http://app.example.com/cb\"")),
            "{problems:?}"
        );
        assert!(
            !problems.iter().any(|p| p.contains("127.0.0.1:7777")),
            "{problems:?}"
        );
    }
}
