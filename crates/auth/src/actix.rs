//! Guards for actix-web services that accept SecureCRUD access tokens (feature `actix`).
//!
//! Register a [`Guard`] as app data (`web::Data<Guard>`): a verifier, either a [`crate::JwtVerifier`]
//! (HS256 secrets or keys you hold) or, with the `jwks` feature, a [`crate::remote::JwksVerifier`] (the
//! api's published keys, no secret), and optionally a revocation feed and a session check. Then take
//! [`Authenticated`] (any valid access token) or [`AdminOnly`] (role `admin`) as a handler argument. Failures answer the same
//! RFC 9457 problem+json as the SecureCRUD api: `401` (`unauthorized`, `invalid_token`, `token_expired`,
//! with `WWW-Authenticate: Bearer`), `403 forbidden` and `503 unavailable` (see [`crate::guard`]).
//!
//! Without a revocation feed these guards check the token alone: a session revoked before the token's `exp`
//! goes unseen. With a [`crate::feed::RevocationFeed`] every guard refuses an ended session within about a
//! second; `LiveSessionOnly` (feature `jwks`) asks the api itself (a [`crate::remote::SessionCheck`]).

use std::{future::Future, pin::Pin};

use actix_web::{
    FromRequest, HttpRequest, HttpResponse, ResponseError,
    dev::Payload,
    http::{StatusCode, header},
    web,
};

#[cfg(feature = "jwks")]
pub use crate::guard::LiveSessionOnly;
pub use crate::guard::{AdminOnly, AuthError, Authenticated, Guard};
use crate::{
    guard::{PROBLEM_JSON, Refusal},
    problem::request_id,
};

impl ResponseError for AuthError {
    fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status_code());
        response.insert_header((header::CONTENT_TYPE, PROBLEM_JSON));
        for (name, value) in self.headers() {
            response.insert_header((name, value));
        }
        response.body(self.body())
    }
}

/// The value of the request's header `name`, if it is text.
fn header_text(req: &HttpRequest, name: &str) -> Option<String> {
    req.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// The token of an `Authorization: Bearer <token>` header; the scheme name is case-insensitive (RFC 7235).
pub fn bearer_token(req: &HttpRequest) -> Option<&str> {
    crate::guard::bearer_token(req.headers().get(header::AUTHORIZATION)?.to_str().ok()?)
}

/// A boxed extractor future.
type Extracting<T> = Pin<Box<dyn Future<Output = Result<T, AuthError>>>>;

/// The request's guard: the `web::Data<Guard>` in app data.
fn guard(req: &HttpRequest) -> Option<Guard> {
    req.app_data::<web::Data<Guard>>()
        .map(|guard| Guard::clone(guard))
}

/// Runs `check` with the request's guard and `Authorization` header, answering refusals for the request.
fn extract<T, F, Fut>(req: &HttpRequest, check: F) -> Extracting<T>
where
    T: 'static,
    F: FnOnce(Guard, Option<String>) -> Fut + 'static,
    Fut: Future<Output = Result<T, Refusal>> + 'static,
{
    // The request id (the client's when well formed, else a new one) is made only for a refusal.
    let given_id = header_text(req, request_id::HEADER);
    let answer =
        move |refusal: Refusal| refusal.answer(request_id::from_header(given_id.as_deref()));
    let authorization = header_text(req, header::AUTHORIZATION.as_str());
    let Some(guard) = guard(req) else {
        log::error!(
            "no securecrud_auth Guard in app data: register web::Data<Guard> (answering 500)"
        );
        return Box::pin(std::future::ready(Err(answer(Refusal::NotConfigured))));
    };
    Box::pin(async move { check(guard, authorization).await.map_err(answer) })
}

impl FromRequest for Authenticated {
    type Error = AuthError;
    type Future = Extracting<Self>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        extract(req, |guard, authorization| async move {
            guard.authenticate(authorization.as_deref()).await
        })
    }
}

impl FromRequest for AdminOnly {
    type Error = AuthError;
    type Future = Extracting<Self>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        extract(req, |guard, authorization| async move {
            guard.admin(authorization.as_deref()).await
        })
    }
}

/// A logged-out or revoked session is refused with `401 invalid_token` within the check's memory (1 s by
/// default); if the api cannot be asked, `503 unavailable` (fail closed).
#[cfg(feature = "jwks")]
impl FromRequest for LiveSessionOnly {
    type Error = AuthError;
    type Future = Extracting<Self>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        extract(req, |guard, authorization| async move {
            guard.live_session(authorization.as_deref()).await
        })
    }
}
