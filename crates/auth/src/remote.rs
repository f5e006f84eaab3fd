//! Verifying against a running SecureCRUD api (feature `jwks`): [`JwksVerifier`] checks access tokens with the
//! public keys the api publishes, holding no secret; [`SessionCheck`] asks the api whether a token's session
//! is still live, for the operations that must see a logout at once.
//!
//! Both use one HTTP client (reqwest with rustls) and need a Tokio runtime (actix-web's is one).

use std::{
    collections::HashMap,
    sync::{Mutex, PoisonError},
    time::{Duration, Instant},
};

use sha2::{Digest, Sha256};

use crate::{
    AccessClaims, JwtVerifier, TokenError,
    keys::{PublicJwk, VerifyingKey},
};

/// How long a JWKS is kept when its response names no `max-age`.
const DEFAULT_JWKS_MAX_AGE: Duration = Duration::from_secs(300);
/// The longest a JWKS is kept, whatever its `max-age` says.
const LONGEST_JWKS_MAX_AGE: Duration = Duration::from_secs(3600);
/// The least time between two fetches caused by unknown `kid`s (or by failures): a flood of tokens with
/// made-up key ids costs the api one request per interval, not one per token.
const DEFAULT_MIN_REFETCH: Duration = Duration::from_secs(5);
/// How long past its expiry a key set is still used while fetches fail: after that every token is refused
/// (fail closed) rather than trusting keys the api may have retired or revoked since.
const STALE_KEYS_LIMIT: Duration = Duration::from_secs(3600);
/// How long one fetch or check may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// Why the api could not be asked.
#[derive(Debug, thiserror::Error)]
pub enum RemoteError {
    /// The request could not be made or its answer read.
    #[error("the request to {url} failed: {source}")]
    Request {
        /// The URL asked.
        url: String,
        /// Why.
        #[source]
        source: reqwest::Error,
    },
    /// The api answered an unexpected status.
    #[error("{url} answered {status}")]
    Status {
        /// The URL asked.
        url: String,
        /// The status it answered.
        status: u16,
    },
    /// The body was not a JWK Set.
    #[error("{url} did not answer a JWK Set")]
    NotAJwkSet {
        /// The URL asked.
        url: String,
    },
}

/// A JWK Set as published; keys this crate cannot use (RSA, encryption keys…) are skipped.
#[derive(serde::Deserialize)]
struct JwkSet {
    keys: Vec<serde_json::Value>,
}

/// When the cached set expires and when it may next be fetched early.
#[derive(Debug)]
struct Freshness {
    fresh_until: Option<Instant>,
    last_fetch: Option<Instant>,
}

/// Verifies access tokens with the keys of `/.well-known/jwks.json`, never needing a secret.
///
/// The set is fetched on first use and kept for the response's `Cache-Control: max-age` (five minutes
/// without one, an hour at most); a token whose `kid` is not in the set causes a new fetch, at most once per
/// [`JwksVerifier::min_refetch_interval`], so a rotation is followed within one request and made-up key ids
/// cannot flood the api. When a fetch fails the keys already known stay in use, for at most an hour past
/// their expiry (then every token is refused until a fetch succeeds). The algorithm of each key
/// is fixed by its JWK (`EdDSA` or `ES256`); a token's header never chooses it (see [`JwtVerifier`]).
///
/// Give it to a [`crate::guard::Guard`] to use the `actix` or `axum` extractors with it.
#[derive(Debug)]
pub struct JwksVerifier {
    url: String,
    client: reqwest::Client,
    verifier: JwtVerifier,
    freshness: Mutex<Freshness>,
    /// Serialises fetches, so that a burst of requests after expiry makes one fetch.
    fetching: tokio::sync::Mutex<()>,
    min_refetch: Duration,
    /// How many fetches were attempted, for monitoring.
    fetches: std::sync::atomic::AtomicU64,
    /// How many fetches ended (either way): a caller that waited for the lock through one does not fetch.
    fetches_ended: std::sync::atomic::AtomicU64,
}

impl JwksVerifier {
    /// A verifier of tokens issued by `issuer` for `audience`, with the keys published at `jwks_url`
    /// (the api's `jwks_uri`, e.g. `https://api.example.com/.well-known/jwks.json`).
    ///
    /// # Errors
    /// Only if the HTTP client cannot be built (no TLS backend).
    pub fn new(jwks_url: &str, issuer: &str, audience: &str) -> Result<Self, RemoteError> {
        Ok(Self {
            url: jwks_url.to_owned(),
            client: client(jwks_url)?,
            verifier: JwtVerifier::with_keys(Vec::new(), issuer, audience),
            freshness: Mutex::new(Freshness {
                fresh_until: None,
                last_fetch: None,
            }),
            fetching: tokio::sync::Mutex::new(()),
            min_refetch: DEFAULT_MIN_REFETCH,
            fetches: std::sync::atomic::AtomicU64::new(0),
            fetches_ended: std::sync::atomic::AtomicU64::new(0),
        })
    }

    /// The least time between two early fetches (default 5 s).
    #[must_use]
    pub fn min_refetch_interval(mut self, interval: Duration) -> Self {
        self.min_refetch = interval;
        self
    }

    /// How many times the key set was fetched (or a fetch attempted) so far.
    pub fn fetch_count(&self) -> u64 {
        self.fetches.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The keys in use now.
    pub fn keys(&self) -> Vec<VerifyingKey> {
        self.verifier.keys()
    }

    /// Verifies an access token, fetching the key set first when it has expired, and again (rate-bounded)
    /// when the token names a key not in it.
    ///
    /// # Errors
    /// [`TokenError::Expired`] or [`TokenError::Invalid`] (an unknown key after any allowed fetch is
    /// invalid). A failed fetch is logged by the caller's `log` and the known keys are used.
    pub async fn verify(&self, token: &str) -> Result<AccessClaims, TokenError> {
        if self.expired() {
            self.fetch_if(|v| v.expired()).await;
        }
        match self.verifier.verify(token) {
            Err(TokenError::UnknownKey) => {
                // Before any key set has loaded, waits for the fetch in flight (the first one, at start)
                // rather than refusing every request that arrives meanwhile; after, fetches early if allowed
                // (a rotation) and otherwise refuses at once (made-up key ids cannot queue requests).
                if self.never_loaded() || self.may_fetch_early() {
                    self.fetch_if(|v| v.may_fetch_early()).await;
                }
                self.verifier.verify(token).map_err(|err| match err {
                    TokenError::UnknownKey => TokenError::Invalid,
                    other => other,
                })
            }
            verified => verified,
        }
    }

    /// Fetches the key set now and uses it.
    ///
    /// # Errors
    /// When the api cannot be reached or answers something else than a JWK Set.
    pub async fn refresh(&self) -> Result<usize, RemoteError> {
        let _one_at_a_time = self.fetching.lock().await;
        self.fetch().await
    }

    fn expired(&self) -> bool {
        let freshness = self.freshness();
        freshness
            .fresh_until
            .is_none_or(|until| Instant::now() >= until)
            && freshness
                .last_fetch
                .is_none_or(|at| at.elapsed() >= self.min_refetch.min(Duration::from_secs(1)))
    }

    fn may_fetch_early(&self) -> bool {
        self.freshness()
            .last_fetch
            .is_none_or(|at| at.elapsed() >= self.min_refetch)
    }

    fn freshness(&self) -> std::sync::MutexGuard<'_, Freshness> {
        self.freshness
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether no fetch has brought a key set yet.
    fn never_loaded(&self) -> bool {
        self.freshness().fresh_until.is_none()
    }

    /// Fetches unless another caller fetched while this one waited, or `still_needed` no longer holds: a
    /// caller waits for one fetch at most, however many callers queue behind a slow one.
    async fn fetch_if(&self, still_needed: impl Fn(&Self) -> bool) {
        let ended = || {
            self.fetches_ended
                .load(std::sync::atomic::Ordering::Acquire)
        };
        let before = ended();
        let _one_at_a_time = self.fetching.lock().await;
        if ended() != before || !still_needed(self) {
            return;
        }
        if let Err(err) = self.fetch().await {
            let too_stale = self
                .freshness()
                .fresh_until
                .is_some_and(|until| until.elapsed() > STALE_KEYS_LIMIT);
            if too_stale {
                log::error!(
                    "fetching the JWKS failed, and the keys known expired over an hour ago: refusing \
                     every token until a fetch succeeds: {err}"
                );
                self.verifier.set_keys(Vec::new());
            } else {
                log::warn!("fetching the JWKS failed; using the keys known so far: {err}");
            }
        }
    }

    async fn fetch(&self) -> Result<usize, RemoteError> {
        let fetched = self.fetch_once().await;
        self.fetches_ended
            .fetch_add(1, std::sync::atomic::Ordering::Release);
        fetched
    }

    async fn fetch_once(&self) -> Result<usize, RemoteError> {
        self.freshness().last_fetch = Some(Instant::now());
        self.fetches
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let failed = |source| RemoteError::Request {
            url: self.url.clone(),
            source,
        };
        let response = self.client.get(&self.url).send().await.map_err(failed)?;
        if !response.status().is_success() {
            return Err(RemoteError::Status {
                url: self.url.clone(),
                status: response.status().as_u16(),
            });
        }
        let max_age = max_age(response.headers()).unwrap_or(DEFAULT_JWKS_MAX_AGE);
        let set: JwkSet = response.json().await.map_err(|_| RemoteError::NotAJwkSet {
            url: self.url.clone(),
        })?;
        let keys: Vec<VerifyingKey> = set
            .keys
            .into_iter()
            .filter_map(|value| serde_json::from_value::<PublicJwk>(value).ok())
            .filter_map(|jwk| VerifyingKey::from_jwk(&jwk).ok())
            .collect();
        let count = keys.len();
        self.verifier.set_keys(keys);
        self.freshness().fresh_until = Some(Instant::now() + max_age.min(LONGEST_JWKS_MAX_AGE));
        Ok(count)
    }
}

/// `max-age` of a `Cache-Control` header (`no-store` / `no-cache` count as zero).
fn max_age(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let value = headers.get(reqwest::header::CACHE_CONTROL)?.to_str().ok()?;
    let mut age = None;
    for directive in value.split(',').map(str::trim) {
        if directive.eq_ignore_ascii_case("no-store") || directive.eq_ignore_ascii_case("no-cache")
        {
            return Some(Duration::ZERO);
        }
        if let Some(secs) = directive
            .strip_prefix("max-age=")
            .and_then(|secs| secs.parse::<u64>().ok())
        {
            age = Some(Duration::from_secs(secs));
        }
    }
    age
}

fn client(url: &str) -> Result<reqwest::Client, RemoteError> {
    reqwest::Client::builder()
        .timeout(REQUEST_TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|source| RemoteError::Request {
            url: url.to_owned(),
            source,
        })
}

/// What the api said of a live session (the `X-Auth-*` headers of `/auth/check`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveSession {
    /// The user's id.
    pub user_id: String,
    /// The user's name now.
    pub username: String,
    /// The role as the api's database has it now (it may differ from the token's claim).
    pub role: String,
    /// The session's id.
    pub session_id: String,
}

/// Remembered answers of a [`SessionCheck`], by the SHA-256 of the token: when, and what.
type Answers = HashMap<[u8; 32], (Instant, Option<LiveSession>)>;

/// The largest number of answers a [`SessionCheck`] remembers (it forgets them all when full).
const SESSION_CHECK_CAPACITY: usize = 10_000;

/// Asks the api (`GET /api/v1/auth/check`) whether a token's session is still live: what a stateless
/// verifier cannot know (a logout, a password change, a deactivation before the token's `exp`). Each answer
/// is remembered for a short time (default 1 s; 0 asks every time), keyed by the token's SHA-256, so a busy
/// service asks once per token per interval. Use it, after the token itself verified, for the operations that
/// must see revocation at once; see the extractor `LiveSessionOnly` (`actix` or `axum`).
#[derive(Debug)]
pub struct SessionCheck {
    url: String,
    client: reqwest::Client,
    ttl: Duration,
    answers: Mutex<Answers>,
}

impl SessionCheck {
    /// Checks against `check_url` (e.g. `https://api.example.com/api/v1/auth/check`).
    ///
    /// # Errors
    /// Only if the HTTP client cannot be built.
    pub fn new(check_url: &str) -> Result<Self, RemoteError> {
        Ok(Self {
            url: check_url.to_owned(),
            client: client(check_url)?,
            ttl: Duration::from_secs(1),
            answers: Mutex::new(HashMap::new()),
        })
    }

    /// How long an answer is remembered (default 1 s; zero asks the api every time).
    #[must_use]
    pub fn remember_for(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    /// `Some` with who is calling when the token's session is live, `None` when the api refuses the token.
    ///
    /// # Errors
    /// When the api cannot be asked or answers anything but `204` or `401`: the caller should fail closed.
    pub async fn check(&self, access_token: &str) -> Result<Option<LiveSession>, RemoteError> {
        let key: [u8; 32] = Sha256::digest(access_token.as_bytes()).into();
        if !self.ttl.is_zero()
            && let Some((at, answer)) = self.remembered().get(&key)
            && at.elapsed() < self.ttl
        {
            return Ok(answer.clone());
        }
        let response = self
            .client
            .get(&self.url)
            .bearer_auth(access_token)
            .send()
            .await
            .map_err(|source| RemoteError::Request {
                url: self.url.clone(),
                source,
            })?;
        let answer = match response.status().as_u16() {
            204 => {
                let header = |name: &str| {
                    response
                        .headers()
                        .get(name)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default()
                        .to_owned()
                };
                Some(LiveSession {
                    user_id: header("x-auth-user-id"),
                    username: header("x-auth-username"),
                    role: header("x-auth-role"),
                    session_id: header("x-auth-session-id"),
                })
            }
            401 => None,
            status => {
                return Err(RemoteError::Status {
                    url: self.url.clone(),
                    status,
                });
            }
        };
        if !self.ttl.is_zero() {
            let mut answers = self.remembered();
            if answers.len() >= SESSION_CHECK_CAPACITY {
                answers.clear();
            }
            answers.insert(key, (Instant::now(), answer.clone()));
        }
        Ok(answer)
    }

    fn remembered(&self) -> std::sync::MutexGuard<'_, Answers> {
        self.answers.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use reqwest::header::{CACHE_CONTROL, HeaderMap, HeaderValue};

    use super::*;

    fn headers(value: &str) -> HeaderMap {
        let mut map = HeaderMap::new();
        map.insert(CACHE_CONTROL, HeaderValue::from_str(value).unwrap());
        map
    }

    #[test]
    fn max_age_is_read_from_cache_control() {
        assert_eq!(
            max_age(&headers("public, max-age=120")),
            Some(Duration::from_secs(120))
        );
        assert_eq!(max_age(&headers("no-store")), Some(Duration::ZERO));
        assert_eq!(max_age(&headers("public")), None);
        assert_eq!(max_age(&HeaderMap::new()), None);
    }
}
