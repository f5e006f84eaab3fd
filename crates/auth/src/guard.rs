//! The checks behind the framework guards, written once for actix-web ([`crate::actix`]) and axum
//! ([`crate::axum`]): read the bearer token, verify it, consult the revocation feed and the role, and say
//! why a request is refused in the api's own terms (status, problem `code`, `WWW-Authenticate`, body).
//!
//! A [`Guard`] holds a verifier (a [`JwtVerifier`], or with feature `jwks` a
//! [`crate::remote::JwksVerifier`]) and, with `jwks`, optionally a [`crate::feed::RevocationFeed`] (then
//! a session the feed says ended is refused) and a [`crate::remote::SessionCheck`] (for
//! [`LiveSessionOnly`]). The frameworks' extractors only turn a request into an `Authorization` header value
//! and a [`Refusal`] into a response.
//!
//! ```
//! use secrecy::SecretSlice;
//! use securecrud_auth::{JwtKeys, JwtVerifier, Role, guard::{Guard, Refusal}};
//! use uuid::Uuid;
//!
//! # tokio::runtime::Builder::new_current_thread().build()?.block_on(async {
//! let secret = SecretSlice::from(b"a secret of at least thirty-two bytes".to_vec());
//! let (issuer, audience) = ("https://api.example.com", "securecrud-api");
//! let keys = JwtKeys::new(&secret, &[], issuer, audience, time::Duration::minutes(15));
//! let token = keys.issue(Uuid::now_v7(), Uuid::now_v7(), Role::User)?.token;
//! let header = format!("Bearer {token}");
//!
//! let guard = Guard::new(JwtVerifier::new(&secret, &[], issuer, audience));
//! let who = guard.authenticate(Some(&header)).await?;
//! assert_eq!(who.role(), Some(Role::User));
//! assert_eq!(guard.authenticate(None).await.unwrap_err(), Refusal::MissingToken);
//! assert_eq!(guard.admin(Some(&header)).await.unwrap_err(), Refusal::Forbidden);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # })?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::{fmt, sync::Arc};

use crate::{
    AccessClaims, JwtVerifier, Role, TokenError,
    problem::{ErrorCode, Problem},
};

/// A request carrying a valid access token (and, when the guard follows a revocation feed, a session the
/// feed has not seen end).
#[derive(Debug, Clone)]
pub struct Authenticated {
    /// The token's verified claims.
    pub claims: AccessClaims,
}

impl Authenticated {
    /// The user's id (`sub`).
    pub const fn user_id(&self) -> uuid::Uuid {
        self.claims.sub
    }

    /// The session's id (`sid`).
    pub const fn session_id(&self) -> uuid::Uuid {
        self.claims.sid
    }

    /// The role the token was issued with.
    pub fn role(&self) -> Option<Role> {
        self.claims.role()
    }
}

/// A request carrying a valid access token of an `admin`.
#[derive(Debug, Clone)]
pub struct AdminOnly(pub Authenticated);

/// A request whose access token verifies **and** whose session the api confirms is still live (feature
/// `jwks`; the guard needs a [`crate::remote::SessionCheck`]).
#[cfg(feature = "jwks")]
#[derive(Debug, Clone)]
pub struct LiveSessionOnly {
    /// The verified token.
    pub auth: Authenticated,
    /// What the api says now: the role here is the current one.
    pub session: crate::remote::LiveSession,
}

/// Why a guard refused a request. Each maps to the api's problem `code` and status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Refusal {
    /// No `Authorization: Bearer` header: `401 unauthorized`.
    #[error("a bearer access token is required")]
    MissingToken,
    /// A token that does not verify, or whose session ended: `401 invalid_token`.
    #[error("the access token is invalid")]
    InvalidToken,
    /// A token past its `exp`: `401 token_expired`.
    #[error("the access token has expired")]
    TokenExpired,
    /// A valid token without the role the route needs: `403 forbidden`.
    #[error("this route needs the admin role")]
    Forbidden,
    /// The service registered no guard (or one without a session check for `LiveSessionOnly`): `500`.
    #[error("an unexpected error occurred")]
    NotConfigured,
    /// The api could not be asked whether the session is live, or the revocation feed is behind and the
    /// service chose to refuse then: `503 unavailable` with `Retry-After` (fail closed).
    #[error("the session could not be checked; retry later")]
    Unavailable,
}

impl Refusal {
    /// The problem `code` (which gives the status and title).
    pub const fn code(self) -> ErrorCode {
        match self {
            Self::MissingToken => ErrorCode::Unauthorized,
            Self::InvalidToken => ErrorCode::InvalidToken,
            Self::TokenExpired => ErrorCode::TokenExpired,
            Self::Forbidden => ErrorCode::Forbidden,
            Self::NotConfigured => ErrorCode::Internal,
            Self::Unavailable => ErrorCode::Unavailable,
        }
    }

    /// The HTTP status.
    pub const fn status(self) -> u16 {
        self.code().status()
    }

    /// Seconds for `Retry-After`, for a refusal worth retrying.
    pub const fn retry_after(self) -> Option<u32> {
        match self {
            Self::Unavailable => Some(5),
            _ => None,
        }
    }

    /// This refusal of the request `request_id`, ready to render.
    pub fn answer(self, request_id: impl Into<String>) -> AuthError {
        AuthError {
            refusal: self,
            request_id: request_id.into(),
        }
    }
}

impl From<TokenError> for Refusal {
    fn from(err: TokenError) -> Self {
        match err {
            TokenError::Expired => Self::TokenExpired,
            TokenError::Invalid | TokenError::UnknownKey => Self::InvalidToken,
        }
    }
}

/// A [`Refusal`] of one request, rendered by the framework as `application/problem+json` with the request's
/// `X-Request-Id`, `WWW-Authenticate: Bearer …` on a `401` and `Retry-After` on a `503`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthError {
    refusal: Refusal,
    request_id: String,
}

impl AuthError {
    /// Why the request was refused.
    pub const fn refusal(&self) -> Refusal {
        self.refusal
    }

    /// The HTTP status.
    pub const fn status(&self) -> u16 {
        self.refusal.status()
    }

    /// The response's headers besides `Content-Type`, as (lower-case name, value).
    pub fn headers(&self) -> Vec<(&'static str, String)> {
        let mut headers = vec![(crate::problem::request_id::HEADER, self.request_id.clone())];
        if let Some(challenge) = self.refusal.code().bearer_challenge() {
            headers.push(("www-authenticate", challenge.to_owned()));
        }
        if let Some(secs) = self.refusal.retry_after() {
            headers.push(("retry-after", secs.to_string()));
        }
        headers
    }

    /// The problem+json body.
    pub fn body(&self) -> Vec<u8> {
        let problem = Problem::new(
            self.refusal.code(),
            self.refusal.to_string(),
            self.request_id.as_str(),
        );
        serde_json::to_vec(&problem).unwrap_or_default()
    }
}

/// The media type of every refusal.
pub const PROBLEM_JSON: &str = "application/problem+json";

impl fmt::Display for AuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {}: {}",
            self.status(),
            self.refusal.code(),
            self.refusal
        )
    }
}

impl std::error::Error for AuthError {}

/// The token of an `Authorization: Bearer <token>` header value; the scheme name is case-insensitive
/// (RFC 7235).
///
/// ```
/// use securecrud_auth::guard::bearer_token;
/// assert_eq!(bearer_token("bearer abc.def.ghi"), Some("abc.def.ghi"));
/// assert_eq!(bearer_token("Basic dXNlcjpwYXNz"), None);
/// assert_eq!(bearer_token("Bearer "), None);
/// ```
pub fn bearer_token(authorization: &str) -> Option<&str> {
    let (scheme, token) = authorization.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// How a [`Guard`] verifies tokens.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Verifier {
    /// Keys held here: HS256 secrets (whoever holds them can also mint tokens) or public keys.
    Local(Arc<JwtVerifier>),
    /// The api's published keys (feature `jwks`): nothing here can mint a token.
    #[cfg(feature = "jwks")]
    Remote(Arc<crate::remote::JwksVerifier>),
}

impl Verifier {
    async fn verify(&self, token: &str) -> Result<AccessClaims, TokenError> {
        match self {
            Self::Local(verifier) => verifier.verify(token),
            #[cfg(feature = "jwks")]
            Self::Remote(verifier) => verifier.verify(token).await,
        }
    }
}

impl From<JwtVerifier> for Verifier {
    fn from(verifier: JwtVerifier) -> Self {
        Self::Local(Arc::new(verifier))
    }
}

impl From<Arc<JwtVerifier>> for Verifier {
    fn from(verifier: Arc<JwtVerifier>) -> Self {
        Self::Local(verifier)
    }
}

#[cfg(feature = "jwks")]
impl From<crate::remote::JwksVerifier> for Verifier {
    fn from(verifier: crate::remote::JwksVerifier) -> Self {
        Self::Remote(Arc::new(verifier))
    }
}

#[cfg(feature = "jwks")]
impl From<Arc<crate::remote::JwksVerifier>> for Verifier {
    fn from(verifier: Arc<crate::remote::JwksVerifier>) -> Self {
        Self::Remote(verifier)
    }
}

/// What a feed that may be behind means for one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lag {
    /// Refuse, as the feed's options say (they may say to accept statelessly: then the feed says `Live`).
    Refuse,
    /// Nothing: the api is asked next.
    #[cfg_attr(not(feature = "jwks"), allow(dead_code))]
    AskTheApi,
}

/// A new guard identity.
fn next_guard_id() -> u64 {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

/// Everything a guard consults, cheap to clone (shared parts are reference-counted). A guard and its clones
/// share an identity; [`Guard::with_feed`] and [`Guard::with_session_check`] make a guard of another (a
/// framework layer uses it to tell whether a request was verified by the guard an extractor would use).
#[derive(Debug, Clone)]
pub struct Guard {
    id: u64,
    verifier: Verifier,
    #[cfg(feature = "jwks")]
    feed: Option<crate::feed::RevocationFeed>,
    #[cfg(feature = "jwks")]
    check: Option<Arc<crate::remote::SessionCheck>>,
}

impl Guard {
    /// A guard verifying with `verifier` alone (stateless: a token is good until its `exp`).
    pub fn new(verifier: impl Into<Verifier>) -> Self {
        Self {
            id: next_guard_id(),
            verifier: verifier.into(),
            #[cfg(feature = "jwks")]
            feed: None,
            #[cfg(feature = "jwks")]
            check: None,
        }
    }

    /// Whether `other` is this guard or a clone of it.
    #[cfg_attr(not(feature = "axum"), allow(dead_code))]
    pub(crate) const fn same_as(&self, other: &Self) -> bool {
        self.id == other.id
    }

    /// Also refuses a session `feed` says ended (`401 invalid_token`), and every token while the feed is
    /// behind if its options say to refuse then (`503 unavailable`).
    #[cfg(feature = "jwks")]
    #[must_use]
    pub fn with_feed(mut self, feed: crate::feed::RevocationFeed) -> Self {
        self.feed = Some(feed);
        self.id = next_guard_id();
        self
    }

    /// Asks the api with `check` for [`Guard::live_session`].
    #[cfg(feature = "jwks")]
    #[must_use]
    pub fn with_session_check(
        mut self,
        check: impl Into<Arc<crate::remote::SessionCheck>>,
    ) -> Self {
        self.check = Some(check.into());
        self
    }

    /// The revocation feed this guard follows, if any.
    #[cfg(feature = "jwks")]
    pub const fn feed(&self) -> Option<&crate::feed::RevocationFeed> {
        self.feed.as_ref()
    }

    /// Verifies the bearer token of the `authorization` header value (as received, `None` without one)
    /// and consults the feed.
    ///
    /// # Errors
    /// [`Refusal::MissingToken`], [`Refusal::InvalidToken`], [`Refusal::TokenExpired`], or with a feed
    /// behind [`Refusal::Unavailable`].
    pub async fn authenticate(
        &self,
        authorization: Option<&str>,
    ) -> Result<Authenticated, Refusal> {
        let token = authorization
            .and_then(bearer_token)
            .ok_or(Refusal::MissingToken)?;
        self.verify(token).await
    }

    async fn verify(&self, token: &str) -> Result<Authenticated, Refusal> {
        self.verify_with(token, Lag::Refuse).await
    }

    /// Verifies `token` and consults the feed; a feed that may be behind refuses only with [`Lag::Refuse`].
    async fn verify_with(&self, token: &str, lag: Lag) -> Result<Authenticated, Refusal> {
        let claims = self.verifier.verify(token).await?;
        #[cfg(feature = "jwks")]
        if let Some(feed) = &self.feed {
            match feed.standing(claims.sid) {
                crate::feed::Standing::Live => {}
                crate::feed::Standing::Ended => return Err(Refusal::InvalidToken),
                crate::feed::Standing::Unknown if lag == Lag::Refuse => {
                    return Err(Refusal::Unavailable);
                }
                crate::feed::Standing::Unknown => {}
            }
        }
        #[cfg(not(feature = "jwks"))]
        let _ = lag;
        Ok(Authenticated { claims })
    }

    /// [`Guard::authenticate`], then the `admin` role.
    ///
    /// # Errors
    /// As [`Guard::authenticate`], and [`Refusal::Forbidden`] for any other role.
    pub async fn admin(&self, authorization: Option<&str>) -> Result<AdminOnly, Refusal> {
        let auth = self.authenticate(authorization).await?;
        Self::check_admin(auth)
    }

    /// `auth` if its role is `admin`.
    ///
    /// # Errors
    /// [`Refusal::Forbidden`] for any other role.
    pub fn check_admin(auth: Authenticated) -> Result<AdminOnly, Refusal> {
        match auth.role() {
            Some(Role::Admin) => Ok(AdminOnly(auth)),
            _ => Err(Refusal::Forbidden),
        }
    }

    /// [`Guard::authenticate`], then asks the api whether the session is live now (remembered for the
    /// check's interval). A feed that may be behind does not refuse here, since the api is asked.
    ///
    /// # Errors
    /// As [`Guard::authenticate`]; [`Refusal::InvalidToken`] when the api says the session ended,
    /// [`Refusal::Unavailable`] when it cannot be asked (fail closed), [`Refusal::NotConfigured`] without a
    /// session check.
    #[cfg(feature = "jwks")]
    pub async fn live_session(
        &self,
        authorization: Option<&str>,
    ) -> Result<LiveSessionOnly, Refusal> {
        let token = authorization
            .and_then(bearer_token)
            .ok_or(Refusal::MissingToken)?;
        // The api is asked anyway: a feed that may be behind does not refuse here (one that saw the session
        // end still does, without asking).
        let auth = self.verify_with(token, Lag::AskTheApi).await?;
        let check = self.check.as_ref().ok_or(Refusal::NotConfigured)?;
        match check.check(token).await {
            Ok(Some(session)) if session.user_id == auth.user_id().to_string() => {
                Ok(LiveSessionOnly { auth, session })
            }
            Ok(_) => Err(Refusal::InvalidToken),
            Err(err) => {
                log::warn!("the session check failed: {err}");
                Err(Refusal::Unavailable)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_refusal_renders_the_apis_problem_with_its_headers() {
        let answer = Refusal::TokenExpired.answer("req-1");
        assert_eq!(answer.status(), 401);
        let headers = answer.headers();
        assert!(headers.contains(&("x-request-id", "req-1".to_owned())));
        assert!(
            headers
                .iter()
                .any(|(name, value)| *name == "www-authenticate"
                    && value.contains("error=\"invalid_token\""))
        );
        let body: serde_json::Value = serde_json::from_slice(&answer.body()).unwrap();
        assert_eq!(body["code"], "token_expired");
        assert_eq!(body["status"], 401);
        assert_eq!(body["request_id"], "req-1");

        let forbidden = Refusal::Forbidden.answer("req-2");
        assert_eq!(forbidden.status(), 403);
        assert!(
            !forbidden
                .headers()
                .iter()
                .any(|(name, _)| *name == "www-authenticate")
        );
        let unavailable = Refusal::Unavailable.answer("req-3");
        assert_eq!(unavailable.status(), 503);
        assert!(
            unavailable
                .headers()
                .contains(&("retry-after", "5".to_owned()))
        );
    }

    #[test]
    fn only_a_bearer_scheme_with_a_token_is_read() {
        assert_eq!(bearer_token("Bearer a.b.c"), Some("a.b.c"));
        assert_eq!(bearer_token("BEARER   a.b.c  "), Some("a.b.c"));
        assert_eq!(bearer_token("Bearer"), None);
        assert_eq!(bearer_token("Token a.b.c"), None);
    }
}
