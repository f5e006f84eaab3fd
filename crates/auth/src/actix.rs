//! Stateless guards for actix-web services that accept SecureCRUD access tokens (feature `actix`).
//!
//! Register a verifier as app data, either a [`JwtVerifier`] (`web::Data<JwtVerifier>`: HS256 secrets or
//! keys you hold) or, with the `jwks` feature, a [`crate::remote::JwksVerifier`]
//! (`web::Data<JwksVerifier>`: the api's published keys, no secret), then take [`Authenticated`] (any valid
//! access token) or [`AdminOnly`] (role `admin`) as a handler argument. Failures answer the same RFC 9457
//! problem+json as the SecureCRUD api: `401` (`unauthorized`, `invalid_token`, `token_expired`, with
//! `WWW-Authenticate: Bearer`) and `403 forbidden`.
//!
//! These guards check the token alone. They cannot see a session that was revoked (logout, password change,
//! deactivation) before the token's `exp`; for the operations that must, take `LiveSessionOnly` (feature
//! `jwks`), which also asks the api (a [`crate::remote::SessionCheck`] in app data). See docs/AUTH-CRATE.md.

use std::{fmt, future::Future, pin::Pin};

use actix_web::{
    FromRequest, HttpRequest, HttpResponse, ResponseError,
    dev::Payload,
    http::{StatusCode, header},
    web,
};
use securecrud_domain::{Role, SessionId, UserId};

use crate::{
    AccessClaims, JwtVerifier, TokenError,
    problem::{ErrorCode, Problem, request_id},
};

/// A request carrying a valid access token.
#[derive(Debug, Clone)]
pub struct Authenticated {
    pub claims: AccessClaims,
}

impl Authenticated {
    pub fn user_id(&self) -> UserId {
        self.claims.user_id()
    }

    pub fn session_id(&self) -> SessionId {
        self.claims.session_id()
    }

    /// The role the token was issued with.
    pub fn role(&self) -> Option<Role> {
        self.claims.role()
    }
}

/// A request carrying a valid access token of an `admin`; `403` for any other role.
#[derive(Debug, Clone)]
pub struct AdminOnly(pub Authenticated);

/// Why a guard refused a request, rendered as problem+json.
#[derive(Debug)]
pub struct AuthError {
    kind: AuthErrorKind,
    request_id: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AuthErrorKind {
    MissingToken,
    InvalidToken,
    TokenExpired,
    Forbidden,
    NotConfigured,
    /// The api could not be asked whether the session is live, or the revocation feed is behind: fail
    /// closed.
    #[cfg_attr(not(feature = "jwks"), allow(dead_code))]
    Unavailable,
}

impl AuthError {
    fn with_id(kind: AuthErrorKind, request_id: String) -> Self {
        Self { kind, request_id }
    }

    fn code_and_detail(&self) -> (ErrorCode, &'static str) {
        match self.kind {
            AuthErrorKind::MissingToken => {
                (ErrorCode::Unauthorized, "a bearer access token is required")
            }
            AuthErrorKind::InvalidToken => (ErrorCode::InvalidToken, "the access token is invalid"),
            AuthErrorKind::TokenExpired => {
                (ErrorCode::TokenExpired, "the access token has expired")
            }
            AuthErrorKind::Forbidden => (ErrorCode::Forbidden, "this route needs the admin role"),
            AuthErrorKind::NotConfigured => (ErrorCode::Internal, "an unexpected error occurred"),
            AuthErrorKind::Unavailable => (
                ErrorCode::Unavailable,
                "the session could not be checked; retry later",
            ),
        }
    }
}

impl fmt::Display for AuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (code, detail) = self.code_and_detail();
        write!(f, "{} {code}: {detail}", code.status())
    }
}

impl ResponseError for AuthError {
    fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.code_and_detail().0.status())
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    fn error_response(&self) -> HttpResponse {
        let (code, detail) = self.code_and_detail();
        let mut response = HttpResponse::build(self.status_code());
        response
            .insert_header((header::CONTENT_TYPE, "application/problem+json"))
            .insert_header((request_id::HEADER, self.request_id.as_str()));
        if let Some(challenge) = code.bearer_challenge() {
            response.insert_header((header::WWW_AUTHENTICATE, challenge));
        }
        if self.kind == AuthErrorKind::Unavailable {
            response.insert_header((header::RETRY_AFTER, "5"));
        }
        match serde_json::to_vec(&Problem::new(code, detail, self.request_id.as_str())) {
            Ok(body) => response.body(body),
            Err(_) => response.finish(),
        }
    }
}

/// The request's `X-Request-Id` (the client's when well formed, else a new one).
fn request_id(req: &HttpRequest) -> String {
    request_id::from_header(
        req.headers()
            .get(request_id::HEADER)
            .and_then(|v| v.to_str().ok()),
    )
}

/// The token of an `Authorization: Bearer <token>` header; the scheme name is case-insensitive (RFC 7235).
pub fn bearer_token(req: &HttpRequest) -> Option<&str> {
    let value = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// A boxed extractor future.
type Extracting<T> = Pin<Box<dyn Future<Output = Result<T, AuthError>>>>;

fn refusal(err: TokenError) -> AuthErrorKind {
    match err {
        TokenError::Expired => AuthErrorKind::TokenExpired,
        TokenError::Invalid | TokenError::UnknownKey => AuthErrorKind::InvalidToken,
    }
}

/// Verifies the bearer token with the verifier in app data, then, with a
/// `web::Data<feed::RevocationFeed>` in app data too (feature `jwks`), refuses a session the feed says
/// ended (`401 invalid_token`), or every token while the feed is behind and the service chose to refuse
/// then (`503 unavailable`).
fn authenticate(req: &HttpRequest) -> Extracting<(Authenticated, String)> {
    let verifying = verify_bearer(req);
    #[cfg(feature = "jwks")]
    if let Some(feed) = req
        .app_data::<web::Data<crate::feed::RevocationFeed>>()
        .cloned()
    {
        let id = request_id(req);
        return Box::pin(async move {
            let (auth, token) = verifying.await?;
            match feed.standing(auth.claims.sid) {
                crate::feed::Standing::Live => Ok((auth, token)),
                crate::feed::Standing::Ended => {
                    Err(AuthError::with_id(AuthErrorKind::InvalidToken, id))
                }
                crate::feed::Standing::Unknown => {
                    Err(AuthError::with_id(AuthErrorKind::Unavailable, id))
                }
            }
        });
    }
    verifying
}

/// Verifies the bearer token with the verifier in app data: a [`JwtVerifier`] at once, a `JwksVerifier`
/// (fetching keys when needed) asynchronously.
fn verify_bearer(req: &HttpRequest) -> Extracting<(Authenticated, String)> {
    let id = request_id(req);
    let Some(token) = bearer_token(req).map(str::to_owned) else {
        return Box::pin(std::future::ready(Err(AuthError::with_id(
            AuthErrorKind::MissingToken,
            id,
        ))));
    };
    if let Some(verifier) = req.app_data::<web::Data<JwtVerifier>>() {
        let verified = verifier
            .verify(&token)
            .map(|claims| (Authenticated { claims }, token))
            .map_err(|err| AuthError::with_id(refusal(err), id));
        return Box::pin(std::future::ready(verified));
    }
    #[cfg(feature = "jwks")]
    if let Some(verifier) = req
        .app_data::<web::Data<crate::remote::JwksVerifier>>()
        .cloned()
    {
        return Box::pin(async move {
            match verifier.verify(&token).await {
                Ok(claims) => Ok((Authenticated { claims }, token)),
                Err(err) => Err(AuthError::with_id(refusal(err), id)),
            }
        });
    }
    Box::pin(std::future::ready(Err(AuthError::with_id(
        AuthErrorKind::NotConfigured,
        id,
    ))))
}

impl FromRequest for Authenticated {
    type Error = AuthError;
    type Future = Extracting<Self>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let authenticating = authenticate(req);
        Box::pin(async move { authenticating.await.map(|(auth, _)| auth) })
    }
}

impl FromRequest for AdminOnly {
    type Error = AuthError;
    type Future = Extracting<Self>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let authenticating = authenticate(req);
        let id = request_id(req);
        Box::pin(async move {
            let (auth, _) = authenticating.await?;
            match auth.role() {
                Some(Role::Admin) => Ok(Self(auth)),
                _ => Err(AuthError::with_id(AuthErrorKind::Forbidden, id)),
            }
        })
    }
}

/// A request whose access token verifies **and** whose session the api confirms is still live (feature
/// `jwks`; needs a [`crate::remote::SessionCheck`] in app data besides the verifier). A logged-out or
/// revoked session is refused with `401 invalid_token` within the check's memory (1 s by default); if the api
/// cannot be asked, `503 unavailable` (fail closed).
#[cfg(feature = "jwks")]
#[derive(Debug, Clone)]
pub struct LiveSessionOnly {
    pub auth: Authenticated,
    /// What the api says now: the role here is the current one.
    pub session: crate::remote::LiveSession,
}

#[cfg(feature = "jwks")]
impl FromRequest for LiveSessionOnly {
    type Error = AuthError;
    type Future = Extracting<Self>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let authenticating = authenticate(req);
        let id = request_id(req);
        let check = req
            .app_data::<web::Data<crate::remote::SessionCheck>>()
            .cloned();
        Box::pin(async move {
            let (auth, token) = authenticating.await?;
            let check = check
                .ok_or_else(|| AuthError::with_id(AuthErrorKind::NotConfigured, id.clone()))?;
            match check.check(&token).await {
                Ok(Some(session)) if session.user_id == auth.user_id().to_string() => {
                    Ok(Self { auth, session })
                }
                Ok(_) => Err(AuthError::with_id(AuthErrorKind::InvalidToken, id)),
                Err(err) => {
                    log::warn!("the session check failed: {err}");
                    Err(AuthError::with_id(AuthErrorKind::Unavailable, id))
                }
            }
        })
    }
}
