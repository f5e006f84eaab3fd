//! The extractors that authenticate: a bearer access token ([`SignedIn`]), or the browser session's cookie
//! as well ([`SignedInOrCookie`]), and an admin ([`AdminUser`]).

use std::{future::Future, pin::Pin};

use actix_web::{FromRequest, HttpMessage, HttpRequest, dev::Payload, web};
use paperclip::actix::Apiv2Security;
use securecrud_auth::{ErrorCode, actix::bearer_token};
use securecrud_domain::Role;
use securecrud_service::{CurrentSession, ServiceError, Services};

use crate::{browser::BrowserSessions, error::ApiError, request::LoggedUser};

/// A request authenticated by a bearer access token whose session is live and whose user is active.
///
/// Answers 401 with `WWW-Authenticate: Bearer` otherwise. The scheme name is case-insensitive (RFC 7235).
#[derive(Debug, Apiv2Security)]
#[openapi(
    oauth2,
    alias = "OAuth2PasswordBearer",
    flow = "password",
    token_url = "/api/v1/auth/token",
    description = "Log in with a username or email and password; Swagger UI then sends the access token as `Authorization: Bearer <token>`."
)]
pub struct SignedIn(pub CurrentSession);

impl FromRequest for SignedIn {
    type Error = actix_web::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let credential = bearer_token(req).map(|token| Credential::Bearer(token.to_owned()));
        let authenticated = authenticate(req, credential);
        Box::pin(async move { Ok(Self(authenticated.await?)) })
    }
}

/// What a request authenticates with.
enum Credential {
    /// An access token (`Authorization: Bearer`).
    Bearer(String),
    /// A browser session's refresh token, from its cookie (only read: never rotated here).
    SessionCookie(String),
}

/// The user and session behind `credential` (`401` without one, or for a bad one), recorded on the request
/// for the access log.
fn authenticate(
    req: &HttpRequest,
    credential: Option<Credential>,
) -> impl Future<Output = Result<CurrentSession, ApiError>> + use<> {
    let services = req.app_data::<web::Data<Services>>().cloned();
    let req = req.clone();
    async move {
        let services = services.ok_or_else(|| {
            ApiError::Internal(anyhow::anyhow!("Services are not registered as app data"))
        })?;
        let current = match credential.ok_or_else(ApiError::missing_token)? {
            Credential::Bearer(token) => services.authenticate(&token).await?,
            Credential::SessionCookie(cookie) => services
                .authenticate_refresh(&cookie)
                .await
                .map_err(|err| match err {
                    ServiceError::InvalidToken(_) => ApiError::Unauthorized {
                        code: ErrorCode::InvalidToken,
                        detail: "the session cookie's session has ended",
                    },
                    other => ApiError::from(other),
                })?,
        };
        req.extensions_mut().insert(LoggedUser(current.user.id));
        Ok(current)
    }
}

/// For the forward-auth check: a request authenticated by a bearer access token as [`SignedIn`], or else by
/// the browser session's cookie (a live session; read only, never rotated, so no CSRF header is needed).
#[derive(Debug, Apiv2Security)]
#[openapi(
    oauth2,
    alias = "OAuth2PasswordBearer",
    flow = "password",
    token_url = "/api/v1/auth/token",
    description = "Log in with a username or email and password; Swagger UI then sends the access token as `Authorization: Bearer <token>`."
)]
pub struct SignedInOrCookie(pub CurrentSession);

impl FromRequest for SignedInOrCookie {
    type Error = actix_web::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let credential = match bearer_token(req) {
            Some(token) => Some(Credential::Bearer(token.to_owned())),
            None => req
                .app_data::<web::Data<BrowserSessions>>()
                .and_then(|browser| browser.cookie_token(req))
                .map(Credential::SessionCookie),
        };
        let authenticated = authenticate(req, credential);
        Box::pin(async move { Ok(Self(authenticated.await?)) })
    }
}

/// A request authenticated as above whose user has the `admin` role (taken from the database); `403`
/// otherwise.
#[derive(Debug, Apiv2Security)]
#[openapi(
    oauth2,
    alias = "OAuth2PasswordBearer",
    flow = "password",
    token_url = "/api/v1/auth/token",
    description = "Log in with a username or email and password; Swagger UI then sends the access token as `Authorization: Bearer <token>`."
)]
pub struct AdminUser(pub CurrentSession);

impl FromRequest for AdminUser {
    type Error = actix_web::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let authenticated = SignedIn::from_request(req, payload);
        Box::pin(async move {
            let SignedIn(current) = authenticated.await?;
            if current.user.role != Role::Admin {
                return Err(ApiError::Forbidden("this route needs the admin role").into());
            }
            Ok(Self(current))
        })
    }
}
