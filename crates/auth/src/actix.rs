//! Stateless guards for actix-web services that accept SecureCRUD access tokens (feature `actix`).
//!
//! Register a [`JwtVerifier`] as app data (`web::Data<JwtVerifier>`), then take [`Authenticated`] (any valid
//! access token) or [`AdminOnly`] (role `admin`) as a handler argument. Failures answer the same RFC 9457
//! problem+json as the SecureCRUD api: `401` (`unauthorized`, `invalid_token`, `token_expired`, with
//! `WWW-Authenticate: Bearer`) and `403 forbidden`.
//!
//! These guards check the token alone. They cannot see a session that was revoked (logout, password change,
//! deactivation) before the token's `exp`; see docs/AUTH-CRATE.md for how to live with that.

use std::{fmt, future::Ready};

use actix_web::{
    FromRequest, HttpRequest, HttpResponse, ResponseError,
    dev::Payload,
    http::{StatusCode, header},
    web,
};
use securecrud_domain::{Role, SessionId, UserId};

use crate::{
    AccessClaims, JwtVerifier, TokenError,
    problem::{ErrorCode, request_id},
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
}

impl AuthError {
    fn new(kind: AuthErrorKind, req: &HttpRequest) -> Self {
        Self {
            kind,
            request_id: request_id(req),
        }
    }

    fn parts(&self) -> (StatusCode, ErrorCode, &'static str, &'static str) {
        let (code, detail) = match self.kind {
            AuthErrorKind::MissingToken => {
                (ErrorCode::Unauthorized, "a bearer access token is required")
            }
            AuthErrorKind::InvalidToken => (ErrorCode::InvalidToken, "the access token is invalid"),
            AuthErrorKind::TokenExpired => {
                (ErrorCode::TokenExpired, "the access token has expired")
            }
            AuthErrorKind::Forbidden => (ErrorCode::Forbidden, "this route needs the admin role"),
            AuthErrorKind::NotConfigured => (ErrorCode::Internal, "an unexpected error occurred"),
        };
        let status =
            StatusCode::from_u16(code.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        (status, code, code.title(), detail)
    }
}

impl fmt::Display for AuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (status, code, _, detail) = self.parts();
        write!(f, "{} {code}: {detail}", status.as_u16())
    }
}

impl ResponseError for AuthError {
    fn status_code(&self) -> StatusCode {
        self.parts().0
    }

    fn error_response(&self) -> HttpResponse {
        let (status, code, title, detail) = self.parts();
        let body = serde_json::json!({
            "type": code.type_uri(),
            "title": title,
            "status": status.as_u16(),
            "detail": detail,
            "code": code,
            "request_id": self.request_id,
        });
        let mut response = HttpResponse::build(status);
        response
            .insert_header((header::CONTENT_TYPE, "application/problem+json"))
            .insert_header((request_id::HEADER, self.request_id.as_str()));
        match self.kind {
            AuthErrorKind::InvalidToken | AuthErrorKind::TokenExpired => {
                response.insert_header((
                    header::WWW_AUTHENTICATE,
                    r#"Bearer realm="securecrud", error="invalid_token""#,
                ));
            }
            AuthErrorKind::MissingToken => {
                response.insert_header((header::WWW_AUTHENTICATE, r#"Bearer realm="securecrud""#));
            }
            AuthErrorKind::Forbidden | AuthErrorKind::NotConfigured => {}
        }
        response.body(body.to_string())
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

fn authenticate(req: &HttpRequest) -> Result<Authenticated, AuthError> {
    let verifier = req
        .app_data::<web::Data<JwtVerifier>>()
        .ok_or_else(|| AuthError::new(AuthErrorKind::NotConfigured, req))?;
    let token =
        bearer_token(req).ok_or_else(|| AuthError::new(AuthErrorKind::MissingToken, req))?;
    let claims = verifier.verify(token).map_err(|err| {
        let kind = match err {
            TokenError::Expired => AuthErrorKind::TokenExpired,
            TokenError::Invalid => AuthErrorKind::InvalidToken,
        };
        AuthError::new(kind, req)
    })?;
    Ok(Authenticated { claims })
}

impl FromRequest for Authenticated {
    type Error = AuthError;
    type Future = Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        std::future::ready(authenticate(req))
    }
}

impl FromRequest for AdminOnly {
    type Error = AuthError;
    type Future = Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        std::future::ready(authenticate(req).and_then(|auth| match auth.role() {
            Some(Role::Admin) => Ok(Self(auth)),
            _ => Err(AuthError::new(AuthErrorKind::Forbidden, req)),
        }))
    }
}
