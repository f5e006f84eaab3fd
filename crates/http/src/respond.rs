//! Response wrappers that paperclip can document: `201 Created` with a `Location`, `202 Accepted`.

use actix_web::{HttpRequest, HttpResponse, Responder, ResponseError, body::BoxBody, http::header};
use paperclip::{
    actix::OperationModifier,
    v2::{
        models::{DefaultOperationRaw, DefaultSchemaRaw, Either, Response},
        schema::Apiv2Schema,
    },
};
use securecrud_service::TokenPair;
use serde::Serialize;

use crate::{
    browser::{BrowserSessions, SessionMode},
    dto::TokenPairResponse,
};

/// `201 Created` with a JSON body and a `Location` header.
#[derive(Debug)]
pub struct Created<T> {
    location: String,
    body: T,
}

impl<T> Created<T> {
    pub fn at(location: impl Into<String>, body: T) -> Self {
        Self {
            location: location.into(),
            body,
        }
    }
}

impl<T: Serialize> Responder for Created<T> {
    type Body = BoxBody;

    fn respond_to(self, _: &HttpRequest) -> HttpResponse<BoxBody> {
        HttpResponse::Created()
            .insert_header((header::LOCATION, self.location))
            .json(self.body)
    }
}

impl<T: Apiv2Schema> Apiv2Schema for Created<T> {
    fn name() -> Option<String> {
        T::name()
    }

    fn raw_schema() -> DefaultSchemaRaw {
        T::raw_schema()
    }
}

impl<T: Apiv2Schema> OperationModifier for Created<T> {
    fn update_response(op: &mut DefaultOperationRaw) {
        let mut schema = T::schema_with_ref();
        schema.retain_ref();
        op.responses.insert(
            "201".into(),
            Either::Right(Response {
                description: Some("Created; `Location` names the new resource".into()),
                schema: Some(schema),
                ..Default::default()
            }),
        );
    }
}

/// `302 Found` to `location`, never cached and never leaking its URL to the next site (`Referrer-Policy:
/// no-referrer`): the end of a sign-in at a provider, or the way to it.
#[derive(Debug)]
pub struct Redirect {
    location: String,
    cookie: Option<String>,
}

impl Redirect {
    pub fn to(location: impl Into<String>) -> Self {
        Self {
            location: location.into(),
            cookie: None,
        }
    }

    /// The same redirect, setting a cookie (a `Set-Cookie` value).
    pub fn with_cookie(mut self, cookie: String) -> Self {
        self.cookie = Some(cookie);
        self
    }
}

impl Responder for Redirect {
    type Body = BoxBody;

    fn respond_to(self, _: &HttpRequest) -> HttpResponse<BoxBody> {
        let mut response = HttpResponse::Found();
        response
            .insert_header((header::LOCATION, self.location))
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .insert_header((header::REFERRER_POLICY, "no-referrer"));
        if let Some(cookie) = self.cookie {
            response.append_header((header::SET_COOKIE, cookie));
        }
        response.finish()
    }
}

impl Apiv2Schema for Redirect {}

impl OperationModifier for Redirect {
    fn update_response(op: &mut DefaultOperationRaw) {
        op.responses.insert(
            "302".into(),
            Either::Right(Response {
                description: Some("Found: `Location` is where the browser goes next".into()),
                ..Default::default()
            }),
        );
    }
}

/// `202 Accepted` without a body: the request was taken and will be acted on (e.g. an email sent).
#[derive(Debug)]
pub struct Accepted;

impl Responder for Accepted {
    type Body = BoxBody;

    fn respond_to(self, _: &HttpRequest) -> HttpResponse<BoxBody> {
        HttpResponse::Accepted().finish()
    }
}

impl Apiv2Schema for Accepted {}

impl OperationModifier for Accepted {
    fn update_response(op: &mut DefaultOperationRaw) {
        op.responses.insert(
            "202".into(),
            Either::Right(Response {
                description: Some("Accepted; an email will be sent when it applies".into()),
                ..Default::default()
            }),
        );
    }
}

/// `200 OK` without a body (RFC 7009's answer to a revocation).
#[derive(Debug)]
pub struct EmptyOk;

impl Responder for EmptyOk {
    type Body = BoxBody;

    fn respond_to(self, _: &HttpRequest) -> HttpResponse<BoxBody> {
        HttpResponse::Ok().finish()
    }
}

impl Apiv2Schema for EmptyOk {}

impl OperationModifier for EmptyOk {
    fn update_response(op: &mut DefaultOperationRaw) {
        op.responses.insert(
            "200".into(),
            Either::Right(Response {
                description: Some(
                    "Done, or nothing to do: the answer is the same for any token".into(),
                ),
                ..Default::default()
            }),
        );
    }
}

/// `204 No Content` with the `X-Auth-*` headers of a forward-auth check.
#[derive(Debug)]
pub struct AuthChecked {
    user_id: String,
    username: String,
    role: &'static str,
    session_id: String,
}

/// The headers of [`AuthChecked`], with what each holds.
const AUTH_HEADERS: [(&str, &str); 4] = [
    ("X-Auth-User-Id", "The user's id (UUID)"),
    ("X-Auth-Username", "The user's username"),
    (
        "X-Auth-Role",
        "`user` or `admin`, as the database has it now",
    ),
    ("X-Auth-Session-Id", "The session's id (UUID)"),
];

impl From<&securecrud_service::CurrentSession> for AuthChecked {
    fn from(current: &securecrud_service::CurrentSession) -> Self {
        Self {
            user_id: current.user.id.to_string(),
            username: current.user.username.as_str().to_owned(),
            role: current.user.role.as_str(),
            session_id: current.session_id.to_string(),
        }
    }
}

impl Responder for AuthChecked {
    type Body = BoxBody;

    fn respond_to(self, _: &HttpRequest) -> HttpResponse<BoxBody> {
        let values = [
            self.user_id,
            self.username,
            self.role.to_owned(),
            self.session_id,
        ];
        let mut response = HttpResponse::NoContent();
        for ((name, _), value) in AUTH_HEADERS.iter().zip(values) {
            response.insert_header((*name, value));
        }
        response.finish()
    }
}

impl Apiv2Schema for AuthChecked {}

impl OperationModifier for AuthChecked {
    fn update_response(op: &mut DefaultOperationRaw) {
        let headers = AUTH_HEADERS
            .iter()
            .map(|(name, description)| {
                (
                    (*name).to_owned(),
                    paperclip::v2::models::Header {
                        description: Some((*description).to_owned()),
                        data_type: Some(paperclip::v2::models::DataType::String),
                        ..Default::default()
                    },
                )
            })
            .collect();
        op.responses.insert(
            "204".into(),
            Either::Right(Response {
                description: Some("The token is valid and its session live".into()),
                headers,
                ..Default::default()
            }),
        );
    }
}

/// `200 OK` with a JSON body that clients and caches may keep for `max_age` seconds.
#[derive(Debug)]
pub struct Cached<T> {
    max_age_secs: u32,
    body: T,
}

impl<T> Cached<T> {
    pub fn for_secs(max_age_secs: u32, body: T) -> Self {
        Self { max_age_secs, body }
    }
}

impl<T: Serialize> Responder for Cached<T> {
    type Body = BoxBody;

    fn respond_to(self, _: &HttpRequest) -> HttpResponse<BoxBody> {
        HttpResponse::Ok()
            .insert_header((
                header::CACHE_CONTROL,
                format!("public, max-age={}", self.max_age_secs),
            ))
            .json(self.body)
    }
}

impl<T: Apiv2Schema> Apiv2Schema for Cached<T> {
    fn name() -> Option<String> {
        T::name()
    }

    fn raw_schema() -> DefaultSchemaRaw {
        T::raw_schema()
    }
}

impl<T: Apiv2Schema> OperationModifier for Cached<T> {
    fn update_response(op: &mut DefaultOperationRaw) {
        let mut schema = T::schema_with_ref();
        schema.retain_ref();
        op.responses.insert(
            "200".into(),
            Either::Right(Response {
                description: Some("OK; `Cache-Control: public, max-age=…`".into()),
                schema: Some(schema),
                ..Default::default()
            }),
        );
    }
}

/// `200 OK` with a token pair: the refresh token in the body, or, for a browser session
/// ([`SessionMode::Cookie`]), only in its `HttpOnly` cookie (see [`crate::browser`]).
#[derive(Debug)]
pub struct Tokens {
    pair: TokenPair,
    mode: SessionMode,
}

impl Tokens {
    pub fn new(pair: TokenPair, mode: SessionMode) -> Self {
        Self { pair, mode }
    }
}

impl Responder for Tokens {
    type Body = BoxBody;

    fn respond_to(self, req: &HttpRequest) -> HttpResponse<BoxBody> {
        let browser = req.app_data::<actix_web::web::Data<BrowserSessions>>();
        match (self.mode, browser) {
            (SessionMode::Cookie, Some(browser)) => {
                let cookie_age = self.pair.refresh_expires_in;
                let refresh_token = self.pair.refresh_token.clone();
                let mut body = TokenPairResponse::from(self.pair);
                body.refresh_token = None;
                let mut response = HttpResponse::Ok().json(body);
                browser.set(&mut response, &refresh_token, cookie_age);
                response
            }
            (SessionMode::Cookie, None) => crate::error::ApiError::Internal(anyhow::anyhow!(
                "BrowserSessions are not registered as app data"
            ))
            .error_response(),
            (SessionMode::Token, _) => HttpResponse::Ok()
                .insert_header((header::CACHE_CONTROL, "no-store"))
                .json(TokenPairResponse::from(self.pair)),
        }
    }
}

impl Apiv2Schema for Tokens {
    fn name() -> Option<String> {
        TokenPairResponse::name()
    }

    fn raw_schema() -> DefaultSchemaRaw {
        TokenPairResponse::raw_schema()
    }
}

impl OperationModifier for Tokens {
    fn update_response(op: &mut DefaultOperationRaw) {
        let mut schema = TokenPairResponse::schema_with_ref();
        schema.retain_ref();
        op.responses.insert(
            "200".into(),
            Either::Right(Response {
                description: Some(
                    "The tokens. With `session: \"cookie\"` the body has no `refresh_token`: it is set in \
                     the cookie `__Host-securecrud_refresh` (`HttpOnly; Secure; SameSite=Strict; Path=/`)"
                        .into(),
                ),
                schema: Some(schema),
                ..Default::default()
            }),
        );
    }
}

/// `204 No Content` after a logout; a browser session's cookie is cleared.
#[derive(Debug)]
pub struct LoggedOut {
    pub clear_cookie: bool,
}

impl Responder for LoggedOut {
    type Body = BoxBody;

    fn respond_to(self, req: &HttpRequest) -> HttpResponse<BoxBody> {
        let mut response = HttpResponse::NoContent().finish();
        if self.clear_cookie
            && let Some(browser) = req.app_data::<actix_web::web::Data<BrowserSessions>>()
        {
            browser.clear(&mut response);
        }
        response
    }
}

impl Apiv2Schema for LoggedOut {}

impl OperationModifier for LoggedOut {
    fn update_response(op: &mut DefaultOperationRaw) {
        op.responses.insert(
            "204".into(),
            Either::Right(Response {
                description: Some(
                    "Logged out; a browser session's cookie is cleared (`Max-Age=0`)".into(),
                ),
                ..Default::default()
            }),
        );
    }
}
