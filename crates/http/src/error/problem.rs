//! The problem+json body (RFC 9457) of every error response.

use paperclip::actix::Apiv2Schema;
use serde::Serialize;

/// The RFC 9457 body of every error response.
#[derive(Debug, Serialize, Apiv2Schema)]
pub struct Problem {
    /// A URI naming the problem type.
    #[serde(rename = "type")]
    pub type_: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    /// A stable, machine-readable code, e.g. `validation_failed`.
    pub code: String,
    /// The request's `X-Request-Id`, also in the access log.
    pub request_id: String,
    /// Every invalid field; for `validation_failed` (and the token endpoint's `invalid_request`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub errors: Option<Vec<ProblemField>>,
    /// Only at the token and revocation endpoints: the RFC 6749 §5.2 error code (`invalid_request`,
    /// `invalid_grant`, `unsupported_grant_type`; `temporarily_unavailable` with a 429 or 503,
    /// `server_error` with a 500), so that OAuth 2.0 client libraries can read it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Only with `error`: a human-readable explanation (the same as `detail`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_description: Option<String>,
    /// Only with `mfa_required`: the single-use token to send with a code to `POST /api/v1/auth/mfa/verify`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mfa_token: Option<String>,
    /// Only with `mfa_required`: seconds until `mfa_token` expires.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mfa_token_expires_in: Option<i64>,
    /// Only with the `mfa_token` of a login: the second factors the account has, of `totp`, `passkey` and
    /// `recovery_code`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mfa_methods: Option<Vec<String>>,
}

/// One invalid field of a `422`.
#[derive(Debug, Serialize, Apiv2Schema)]
pub struct ProblemField {
    pub field: String,
    pub message: String,
}

impl From<securecrud_auth::problem::Problem> for Problem {
    /// The members every problem has; the api's own are added by the answer that needs them.
    fn from(base: securecrud_auth::problem::Problem) -> Self {
        Self {
            type_: base.type_,
            title: base.title,
            status: base.status,
            detail: base.detail,
            code: base.code.as_str().to_owned(),
            request_id: base.request_id,
            errors: None,
            error: None,
            error_description: None,
            mfa_token: None,
            mfa_token_expires_in: None,
            mfa_methods: None,
        }
    }
}
