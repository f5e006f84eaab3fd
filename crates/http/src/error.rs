//! `ApiError`: every failure a client can see, as RFC 9457 problem+json.
//!
//! Each variant's doc names its status and `code`. The body carries the request id (from the task-local set
//! by the request middleware). 5xx bodies are opaque: the cause is logged here with the request id and never
//! sent. Error *sets* ([`error_set!`]) wrap `ApiError` per operation so the OpenAPI document lists the
//! statuses each operation can really return.

use std::fmt;

use actix_web::{
    HttpResponse, ResponseError,
    http::{StatusCode, header},
};
use securecrud_auth::ErrorCode;
use securecrud_domain::ConflictField;
use securecrud_domain::ValidationErrors;

use crate::request::current_request_id;

mod from_service;
mod problem;

pub use problem::{Problem, ProblemField};

pub const PROBLEM_JSON: &str = "application/problem+json";
/// Seconds a client should wait before retrying after a 503.
const RETRY_AFTER_SECS: &str = "5";
/// Seconds a client should wait before retrying while the database is known to be down: the api notices its
/// return within a second, and the client learns it on its next try.
const DATABASE_DOWN_RETRY_AFTER_SECS: &str = "2";

/// The methods of a resource as `Allow` lists them: `HEAD` too wherever `GET` is served (every `GET` route
/// answers `HEAD`, see [`crate::middleware::head_as_get`]).
fn allowed_methods(allow: &[&str]) -> String {
    let mut methods = allow.to_vec();
    if methods.contains(&"GET") && !methods.contains(&"HEAD") {
        methods.insert(
            methods
                .iter()
                .position(|m| *m == "GET")
                .map_or(0, |i| i + 1),
            "HEAD",
        );
    }
    methods.join(", ")
}

/// `Retry-After` of [`ApiError::SecondFactorLocked`]: an hour, a hint only (an admin reset reopens it).
const SECOND_FACTOR_LOCKED_RETRY_AFTER_SECS: &str = "3600";

// The details of the errors that always say the same.
const INVALID_LINK: &str =
    "the link's token is invalid, expired or already used; ask for a new link";
const SEND_A_CODE: &str = "this account has two-factor authentication on: send a code from the authenticator app (or \
     a recovery code) in `code` with the password";
const VERIFY_WITH_TOKEN: &str = "the password is right; send a code from the authenticator app (or a recovery code) \
     with this mfa_token to POST /api/v1/auth/mfa/verify";
const CODES_LOCKED: &str = "too many wrong two-factor codes in a row: codes are refused until an administrator resets \
     two-factor authentication for this account";
const LAST_ADMIN: &str = "the last active admin cannot be demoted or deactivated";
const UNAVAILABLE: &str = "the service is temporarily unavailable; retry later";
const DATABASE_DOWN: &str = "the database is unavailable; retry later";
const TOO_LARGE: &str = "the request body is larger than 64 KiB";
/// The detail of [`ApiError::EmailNotVerified`].
const EMAIL_NOT_VERIFIED: &str = "verify your email address first (see the link we sent)";

#[derive(Debug)]
pub enum ApiError {
    /// 400 `bad_request`: unparseable JSON or form, bad query string.
    BadRequest(String),
    /// 400 `invalid_token`: a verification or reset token (from an email link) that is unknown, used,
    /// superseded or expired. Not an authentication failure, so no `WWW-Authenticate`.
    InvalidLinkToken,
    /// 401 with a `code` of `unauthorized`, `invalid_credentials`, `invalid_token` or `token_expired`.
    Unauthorized {
        code: ErrorCode,
        detail: &'static str,
    },
    /// 401 `mfa_required`, with the login's `mfa_token`: the password was right, a second factor is needed.
    MfaRequired(securecrud_service::MfaChallenge),
    /// 401 `mfa_required` without an `mfa_token`: a change that needs a second factor (step-up) came
    /// without `code`.
    SecondFactorRequired,
    /// 403 `forbidden`.
    Forbidden(&'static str),
    /// 403 `email_not_verified`: login refused until the email address is verified.
    EmailNotVerified,
    /// 404 `not_found`: no such route or resource (or one the caller may not see).
    NotFound,
    /// 405 `method_not_allowed`, with `Allow`.
    MethodNotAllowed { allow: &'static [&'static str] },
    /// 409 `username_taken` / `email_taken`.
    Conflict(ConflictField),
    /// 413 `payload_too_large`.
    PayloadTooLarge,
    /// 415 `unsupported_media_type`.
    UnsupportedMediaType(&'static str),
    /// 422 `validation_failed`, listing every invalid field.
    Validation(ValidationErrors),
    /// 409 `last_admin`: the change would leave no active admin.
    LastAdmin,
    /// 409 `conflict`: the state does not allow it (an email already verified).
    StateConflict(&'static str),
    /// 429 `rate_limited`, with `Retry-After` in seconds.
    RateLimited { retry_after_secs: u64 },
    /// 429 `rate_limited`: too many wrong second factors in a row; codes are refused until an admin resets
    /// the account's two-factor authentication (`Retry-After` is only a hint to come back later).
    SecondFactorLocked,
    /// 503 `unavailable` with `Retry-After`: password hashing is at capacity (a bounded queue).
    Busy { retry_after_secs: u64 },
    /// 503 `unavailable`, with `Retry-After`; the cause is logged.
    Unavailable(anyhow::Error),
    /// 503 `unavailable` with `Retry-After`, without trying: the database did not answer its last probe
    /// (logged once, when it stopped answering, not per request).
    DatabaseDown,
    /// 500 `internal`; the cause is logged, the client sees nothing of it.
    Internal(anyhow::Error),
    /// Any other status produced outside our handlers (e.g. by a middleware), made into a problem.
    Other(StatusCode),
    /// 400 at the token and revocation endpoints, with RFC 6749 §5.2's `error` equal to `code`
    /// (`invalid_request`, `invalid_grant` or `unsupported_grant_type`); `errors` lists the fields of an
    /// `invalid_request` when there are some.
    OAuth {
        code: ErrorCode,
        detail: String,
        errors: Option<ValidationErrors>,
    },
    /// Any other failure of the token or revocation endpoints: answered as the inner error, plus RFC 6749's
    /// `error` and `error_description` members. Build with [`ApiError::at_token_endpoint`].
    TokenEndpoint(Box<ApiError>),
}

impl ApiError {
    pub fn missing_token() -> Self {
        Self::Unauthorized {
            code: ErrorCode::Unauthorized,
            detail: "a bearer access token is required",
        }
    }

    /// This error as the token or revocation endpoint answers it (RFC 6749 §5.2): a refused grant (wrong
    /// password, bad refresh token, account that may not log in) is `400 invalid_grant`, an invalid or
    /// missing parameter `400 invalid_request`; every other failure keeps its status and gains the OAuth
    /// members.
    pub fn at_token_endpoint(self) -> Self {
        match self {
            Self::Unauthorized { detail, .. } | Self::Forbidden(detail) => Self::OAuth {
                code: ErrorCode::InvalidGrant,
                detail: detail.to_owned(),
                errors: None,
            },
            Self::EmailNotVerified => Self::OAuth {
                code: ErrorCode::InvalidGrant,
                detail: EMAIL_NOT_VERIFIED.to_owned(),
                errors: None,
            },
            Self::Validation(errors) => Self::OAuth {
                code: ErrorCode::InvalidRequest,
                detail: errors.to_string(),
                errors: Some(errors),
            },
            Self::BadRequest(detail) => Self::OAuth {
                code: ErrorCode::InvalidRequest,
                detail,
                errors: None,
            },
            already @ (Self::OAuth { .. } | Self::TokenEndpoint(_)) => already,
            // Not a refused grant: the client continues at `/auth/mfa/verify` (its `error` says so).
            mfa @ Self::MfaRequired(_) => Self::TokenEndpoint(Box::new(mfa)),
            other => Self::TokenEndpoint(Box::new(other)),
        }
    }

    /// The RFC 6749 §5.2 `error` member, at the token and revocation endpoints only.
    fn oauth_error(&self) -> Option<&'static str> {
        match self {
            Self::OAuth { code, .. } => Some(code.as_str()),
            Self::TokenEndpoint(inner) if matches!(**inner, Self::MfaRequired(_)) => {
                Some("mfa_required")
            }
            Self::TokenEndpoint(inner) => Some(match inner.status_code().as_u16() {
                429 | 503 => "temporarily_unavailable",
                500.. => "server_error",
                _ => "invalid_request",
            }),
            _ => None,
        }
    }

    /// The status, code, title and detail of this error.
    fn parts(&self) -> (StatusCode, ErrorCode, &'static str, String) {
        if let Self::TokenEndpoint(inner) = self {
            return inner.parts();
        }
        let (code, detail) = self.code_and_detail();
        let status = match self {
            // An email-link token is not a credential: 400, not 401 (API.md).
            Self::InvalidLinkToken => StatusCode::BAD_REQUEST,
            Self::Other(status) => *status,
            _ => StatusCode::from_u16(code.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        };
        let title = match self {
            Self::InvalidLinkToken => "Invalid token",
            Self::Other(status) => status.canonical_reason().unwrap_or("Error"),
            _ => code.title(),
        };
        (status, code, title, detail)
    }

    fn code_and_detail(&self) -> (ErrorCode, String) {
        match self {
            Self::BadRequest(detail) => (ErrorCode::BadRequest, detail.clone()),
            Self::InvalidLinkToken => (ErrorCode::InvalidToken, INVALID_LINK.to_owned()),
            Self::Unauthorized { code, detail } => (*code, (*detail).to_owned()),
            Self::SecondFactorRequired => (ErrorCode::MfaRequired, SEND_A_CODE.to_owned()),
            Self::MfaRequired(_) => (ErrorCode::MfaRequired, VERIFY_WITH_TOKEN.to_owned()),
            Self::Forbidden(detail) => (ErrorCode::Forbidden, (*detail).to_owned()),
            Self::EmailNotVerified => (ErrorCode::EmailNotVerified, EMAIL_NOT_VERIFIED.to_owned()),
            Self::NotFound => (ErrorCode::NotFound, "no such resource".to_owned()),
            Self::MethodNotAllowed { allow } => (
                ErrorCode::MethodNotAllowed,
                format!("allowed methods: {}", allowed_methods(allow)),
            ),
            Self::Conflict(ConflictField::Username) => (
                ErrorCode::UsernameTaken,
                "this username is already taken".to_owned(),
            ),
            Self::Conflict(ConflictField::Email) => (
                ErrorCode::EmailTaken,
                "this email is already registered".to_owned(),
            ),
            Self::PayloadTooLarge => (ErrorCode::PayloadTooLarge, TOO_LARGE.to_owned()),
            Self::UnsupportedMediaType(expected) => (
                ErrorCode::UnsupportedMediaType,
                format!("the request body must be {expected}"),
            ),
            Self::Validation(errors) => (ErrorCode::ValidationFailed, errors.to_string()),
            Self::LastAdmin => (ErrorCode::LastAdmin, LAST_ADMIN.to_owned()),
            Self::StateConflict(detail) => (ErrorCode::Conflict, (*detail).to_owned()),
            Self::RateLimited { retry_after_secs } => (
                ErrorCode::RateLimited,
                format!("too many attempts; retry in {retry_after_secs} s"),
            ),
            Self::SecondFactorLocked => (ErrorCode::RateLimited, CODES_LOCKED.to_owned()),
            Self::Unavailable(_) => (ErrorCode::Unavailable, UNAVAILABLE.to_owned()),
            Self::DatabaseDown => (ErrorCode::Unavailable, DATABASE_DOWN.to_owned()),
            Self::Busy { retry_after_secs } => (
                ErrorCode::Unavailable,
                format!("the server is busy checking passwords; retry in {retry_after_secs} s"),
            ),
            Self::Internal(_) => (
                ErrorCode::Internal,
                "an unexpected error occurred".to_owned(),
            ),
            Self::Other(status) => (
                ErrorCode::for_status(status.as_u16()),
                status
                    .canonical_reason()
                    .unwrap_or("the request failed")
                    .to_lowercase(),
            ),
            Self::OAuth { code, detail, .. } => (*code, detail.clone()),
            Self::TokenEndpoint(inner) => inner.code_and_detail(),
        }
    }

    /// The problem body for this error, for the current request.
    pub fn problem(&self) -> Problem {
        let (status, code, title, detail) = self.parts();
        Problem {
            type_: code.type_uri(),
            title: title.to_owned(),
            status: status.as_u16(),
            code: code.as_str().to_owned(),
            request_id: current_request_id().unwrap_or_default(),
            errors: match self {
                Self::Validation(errors)
                | Self::OAuth {
                    errors: Some(errors),
                    ..
                } => Some(
                    errors
                        .errors()
                        .iter()
                        .map(|e| ProblemField {
                            field: e.field.clone(),
                            message: e.message.clone(),
                        })
                        .collect(),
                ),
                _ => None,
            },
            error: self.oauth_error().map(str::to_owned),
            error_description: self.oauth_error().map(|_| detail.clone()),
            mfa_token: self.mfa_challenge().map(|c| c.mfa_token.clone()),
            mfa_token_expires_in: self.mfa_challenge().map(|c| c.expires_in),
            detail,
        }
    }

    fn mfa_challenge(&self) -> Option<&securecrud_service::MfaChallenge> {
        match self {
            Self::MfaRequired(challenge) => Some(challenge),
            Self::TokenEndpoint(inner) => inner.mfa_challenge(),
            _ => None,
        }
    }

    /// Logs the cause of a server-side failure (never sent to the client).
    fn log_cause(&self, request_id: &str) {
        match self {
            Self::Internal(cause) => {
                log::error!(request_id = request_id; "internal error: {cause:#}");
            }
            Self::Unavailable(cause) => {
                log::warn!(request_id = request_id; "database unavailable: {cause:#}");
            }
            Self::TokenEndpoint(inner) => inner.log_cause(request_id),
            _ => {}
        }
    }

    /// The headers this error's status calls for: `WWW-Authenticate`, `Allow`, `Retry-After`.
    fn add_headers(&self, response: &mut actix_web::HttpResponseBuilder) {
        match self {
            Self::MfaRequired(_) | Self::SecondFactorRequired => {
                response.insert_header((header::WWW_AUTHENTICATE, r#"Bearer realm="securecrud""#));
            }
            Self::Unauthorized { code, .. } => {
                let challenge = if code.is_token_refusal() {
                    r#"Bearer realm="securecrud", error="invalid_token""#
                } else {
                    r#"Bearer realm="securecrud""#
                };
                response.insert_header((header::WWW_AUTHENTICATE, challenge));
            }
            Self::MethodNotAllowed { allow } => {
                response.insert_header((header::ALLOW, allowed_methods(allow)));
            }
            Self::Unavailable(_) => {
                response.insert_header((header::RETRY_AFTER, RETRY_AFTER_SECS));
            }
            Self::DatabaseDown => {
                response.insert_header((header::RETRY_AFTER, DATABASE_DOWN_RETRY_AFTER_SECS));
            }
            Self::RateLimited { retry_after_secs } | Self::Busy { retry_after_secs } => {
                response.insert_header((header::RETRY_AFTER, retry_after_secs.to_string()));
            }
            Self::SecondFactorLocked => {
                response
                    .insert_header((header::RETRY_AFTER, SECOND_FACTOR_LOCKED_RETRY_AFTER_SECS));
            }
            Self::TokenEndpoint(inner) => inner.add_headers(response),
            _ => {}
        }
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (status, code, _, detail) = self.parts();
        write!(f, "{} {code}: {detail}", status.as_u16())
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.parts().0
    }

    fn error_response(&self) -> HttpResponse {
        let problem = self.problem();
        self.log_cause(&problem.request_id);
        let mut response = HttpResponse::build(self.status_code());
        response.insert_header((header::CONTENT_TYPE, PROBLEM_JSON));
        self.add_headers(&mut response);
        match serde_json::to_vec(&problem) {
            Ok(body) => response.body(body),
            Err(_) => response.finish(),
        }
    }
}

/// Declares an error type for a group of operations: an `ApiError` whose OpenAPI description lists exactly
/// the given statuses, each with the `Problem` body.
macro_rules! error_set {
    ($(#[$doc:meta])* $name:ident { $($code:tt => $description:tt),+ $(,)? }) => {
        $(#[$doc])*
        #[paperclip::actix::api_v2_errors($(code = $code, description = $description,)+ default_schema = "Problem")]
        #[derive(Debug)]
        pub struct $name(pub $crate::error::ApiError);

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                self.0.fmt(f)
            }
        }

        impl actix_web::ResponseError for $name {
            fn status_code(&self) -> actix_web::http::StatusCode {
                self.0.status_code()
            }

            fn error_response(&self) -> actix_web::HttpResponse {
                self.0.error_response()
            }
        }

        impl<E: Into<$crate::error::ApiError>> From<E> for $name {
            fn from(err: E) -> Self {
                Self(err.into())
            }
        }
    };
}

pub(crate) use error_set;

#[cfg(test)]
mod tests {
    use actix_web::body::MessageBody;

    use super::*;

    fn body(err: &ApiError) -> String {
        let bytes = err.error_response().into_body().try_into_bytes().unwrap();
        String::from_utf8(bytes.to_vec()).unwrap()
    }

    #[test]
    fn internal_errors_are_opaque() {
        let err = ApiError::Internal(anyhow::anyhow!("SELECT * FROM users at /src/secret.rs:12"));
        let text = body(&err);
        assert!(text.contains(r#""code":"internal""#));
        assert!(
            !text.contains("SELECT") && !text.contains("secret.rs"),
            "{text}"
        );
        assert_eq!(err.status_code(), StatusCode::INTERNAL_SERVER_ERROR);
    }

    #[test]
    fn unavailable_errors_are_opaque_and_ask_to_retry() {
        let err = ApiError::Unavailable(anyhow::anyhow!("pool timed out at 10.0.0.5"));
        let response = err.error_response();
        assert!(response.headers().contains_key(header::RETRY_AFTER));
        assert!(!body(&err).contains("10.0.0.5"));
    }

    #[test]
    fn problem_types_are_urls_derived_from_the_code() {
        let problem =
            ApiError::Validation(ValidationErrors::single("email", "is required")).problem();
        assert_eq!(
            problem.type_,
            "https://securecrud.dev/problems/validation-failed"
        );
        assert_eq!(problem.errors.map(|e| e.len()), Some(1));
    }
}
