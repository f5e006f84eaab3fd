//! Guards for axum services that accept SecureCRUD access tokens (feature `axum`, for axum 0.8).
//!
//! Put a [`Guard`] in front of the router with [`AuthLayer`]: [`AuthLayer::new`] only hands the guard to
//! the extractors ([`Authenticated`], [`AdminOnly`] and, with feature `jwks`, [`LiveSessionOnly`]), which
//! then check each request that asks for them; [`AuthLayer::require_authenticated`] and
//! [`AuthLayer::require_admin`] refuse every request of the router that lacks a valid token (or the
//! `admin` role) before any handler runs, and hand the verified [`Authenticated`] on to the extractors, which
//! use it without verifying again when they would use the same guard (else they verify with theirs: an inner
//! layer's guard with a revocation feed is never bypassed by an outer one without). Refusals are the api's own problem+json answers, written once in
//! [`crate::guard`] for both frameworks: `401` (`unauthorized`, `invalid_token`, `token_expired`, with
//! `WWW-Authenticate: Bearer`), `403 forbidden`, `503 unavailable` with `Retry-After`, and `500` when no
//! guard was given.
//!
//! ```
//! use axum::{Router, routing::get};
//! use secrecy::SecretSlice;
//! use securecrud_auth::{JwtVerifier, axum::{AdminOnly, AuthLayer, Authenticated}, guard::Guard};
//!
//! async fn whoami(auth: Authenticated) -> String {
//!     auth.user_id().to_string()
//! }
//!
//! async fn admin(AdminOnly(auth): AdminOnly) -> String {
//!     format!("admin {}", auth.user_id())
//! }
//!
//! let secret = SecretSlice::from(b"a secret of at least thirty-two bytes".to_vec());
//! let verifier = JwtVerifier::new(&secret, &[], "https://api.example.com", "securecrud-api");
//! let app: Router = Router::new()
//!     .route("/whoami", get(whoami))
//!     .route("/admin", get(admin))
//!     .layer(AuthLayer::new(Guard::new(verifier)));
//! ```

use std::{
    future::Future,
    pin::Pin,
    task::{Context, Poll},
};

use axum_core::{
    body::Body,
    extract::FromRequestParts,
    response::{IntoResponse, Response},
};
use http::{HeaderMap, HeaderName, HeaderValue, Request, StatusCode, header, request::Parts};
use tower_layer::Layer;
use tower_service::Service;

#[cfg(feature = "jwks")]
pub use crate::guard::LiveSessionOnly;
pub use crate::guard::{AdminOnly, AuthError, Authenticated, Guard};
use crate::{
    guard::{PROBLEM_JSON, Refusal},
    problem::request_id,
};

impl IntoResponse for AuthError {
    fn into_response(self) -> Response {
        let mut response = Response::new(Body::from(self.body()));
        *response.status_mut() =
            StatusCode::from_u16(self.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        for (name, value) in self.headers() {
            if let Ok(value) = HeaderValue::from_str(&value) {
                headers.insert(HeaderName::from_static(name), value);
            }
        }
        response
    }
}

/// The request's `X-Request-Id` (the client's when well formed, else a new one).
fn request_id(headers: &HeaderMap) -> String {
    request_id::from_header(
        headers
            .get(request_id::HEADER)
            .and_then(|v| v.to_str().ok()),
    )
}

fn authorization(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
}

/// What a requiring [`AuthLayer`] verified, and with which guard. Private: nothing outside this module can
/// put one in a request's extensions.
#[derive(Debug, Clone)]
struct Verified {
    auth: Authenticated,
    by: Guard,
}

/// The guard the innermost [`AuthLayer`] put in the request's extensions.
fn guard(parts: &Parts) -> Result<Guard, AuthError> {
    parts.extensions.get::<Guard>().cloned().ok_or_else(|| {
        log::error!(
            "no securecrud_auth Guard for this route: add an axum::AuthLayer in front of it (answering 500)"
        );
        Refusal::NotConfigured.answer(request_id(&parts.headers))
    })
}

/// The request's [`Authenticated`]: the one a requiring [`AuthLayer`] verified with this same guard, else
/// verified now.
async fn authenticated(parts: &Parts) -> Result<Authenticated, AuthError> {
    let guard = guard(parts)?;
    if let Some(verified) = parts.extensions.get::<Verified>()
        && verified.by.same_as(&guard)
    {
        return Ok(verified.auth.clone());
    }
    guard
        .authenticate(authorization(&parts.headers))
        .await
        .map_err(|refusal| refusal.answer(request_id(&parts.headers)))
}

impl<S: Send + Sync> FromRequestParts<S> for Authenticated {
    type Rejection = AuthError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        authenticated(parts).await
    }
}

impl<S: Send + Sync> FromRequestParts<S> for AdminOnly {
    type Rejection = AuthError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let auth = authenticated(parts).await?;
        Guard::check_admin(auth).map_err(|refusal| refusal.answer(request_id(&parts.headers)))
    }
}

/// A logged-out or revoked session is refused with `401 invalid_token` within the check's memory (1 s by
/// default); if the api cannot be asked, `503 unavailable` (fail closed).
#[cfg(feature = "jwks")]
impl<S: Send + Sync> FromRequestParts<S> for LiveSessionOnly {
    type Rejection = AuthError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let guard = guard(parts)?;
        guard
            .live_session(authorization(&parts.headers))
            .await
            .map_err(|refusal| refusal.answer(request_id(&parts.headers)))
    }
}

/// What an [`AuthLayer`] refuses before the handlers run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Require {
    Nothing,
    Authenticated,
    Admin,
}

/// A tower layer giving a [`Guard`] to the extractors of every route below it, and optionally refusing
/// requests without a valid token (or the `admin` role) for the whole router.
///
/// With `Router::layer` it covers the routes added before it; `Router::route_layer` does the same but lets
/// unknown paths answer `404` rather than `401`. A requiring layer refuses CORS preflights (they carry no
/// token) unless the CORS layer is outside it.
#[derive(Debug, Clone)]
pub struct AuthLayer {
    guard: Guard,
    require: Require,
}

impl AuthLayer {
    /// Hands `guard` to the extractors; refuses nothing by itself.
    pub const fn new(guard: Guard) -> Self {
        Self {
            guard,
            require: Require::Nothing,
        }
    }

    /// Refuses every request without a valid access token (of a live session, with a feed).
    pub const fn require_authenticated(guard: Guard) -> Self {
        Self {
            guard,
            require: Require::Authenticated,
        }
    }

    /// Refuses every request without a valid access token of an `admin`.
    pub const fn require_admin(guard: Guard) -> Self {
        Self {
            guard,
            require: Require::Admin,
        }
    }
}

impl<S> Layer<S> for AuthLayer {
    type Service = AuthService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        AuthService {
            inner,
            guard: self.guard.clone(),
            require: self.require,
        }
    }
}

/// The service an [`AuthLayer`] wraps around a router or route.
#[derive(Debug, Clone)]
pub struct AuthService<S> {
    inner: S,
    guard: Guard,
    require: Require,
}

impl<S, B> Service<Request<B>> for AuthService<S>
where
    S: Service<Request<B>> + Clone + Send + 'static,
    S::Response: IntoResponse,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<B>) -> Self::Future {
        // The service polled ready is the one to call; leave a fresh clone in its place.
        let fresh = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, fresh);
        let (guard, require) = (self.guard.clone(), self.require);
        Box::pin(async move {
            let checked = match require {
                Require::Nothing => None,
                Require::Authenticated => {
                    Some(guard.authenticate(authorization(request.headers())).await)
                }
                Require::Admin => Some(
                    guard
                        .admin(authorization(request.headers()))
                        .await
                        .map(|AdminOnly(auth)| auth),
                ),
            };
            match checked {
                Some(Err(refusal)) => {
                    return Ok(refusal
                        .answer(request_id(request.headers()))
                        .into_response());
                }
                Some(Ok(auth)) => {
                    request.extensions_mut().insert(Verified {
                        auth,
                        by: guard.clone(),
                    });
                }
                None => {}
            }
            request.extensions_mut().insert(guard);
            inner.call(request).await.map(IntoResponse::into_response)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_refusal_renders_with_its_status_and_headers() {
        for refusal in [
            Refusal::MissingToken,
            Refusal::InvalidToken,
            Refusal::TokenExpired,
            Refusal::Forbidden,
            Refusal::NotConfigured,
            Refusal::Unavailable,
        ] {
            let answer = refusal.answer("req-7");
            let response = answer.clone().into_response();
            assert_eq!(response.status().as_u16(), refusal.status());
            assert_eq!(response.headers()[header::CONTENT_TYPE], PROBLEM_JSON);
            assert_eq!(response.headers()["x-request-id"], "req-7");
            for (name, value) in answer.headers() {
                assert_eq!(response.headers()[name], value.as_str(), "{refusal:?}");
            }
            assert_eq!(
                response.headers().contains_key(header::WWW_AUTHENTICATE),
                refusal.status() == 401
            );
        }
    }
}
