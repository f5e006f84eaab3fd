//! Browser sessions: the refresh token lives only in an `HttpOnly; Secure; SameSite=Strict` cookie the page's
//! script cannot read, and every route that takes the cookie closes CSRF.
//!
//! - The cookie is `__Host-securecrud_refresh` (`Path=/`, no `Domain`: only this host gets it). With
//!   `COOKIE_SECURE=false` (development only; production refuses it) it is `securecrud_refresh` without
//!   `Secure`, since browsers refuse a `__Host-` cookie that is not `Secure`.
//! - CSRF: a request that uses the cookie must carry `X-Requested-With: securecrud` (a header a cross-site
//!   form or image cannot send, and a cross-origin script can only send after a CORS preflight that lists
//!   it) and, when the browser sends `Origin`, an origin in `CORS_ALLOWED_ORIGINS` (never `*`) or the api's
//!   own (`PUBLIC_BASE_URL`); otherwise `403 forbidden`. `SameSite=Strict` keeps the cookie off cross-site
//!   requests in the first place; these checks hold where it does not (same-site sibling hosts, old
//!   browsers).
//! - Cross-origin reads with credentials are never allowed: the CORS layer sends no
//!   `Access-Control-Allow-Credentials`.

use actix_web::{
    HttpRequest, HttpResponse,
    http::header::{self, HeaderValue},
};
use securecrud_service::ServerSettings;

use crate::error::ApiError;

/// The cookie's name when it is `Secure` (always in production).
pub const SECURE_COOKIE: &str = "__Host-securecrud_refresh";
/// The cookie's name with `COOKIE_SECURE=false` (development only).
pub const PLAIN_COOKIE: &str = "securecrud_refresh";
/// The cookie that ties an OpenID Connect sign-in to the browser that started it, when `Secure`.
pub const SECURE_SIGN_IN_COOKIE: &str = "__Host-securecrud_oidc";
/// Its name with `COOKIE_SECURE=false`.
pub const PLAIN_SIGN_IN_COOKIE: &str = "securecrud_oidc";
/// How long the sign-in cookie lives: as long as a flow.
const SIGN_IN_COOKIE_MAX_AGE_SECS: i64 = 600;

/// The header every request that uses the cookie must carry, with [`CSRF_HEADER_VALUE`].
pub const CSRF_HEADER: &str = "x-requested-with";
pub const CSRF_HEADER_VALUE: &str = "securecrud";

/// How the session of a login is handed to the client: `token` (the default: the refresh token in the
/// body) or `cookie` (only in the cookie).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SessionMode {
    #[default]
    Token,
    Cookie,
}

/// The cookie's settings and the origins allowed to use it; app data.
#[derive(Debug, Clone)]
pub struct BrowserSessions {
    secure: bool,
    origins: Vec<String>,
}

impl BrowserSessions {
    pub fn new(settings: &ServerSettings) -> Self {
        let mut origins: Vec<String> = settings
            .cors_allowed_origins
            .iter()
            .filter(|origin| *origin != "*")
            .map(|origin| origin.trim_end_matches('/').to_ascii_lowercase())
            .collect();
        origins.push(settings.public_origin.clone());
        Self {
            secure: settings.cookie_secure,
            origins,
        }
    }

    /// The cookie's name.
    pub fn cookie_name(&self) -> &'static str {
        if self.secure {
            SECURE_COOKIE
        } else {
            PLAIN_COOKIE
        }
    }

    fn cookie(&self, value: &str, max_age_secs: i64) -> String {
        let secure = if self.secure { "; Secure" } else { "" };
        format!(
            "{}={value}; Max-Age={}; Path=/; HttpOnly{secure}; SameSite=Strict",
            self.cookie_name(),
            max_age_secs.max(0)
        )
    }

    /// Puts the refresh token in the cookie, for `max_age_secs` (the session's remaining lifetime).
    pub fn set(&self, response: &mut HttpResponse, refresh_token: &str, max_age_secs: i64) {
        self.append(response, &self.cookie(refresh_token, max_age_secs));
    }

    /// Clears the cookie (`Max-Age=0`).
    pub fn clear(&self, response: &mut HttpResponse) {
        self.append(response, &self.cookie("", 0));
    }

    fn append(&self, response: &mut HttpResponse, cookie: &str) {
        if let Ok(value) = HeaderValue::from_str(cookie) {
            response.headers_mut().append(header::SET_COOKIE, value);
        }
        // A response that sets a session must never be stored by a shared cache.
        response
            .headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }

    /// The sign-in cookie's name.
    fn sign_in_cookie_name(&self) -> &'static str {
        if self.secure {
            SECURE_SIGN_IN_COOKIE
        } else {
            PLAIN_SIGN_IN_COOKIE
        }
    }

    /// The `Set-Cookie` value of an OpenID Connect sign-in's browser binding: `SameSite=Lax`, since the
    /// provider sends the browser back with a cross-site navigation, which a `Strict` cookie would miss.
    pub fn sign_in_cookie(&self, binding: &str) -> String {
        let secure = if self.secure { "; Secure" } else { "" };
        format!(
            "{}={binding}; Max-Age={SIGN_IN_COOKIE_MAX_AGE_SECS}; Path=/; HttpOnly{secure}; SameSite=Lax",
            self.sign_in_cookie_name()
        )
    }

    /// The browser binding of an OpenID Connect sign-in, from the request's cookie.
    pub fn sign_in_binding(&self, req: &HttpRequest) -> Option<String> {
        cookie_value(req, self.sign_in_cookie_name())
    }

    /// The refresh token in the request's cookie, without any CSRF check: for `/auth/check`, which changes
    /// nothing and never rotates it.
    pub fn cookie_token(&self, req: &HttpRequest) -> Option<String> {
        cookie_value(req, self.cookie_name())
    }

    /// The refresh token in the request's cookie, for a route that rotates or ends the session: `None`
    /// without a cookie; the CSRF rules above when there is one.
    ///
    /// # Errors
    /// `403 forbidden` when the request carries the cookie without `X-Requested-With: securecrud`, or from
    /// an origin that is not allowed.
    pub fn use_cookie(&self, req: &HttpRequest) -> Result<Option<String>, ApiError> {
        let Some(token) = self.cookie_token(req) else {
            return Ok(None);
        };
        self.check_csrf(req)?;
        Ok(Some(token))
    }

    /// Whether the request says it comes from a cookie-session client (the CSRF header).
    pub fn announced(req: &HttpRequest) -> bool {
        req.headers()
            .get(CSRF_HEADER)
            .is_some_and(|value| value.as_bytes() == CSRF_HEADER_VALUE.as_bytes())
    }

    /// The CSRF rules of a request that uses (or, at login, asks for) the session cookie.
    ///
    /// # Errors
    /// `403 forbidden` without `X-Requested-With: securecrud`, or from an origin that is not allowed.
    pub fn check_csrf(&self, req: &HttpRequest) -> Result<(), ApiError> {
        if !Self::announced(req) {
            return Err(ApiError::Forbidden(
                "a request that uses the session cookie must send `X-Requested-With: securecrud`",
            ));
        }
        if let Some(origin) = req.headers().get(header::ORIGIN) {
            let allowed = origin.to_str().is_ok_and(|origin| {
                let origin = origin.trim_end_matches('/').to_ascii_lowercase();
                self.origins.contains(&origin)
            });
            if !allowed {
                return Err(ApiError::Forbidden(
                    "the session cookie cannot be used from this origin",
                ));
            }
        }
        Ok(())
    }
}

/// The value of the request's cookie `name`, if it has a non-empty one.
fn cookie_value(req: &HttpRequest, name: &str) -> Option<String> {
    req.headers()
        .get_all(header::COOKIE)
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, value)| *key == name && !value.is_empty())
        .map(|(_, value)| value.to_owned())
}

#[cfg(test)]
mod tests {
    use actix_web::test::TestRequest;

    use super::*;

    fn sessions(secure: bool) -> BrowserSessions {
        BrowserSessions {
            secure,
            origins: vec![
                "https://app.example.com".into(),
                "https://api.example.com".into(),
            ],
        }
    }

    #[test]
    fn the_cookie_has_the_contract_attributes() {
        let mut response = HttpResponse::Ok().finish();
        sessions(true).set(&mut response, "tok", 600);
        let set = response.headers().get(header::SET_COOKIE).unwrap();
        assert_eq!(
            set.to_str().unwrap(),
            "__Host-securecrud_refresh=tok; Max-Age=600; Path=/; HttpOnly; Secure; SameSite=Strict"
        );
        let mut cleared = HttpResponse::Ok().finish();
        sessions(false).clear(&mut cleared);
        assert_eq!(
            cleared
                .headers()
                .get(header::SET_COOKIE)
                .unwrap()
                .to_str()
                .unwrap(),
            "securecrud_refresh=; Max-Age=0; Path=/; HttpOnly; SameSite=Strict"
        );
    }

    #[test]
    fn the_cookie_needs_the_header_and_an_allowed_origin() {
        let browser = sessions(true);
        let cookie = ("cookie", "other=1; __Host-securecrud_refresh=tok");
        let none = TestRequest::default().to_http_request();
        assert_eq!(browser.use_cookie(&none).unwrap(), None);
        let bare = TestRequest::default()
            .insert_header(cookie)
            .to_http_request();
        assert!(browser.use_cookie(&bare).is_err());
        let same_origin = TestRequest::default()
            .insert_header(cookie)
            .insert_header((CSRF_HEADER, CSRF_HEADER_VALUE))
            .insert_header(("origin", "https://api.example.com"))
            .to_http_request();
        assert_eq!(
            browser.use_cookie(&same_origin).unwrap().as_deref(),
            Some("tok")
        );
        let no_origin = TestRequest::default()
            .insert_header(cookie)
            .insert_header((CSRF_HEADER, CSRF_HEADER_VALUE))
            .to_http_request();
        assert!(browser.use_cookie(&no_origin).is_ok());
        let foreign = TestRequest::default()
            .insert_header(cookie)
            .insert_header((CSRF_HEADER, CSRF_HEADER_VALUE))
            .insert_header(("origin", "https://evil.example"))
            .to_http_request();
        assert!(browser.use_cookie(&foreign).is_err());
        let null_origin = TestRequest::default()
            .insert_header(cookie)
            .insert_header((CSRF_HEADER, CSRF_HEADER_VALUE))
            .insert_header(("origin", "null"))
            .to_http_request();
        assert!(browser.use_cookie(&null_origin).is_err());
    }
}
