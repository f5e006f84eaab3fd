//! The vocabulary of SecureCRUD's RFC 9457 problem bodies, shared by the api and by services that use this
//! crate's guards, so that both answer alike: [`ErrorCode`] (the stable `code` strings of API.md, with the
//! status, title, type and `WWW-Authenticate` challenge each implies), [`Problem`] (the members every body
//! has) and the `X-Request-Id` rules ([`request_id`]).

use serde::Serialize;

/// A stable, machine-readable problem `code` (API.md, "Errors").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// `400 bad_request`: the request could not be read.
    BadRequest,
    /// `401 unauthorized`: no credentials.
    Unauthorized,
    /// `401 invalid_credentials`: a wrong login or password.
    InvalidCredentials,
    /// `401 invalid_token`: a token that does not verify, or whose session ended.
    InvalidToken,
    /// `401 token_expired`: an access token past its `exp`.
    TokenExpired,
    /// The password was right; a second factor must be verified with the problem's `mfa_token`.
    MfaRequired,
    /// `403 forbidden`: authenticated, not allowed.
    Forbidden,
    /// Login refused until the account's email address is verified (`REQUIRE_VERIFIED_EMAIL=true`).
    EmailNotVerified,
    /// `404 not_found`.
    NotFound,
    /// `405 method_not_allowed` (with `Allow`).
    MethodNotAllowed,
    /// `409 conflict`.
    Conflict,
    /// `409 username_taken`.
    UsernameTaken,
    /// `409 email_taken`.
    EmailTaken,
    /// `409 last_admin`: the change would leave no active admin.
    LastAdmin,
    /// `409 last_sign_in_method`: the change would leave the account without a way to sign in.
    LastSignInMethod,
    /// `401 reauthentication_required`: an account without a password, whose session is too old to stand in
    /// for one; sign in again.
    ReauthenticationRequired,
    /// `413 payload_too_large`.
    PayloadTooLarge,
    /// `415 unsupported_media_type`.
    UnsupportedMediaType,
    /// `422 validation_failed`, with the invalid fields in `errors`.
    ValidationFailed,
    /// `429 rate_limited` (with `Retry-After`).
    RateLimited,
    /// `500 internal`: a server fault (details only in the server's log).
    Internal,
    /// `503 unavailable` (with `Retry-After`): a dependency is down.
    Unavailable,
    /// RFC 6749 §5.2, at the token and revocation endpoints: a parameter is missing, repeated or malformed.
    InvalidRequest,
    /// RFC 6749 §5.2: the password or refresh token of a grant is wrong, expired or revoked.
    InvalidGrant,
    /// RFC 6749 §5.2: a `grant_type` the token endpoint does not offer.
    UnsupportedGrantType,
    /// The request's head (its line and headers) is over the server's limit; answered by the HTTP layer.
    HeadersTooLarge,
    /// The request's head did not arrive in time; answered by the HTTP layer.
    RequestTimeout,
}

impl ErrorCode {
    /// The `code` string, e.g. `invalid_token`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::BadRequest => "bad_request",
            Self::Unauthorized => "unauthorized",
            Self::InvalidCredentials => "invalid_credentials",
            Self::InvalidToken => "invalid_token",
            Self::TokenExpired => "token_expired",
            Self::MfaRequired => "mfa_required",
            Self::Forbidden => "forbidden",
            Self::EmailNotVerified => "email_not_verified",
            Self::NotFound => "not_found",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::Conflict => "conflict",
            Self::UsernameTaken => "username_taken",
            Self::EmailTaken => "email_taken",
            Self::LastAdmin => "last_admin",
            Self::LastSignInMethod => "last_sign_in_method",
            Self::ReauthenticationRequired => "reauthentication_required",
            Self::PayloadTooLarge => "payload_too_large",
            Self::UnsupportedMediaType => "unsupported_media_type",
            Self::ValidationFailed => "validation_failed",
            Self::RateLimited => "rate_limited",
            Self::Internal => "internal",
            Self::Unavailable => "unavailable",
            Self::InvalidRequest => "invalid_request",
            Self::InvalidGrant => "invalid_grant",
            Self::UnsupportedGrantType => "unsupported_grant_type",
            Self::HeadersTooLarge => "headers_too_large",
            Self::RequestTimeout => "request_timeout",
        }
    }

    /// The status this code answers with (API.md, "Errors"). One exception is not a property of the code:
    /// an email-link token answers `invalid_token` with `400`, where a bearer token's is `401`.
    pub const fn status(self) -> u16 {
        match self {
            Self::BadRequest
            | Self::InvalidRequest
            | Self::InvalidGrant
            | Self::UnsupportedGrantType => 400,
            Self::Unauthorized
            | Self::InvalidCredentials
            | Self::InvalidToken
            | Self::TokenExpired
            | Self::MfaRequired
            | Self::ReauthenticationRequired => 401,
            Self::Forbidden | Self::EmailNotVerified => 403,
            Self::NotFound => 404,
            Self::MethodNotAllowed => 405,
            Self::RequestTimeout => 408,
            Self::Conflict
            | Self::UsernameTaken
            | Self::EmailTaken
            | Self::LastAdmin
            | Self::LastSignInMethod => 409,
            Self::PayloadTooLarge => 413,
            Self::UnsupportedMediaType => 415,
            Self::ValidationFailed => 422,
            Self::RateLimited => 429,
            Self::HeadersTooLarge => 431,
            Self::Internal => 500,
            Self::Unavailable => 503,
        }
    }

    /// The problem `title`: a short human summary of the kind of problem.
    pub const fn title(self) -> &'static str {
        match self {
            Self::BadRequest => "Bad request",
            Self::Unauthorized
            | Self::InvalidCredentials
            | Self::InvalidToken
            | Self::TokenExpired
            | Self::MfaRequired
            | Self::ReauthenticationRequired => "Unauthorized",
            Self::Forbidden | Self::EmailNotVerified => "Forbidden",
            Self::NotFound => "Not found",
            Self::MethodNotAllowed => "Method not allowed",
            Self::Conflict
            | Self::UsernameTaken
            | Self::EmailTaken
            | Self::LastAdmin
            | Self::LastSignInMethod => "Conflict",
            Self::PayloadTooLarge => "Payload too large",
            Self::UnsupportedMediaType => "Unsupported media type",
            Self::ValidationFailed => "Validation failed",
            Self::RateLimited => "Too many requests",
            Self::Internal => "Internal server error",
            Self::Unavailable => "Service unavailable",
            Self::InvalidRequest => "Invalid request",
            Self::InvalidGrant => "Invalid grant",
            Self::UnsupportedGrantType => "Unsupported grant type",
            Self::HeadersTooLarge => "Request header fields too large",
            Self::RequestTimeout => "Request timeout",
        }
    }

    /// The problem `type` URI: `https://securecrud.dev/problems/` and the code with dashes.
    pub fn type_uri(self) -> String {
        format!(
            "https://securecrud.dev/problems/{}",
            self.as_str().replace('_', "-")
        )
    }

    /// The code of a status produced outside a handler (a middleware, the router).
    pub const fn for_status(status: u16) -> Self {
        match status {
            400 => Self::BadRequest,
            401 => Self::Unauthorized,
            403 => Self::Forbidden,
            404 => Self::NotFound,
            405 => Self::MethodNotAllowed,
            408 => Self::RequestTimeout,
            409 => Self::Conflict,
            413 => Self::PayloadTooLarge,
            415 => Self::UnsupportedMediaType,
            422 => Self::ValidationFailed,
            429 => Self::RateLimited,
            431 => Self::HeadersTooLarge,
            503 => Self::Unavailable,
            s if s >= 500 => Self::Internal,
            _ => Self::BadRequest,
        }
    }

    /// The `WWW-Authenticate` challenge of a `401` answer with this code (RFC 6750 §3), with
    /// `error="invalid_token"` when a token was presented and refused (§3.1); `None` for a code whose status
    /// is not `401`. (A caller that answers a code with another status, as the api answers an email link's
    /// `invalid_token` with `400`, sends no challenge.)
    pub const fn bearer_challenge(self) -> Option<&'static str> {
        match self {
            _ if self.status() != 401 => None,
            Self::InvalidToken | Self::TokenExpired => {
                Some(r#"Bearer realm="securecrud", error="invalid_token""#)
            }
            _ => Some(r#"Bearer realm="securecrud""#),
        }
    }
}

/// The members every SecureCRUD problem body has: RFC 9457's `type`, `title`, `status` and `detail`, plus the
/// stable `code` and the request's `X-Request-Id`. The api adds members of its own to some answers (the
/// invalid fields of a `422`, RFC 6749's `error` at the token endpoint).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// A URI naming the problem type, derived from `code`.
    #[serde(rename = "type")]
    pub type_: String,
    /// A short, fixed summary of the problem type.
    pub title: String,
    /// The HTTP status.
    pub status: u16,
    /// What went wrong with this request, for a human.
    pub detail: String,
    /// The stable machine-readable code.
    pub code: ErrorCode,
    /// The request's `X-Request-Id`, to find it in the server's log.
    pub request_id: String,
}

impl Problem {
    /// The problem `code` names: its status, title and type.
    pub fn new(code: ErrorCode, detail: impl Into<String>, request_id: impl Into<String>) -> Self {
        Self {
            type_: code.type_uri(),
            title: code.title().to_owned(),
            status: code.status(),
            detail: detail.into(),
            code,
            request_id: request_id.into(),
        }
    }
}

impl serde::Serialize for ErrorCode {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `X-Request-Id`: a client's value is kept when it is 1–128 characters of `[A-Za-z0-9._:-]`; otherwise a
/// new one is made.
pub mod request_id {
    /// The header's name.
    pub const HEADER: &str = "x-request-id";

    /// `value` if a client may choose it as its request id.
    pub fn accept(value: &str) -> Option<&str> {
        let ok = (1..=128).contains(&value.len())
            && value
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'));
        ok.then_some(value)
    }

    /// A new unique request id.
    pub fn generate() -> String {
        uuid::Uuid::new_v4().simple().to_string()
    }

    /// The client's id when acceptable, else a new one.
    pub fn from_header(value: Option<&str>) -> String {
        value.and_then(accept).map_or_else(generate, str::to_owned)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_the_contract_strings_and_types_derive_from_them() {
        assert_eq!(ErrorCode::InvalidToken.as_str(), "invalid_token");
        assert_eq!(
            ErrorCode::ValidationFailed.type_uri(),
            "https://securecrud.dev/problems/validation-failed"
        );
        assert_eq!(ErrorCode::for_status(503), ErrorCode::Unavailable);
        assert_eq!(ErrorCode::for_status(502), ErrorCode::Internal);
    }

    #[test]
    fn every_401_has_a_bearer_challenge_naming_a_refused_token() {
        assert_eq!(
            ErrorCode::TokenExpired.bearer_challenge(),
            Some(r#"Bearer realm="securecrud", error="invalid_token""#)
        );
        for code in [
            ErrorCode::Unauthorized,
            ErrorCode::InvalidCredentials,
            ErrorCode::MfaRequired,
        ] {
            assert_eq!(
                code.bearer_challenge(),
                Some(r#"Bearer realm="securecrud""#)
            );
        }
        assert_eq!(ErrorCode::Forbidden.bearer_challenge(), None);
        assert_eq!(ErrorCode::InvalidGrant.bearer_challenge(), None);
    }

    #[test]
    fn a_problem_takes_its_status_title_and_type_from_its_code() {
        let problem = Problem::new(ErrorCode::NotFound, "no such task", "r1");
        assert_eq!(
            serde_json::to_value(&problem).unwrap(),
            serde_json::json!({
                "type": "https://securecrud.dev/problems/not-found",
                "title": "Not found",
                "status": 404,
                "detail": "no such task",
                "code": "not_found",
                "request_id": "r1",
            })
        );
    }

    #[test]
    fn client_request_ids_are_kept_only_when_well_formed() {
        assert_eq!(request_id::accept("abc-123_x.y:z"), Some("abc-123_x.y:z"));
        assert_eq!(request_id::accept(""), None);
        assert_eq!(request_id::accept("has space"), None);
        assert_eq!(request_id::accept(&"a".repeat(129)), None);
        assert_eq!(request_id::from_header(Some("ok")), "ok");
        assert_eq!(request_id::from_header(Some("no way")).len(), 32);
    }
}
