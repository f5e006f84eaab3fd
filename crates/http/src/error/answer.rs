//! [`Answer`]: everything one error answers with, and how it becomes the response.

use std::{borrow::Cow, fmt};

use actix_web::{
    HttpResponse,
    http::{
        StatusCode,
        header::{self, HeaderName},
    },
};
use log::Level;
use securecrud_auth::ErrorCode;
use securecrud_domain::ValidationErrors;
use securecrud_service::MfaChallenge;

use super::{PROBLEM_JSON, Problem, ProblemField};
use crate::request::current_request_id;

/// One row of the error table ([`super::ApiError::answer`]).
pub(super) struct Answer<'a> {
    pub(super) status: StatusCode,
    pub(super) code: ErrorCode,
    pub(super) title: &'static str,
    pub(super) detail: Cow<'a, str>,
    /// `Allow` or `Retry-After`, when the status calls for one (`WWW-Authenticate` follows from the code).
    header: Option<(HeaderName, Cow<'a, str>)>,
    /// Every invalid field, listed in `errors`.
    fields: Option<&'a ValidationErrors>,
    /// The login's second-factor challenge (`mfa_token`).
    mfa: Option<&'a MfaChallenge>,
    /// A server-side cause: logged with the request id, never sent.
    cause: Option<(Level, &'static str, &'a anyhow::Error)>,
    /// RFC 6749 §5.2's `error` member, at the OAuth 2.0 endpoints only.
    oauth_error: Option<&'static str>,
}

impl<'a> Answer<'a> {
    /// The answer of `code`: its status and title, and `detail`.
    pub(super) fn new(code: ErrorCode, detail: impl Into<Cow<'a, str>>) -> Self {
        Self {
            status: status_of(code),
            code,
            title: code.title(),
            detail: detail.into(),
            header: None,
            fields: None,
            mfa: None,
            cause: None,
            oauth_error: None,
        }
    }

    /// The answer of a bare status (a middleware's or the router's): its code, its reason as title and
    /// detail.
    pub(super) fn of_status(status: StatusCode) -> Self {
        let reason = status.canonical_reason();
        Self::new(
            ErrorCode::for_status(status.as_u16()),
            reason.unwrap_or("the request failed").to_lowercase(),
        )
        .with_status(status, reason.unwrap_or("Error"))
    }

    /// The same answer under another code, with that code's status and title.
    pub(super) fn recoded(self, code: ErrorCode) -> Self {
        Self {
            status: status_of(code),
            code,
            title: code.title(),
            ..self
        }
    }

    /// A status and title other than the code's.
    pub(super) fn with_status(self, status: StatusCode, title: &'static str) -> Self {
        Self {
            status,
            title,
            ..self
        }
    }

    pub(super) fn with_allow(self, methods: String) -> Self {
        Self {
            header: Some((header::ALLOW, methods.into())),
            ..self
        }
    }

    pub(super) fn with_retry_after(self, secs: impl Into<Cow<'a, str>>) -> Self {
        Self {
            header: Some((header::RETRY_AFTER, secs.into())),
            ..self
        }
    }

    pub(super) fn with_fields(self, fields: &'a ValidationErrors) -> Self {
        Self {
            fields: Some(fields),
            ..self
        }
    }

    pub(super) fn with_mfa(self, challenge: &'a MfaChallenge) -> Self {
        Self {
            mfa: Some(challenge),
            ..self
        }
    }

    pub(super) fn logged(self, level: Level, what: &'static str, cause: &'a anyhow::Error) -> Self {
        Self {
            cause: Some((level, what, cause)),
            ..self
        }
    }

    pub(super) fn with_oauth_error(self, error: &'static str) -> Self {
        Self {
            oauth_error: Some(error),
            ..self
        }
    }

    /// The problem body, for the current request.
    pub(super) fn problem(&self) -> Problem {
        let request_id = current_request_id().unwrap_or_default();
        let base = securecrud_auth::problem::Problem {
            status: self.status.as_u16(),
            title: self.title.to_owned(),
            ..securecrud_auth::problem::Problem::new(self.code, self.detail.as_ref(), request_id)
        };
        Problem {
            errors: self.fields.map(|fields| {
                fields
                    .errors()
                    .iter()
                    .map(|e| ProblemField {
                        field: e.field.clone(),
                        message: e.message.clone(),
                    })
                    .collect()
            }),
            error: self.oauth_error.map(str::to_owned),
            error_description: self.oauth_error.map(|_| base.detail.clone()),
            mfa_token: self.mfa.map(|c| c.mfa_token.clone()),
            mfa_token_expires_in: self.mfa.map(|c| c.expires_in),
            mfa_methods: self
                .mfa
                .map(|c| c.methods.iter().map(|m| (*m).to_owned()).collect()),
            ..Problem::from(base)
        }
    }

    /// The response: problem+json with the headers the status calls for; the cause, if any, is logged.
    pub(super) fn respond(&self) -> HttpResponse {
        let problem = self.problem();
        if let Some((level, what, cause)) = self.cause {
            log::log!(level, request_id = problem.request_id.as_str(); "{what}: {cause:#}");
        }
        let mut response = HttpResponse::build(self.status);
        response.insert_header((header::CONTENT_TYPE, PROBLEM_JSON));
        if self.status == StatusCode::UNAUTHORIZED
            && let Some(challenge) = self.code.bearer_challenge()
        {
            response.insert_header((header::WWW_AUTHENTICATE, challenge));
        }
        if let Some((name, value)) = &self.header {
            response.insert_header((name.clone(), value.as_ref()));
        }
        match serde_json::to_vec(&problem) {
            Ok(body) => response.body(body),
            Err(_) => response.finish(),
        }
    }
}

impl fmt::Display for Answer<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}: {}", self.status.as_u16(), self.code, self.detail)
    }
}

fn status_of(code: ErrorCode) -> StatusCode {
    StatusCode::from_u16(code.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}
