//! `ApiError`: every failure a client can see, as RFC 9457 problem+json.
//!
//! Each variant's doc names its status and `code`, and [`ApiError::answer`] is the one table of what each
//! answers with: status, code, title, detail, headers, the cause to log ([`answer::Answer`]). The body carries
//! the request id (from the task-local set by the request middleware). 5xx bodies are opaque: the cause is
//! logged with the request id and never sent. The OAuth 2.0 endpoints answer the same errors in RFC 6749's
//! terms ([`OAuthError`]). Error *sets* ([`error_set!`]) wrap an error per operation so the OpenAPI document
//! lists the statuses each operation can really return.

use std::fmt;

use actix_web::{HttpResponse, ResponseError, http::StatusCode};
use log::Level;
use securecrud_auth::ErrorCode;
use securecrud_domain::ConflictField;
use securecrud_domain::ValidationErrors;

use answer::Answer;

mod answer;
mod from_service;
mod oauth;
mod problem;

pub use oauth::OAuthError;
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
const INVALID_CEREMONY: &str = "the passkey ceremony is unknown, expired or already used (each works once, for 5 \
     minutes): ask for new options";
const PASSKEYS_OFF: &str = "passkeys are not offered by this server (its public address is an IP address; the \
     operator can set WEBAUTHN_RP_ID)";
const INVALID_LOGIN_CODE: &str = "the login_code is unknown, expired or already used (each works once, for 60 \
     seconds): sign in with the provider again";
const PROVIDER_DOWN: &str = "the identity provider cannot be reached (or its discovery document does not load); \
     retry later";
const LAST_SIGN_IN_METHOD: &str = "this is the account's only way to sign in: set a password (by a password reset), \
     add a passkey or link another provider first";
const REAUTHENTICATE: &str = "this account has no password: sign in again (a session opened in the last 10 \
     minutes stands in for the password)";
const LAST_ADMIN: &str = "the last active admin cannot be demoted or deactivated";
const UNAVAILABLE: &str = "the service is temporarily unavailable; retry later";
const DATABASE_DOWN: &str = "the database is unavailable; retry later";
const TOO_LARGE: &str = "the request body is larger than 64 KiB";
/// The detail of [`ApiError::EmailNotVerified`].
const EMAIL_NOT_VERIFIED: &str = "verify your email address first (see the link we sent)";
const UNSUPPORTED_GRANT: &str = "grant_type must be 'password' or 'refresh_token'";

#[derive(Debug)]
pub enum ApiError {
    /// 400 `bad_request`: unparseable JSON or form, bad query string.
    BadRequest(String),
    /// 400 `invalid_token`: a verification or reset token (from an email link) that is unknown, used,
    /// superseded or expired. Not an authentication failure, so no `WWW-Authenticate`.
    InvalidLinkToken,
    /// 400 `invalid_token`: a passkey ceremony id (`registration_id`, `challenge_id`, or the passkey challenge
    /// of a second step) that is unknown, used or expired.
    InvalidCeremony,
    /// 400 `invalid_token`: an OpenID Connect `login_code` that is unknown, used or expired.
    InvalidLoginCode,
    /// 503 `unavailable` with `Retry-After`: an OpenID Connect provider that cannot be reached.
    ProviderUnavailable,
    /// 409 `last_sign_in_method`: the account's only way in cannot be removed.
    LastSignInMethod,
    /// 401 `reauthentication_required`: an account without a password, whose session is too old.
    ReauthenticationRequired,
    /// 404 `not_found`: passkeys are off on this server (its public host is an IP address and no
    /// `WEBAUTHN_RP_ID` is set).
    PasskeysOff,
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
    /// 400 `unsupported_grant_type`: a `grant_type` the token endpoint does not offer.
    UnsupportedGrantType,
}

impl ApiError {
    pub fn missing_token() -> Self {
        Self::Unauthorized {
            code: ErrorCode::Unauthorized,
            detail: "a bearer access token is required",
        }
    }

    /// What this error answers with: its row of the table. Status and title follow from the code unless the
    /// row says otherwise; every `401` gets its `WWW-Authenticate` challenge from the code when answered.
    fn answer(&self) -> Answer<'_> {
        use ErrorCode as C;
        match self {
            Self::BadRequest(detail) => Answer::new(C::BadRequest, detail),
            // An email-link token is not a credential: 400, not 401 (API.md).
            Self::InvalidLinkToken => Answer::new(C::InvalidToken, INVALID_LINK)
                .with_status(StatusCode::BAD_REQUEST, "Invalid token"),
            Self::InvalidCeremony => Answer::new(C::InvalidToken, INVALID_CEREMONY)
                .with_status(StatusCode::BAD_REQUEST, "Invalid token"),
            Self::PasskeysOff => Answer::new(C::NotFound, PASSKEYS_OFF),
            Self::InvalidLoginCode => Answer::new(C::InvalidToken, INVALID_LOGIN_CODE)
                .with_status(StatusCode::BAD_REQUEST, "Invalid token"),
            Self::ProviderUnavailable => {
                Answer::new(C::Unavailable, PROVIDER_DOWN).with_retry_after(RETRY_AFTER_SECS)
            }
            Self::LastSignInMethod => Answer::new(C::LastSignInMethod, LAST_SIGN_IN_METHOD),
            Self::ReauthenticationRequired => {
                Answer::new(C::ReauthenticationRequired, REAUTHENTICATE)
            }
            Self::Unauthorized { code, detail } => Answer::new(*code, *detail),
            Self::MfaRequired(challenge) => {
                Answer::new(C::MfaRequired, VERIFY_WITH_TOKEN).with_mfa(challenge)
            }
            Self::SecondFactorRequired => Answer::new(C::MfaRequired, SEND_A_CODE),
            Self::Forbidden(detail) => Answer::new(C::Forbidden, *detail),
            Self::EmailNotVerified => Answer::new(C::EmailNotVerified, EMAIL_NOT_VERIFIED),
            Self::NotFound => Answer::new(C::NotFound, "no such resource"),
            Self::MethodNotAllowed { allow } => {
                let methods = allowed_methods(allow);
                Answer::new(C::MethodNotAllowed, format!("allowed methods: {methods}"))
                    .with_allow(methods)
            }
            Self::Conflict(ConflictField::Username) => {
                Answer::new(C::UsernameTaken, "this username is already taken")
            }
            Self::Conflict(ConflictField::Email) => {
                Answer::new(C::EmailTaken, "this email is already registered")
            }
            Self::Conflict(ConflictField::Credential) => {
                Answer::new(C::Conflict, "this passkey is registered already")
            }
            Self::Conflict(ConflictField::Identity) => {
                Answer::new(C::Conflict, "this identity is linked to an account already")
            }
            Self::PayloadTooLarge => Answer::new(C::PayloadTooLarge, TOO_LARGE),
            Self::UnsupportedMediaType(expected) => Answer::new(
                C::UnsupportedMediaType,
                format!("the request body must be {expected}"),
            ),
            Self::Validation(errors) => {
                Answer::new(C::ValidationFailed, errors.to_string()).with_fields(errors)
            }
            Self::LastAdmin => Answer::new(C::LastAdmin, LAST_ADMIN),
            Self::StateConflict(detail) => Answer::new(C::Conflict, *detail),
            Self::RateLimited { retry_after_secs } => Answer::new(
                C::RateLimited,
                format!("too many attempts; retry in {retry_after_secs} s"),
            )
            .with_retry_after(retry_after_secs.to_string()),
            Self::SecondFactorLocked => Answer::new(C::RateLimited, CODES_LOCKED)
                .with_retry_after(SECOND_FACTOR_LOCKED_RETRY_AFTER_SECS),
            Self::Busy { retry_after_secs } => Answer::new(
                C::Unavailable,
                format!("the server is busy checking passwords; retry in {retry_after_secs} s"),
            )
            .with_retry_after(retry_after_secs.to_string()),
            Self::Unavailable(cause) => Answer::new(C::Unavailable, UNAVAILABLE)
                .with_retry_after(RETRY_AFTER_SECS)
                .logged(Level::Warn, "database unavailable", cause),
            Self::DatabaseDown => Answer::new(C::Unavailable, DATABASE_DOWN)
                .with_retry_after(DATABASE_DOWN_RETRY_AFTER_SECS),
            Self::Internal(cause) => Answer::new(C::Internal, "an unexpected error occurred")
                .logged(Level::Error, "internal error", cause),
            Self::Other(status) => Answer::of_status(*status),
            Self::UnsupportedGrantType => Answer::new(C::UnsupportedGrantType, UNSUPPORTED_GRANT),
        }
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.answer().fmt(f)
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.answer().status
    }

    fn error_response(&self) -> HttpResponse {
        self.answer().respond()
    }
}

/// Declares an error type for a group of operations: an `ApiError` (or, given in parentheses, another error
/// type such as [`OAuthError`]) whose OpenAPI description lists exactly the given statuses, each with the
/// `Problem` body.
macro_rules! error_set {
    ($(#[$doc:meta])* $name:ident { $($code:tt => $description:tt),+ $(,)? }) => {
        $crate::error::error_set!($(#[$doc])* $name($crate::error::ApiError) { $($code => $description),+ });
    };
    ($(#[$doc:meta])* $name:ident($inner:ty) { $($code:tt => $description:tt),+ $(,)? }) => {
        $(#[$doc])*
        #[paperclip::actix::api_v2_errors($(code = $code, description = $description,)+ default_schema = "Problem")]
        #[derive(Debug)]
        pub struct $name(pub $inner);

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

        impl<E: Into<$inner>> From<E> for $name {
            fn from(err: E) -> Self {
                Self(err.into())
            }
        }
    };
}

pub(crate) use error_set;

#[cfg(test)]
mod tests {
    use actix_web::{body::MessageBody, http::header};

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
    fn a_passkey_registered_already_is_a_409_conflict() {
        let err = ApiError::Conflict(ConflictField::Credential);
        assert_eq!(err.status_code(), StatusCode::CONFLICT);
        assert!(body(&err).contains(r#""code":"conflict""#));
    }

    #[test]
    fn problem_types_are_urls_derived_from_the_code() {
        let problem = ApiError::Validation(ValidationErrors::single("email", "is required"))
            .answer()
            .problem();
        assert_eq!(
            problem.type_,
            "https://securecrud.dev/problems/validation-failed"
        );
        assert_eq!(problem.errors.map(|e| e.len()), Some(1));
    }
}
