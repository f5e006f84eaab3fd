//! The OAuth 2.0 token and revocation endpoints' errors: the api's errors in RFC 6749 §5.2's terms.

use std::fmt;

use actix_web::{HttpResponse, ResponseError, http::StatusCode};
use securecrud_auth::ErrorCode;

use super::{ApiError, answer::Answer};

/// An error as the token and revocation endpoints answer it (RFC 6749 §5.2): a refused grant (wrong
/// password, bad refresh token, an account that may not log in) is `400 invalid_grant`; an invalid or
/// missing parameter `400 invalid_request`; every other failure keeps its status. Each also carries the
/// `error` and `error_description` members OAuth 2.0 clients read.
#[derive(Debug)]
pub struct OAuthError(pub ApiError);

impl<E: Into<ApiError>> From<E> for OAuthError {
    fn from(err: E) -> Self {
        Self(err.into())
    }
}

impl Answer<'_> {
    /// This answer at the token and revocation endpoints.
    fn at_token_endpoint(self) -> Self {
        let (answer, error) = match (self.status.as_u16(), self.code) {
            // Not a refused grant: the client continues at `/auth/mfa/verify` (its `error` says so).
            (_, ErrorCode::MfaRequired) => (self, "mfa_required"),
            (401 | 403, _) => (self.recoded(ErrorCode::InvalidGrant), "invalid_grant"),
            (_, ErrorCode::ValidationFailed | ErrorCode::BadRequest) => {
                (self.recoded(ErrorCode::InvalidRequest), "invalid_request")
            }
            (_, ErrorCode::UnsupportedGrantType) => (self, "unsupported_grant_type"),
            (429 | 503, _) => (self, "temporarily_unavailable"),
            (500.., _) => (self, "server_error"),
            _ => (self, "invalid_request"),
        };
        answer.with_oauth_error(error)
    }
}

impl OAuthError {
    fn answer(&self) -> Answer<'_> {
        self.0.answer().at_token_endpoint()
    }
}

impl fmt::Display for OAuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.answer().fmt(f)
    }
}

impl ResponseError for OAuthError {
    fn status_code(&self) -> StatusCode {
        self.answer().status
    }

    fn error_response(&self) -> HttpResponse {
        self.answer().respond()
    }
}

#[cfg(test)]
mod tests {
    use actix_web::{body::MessageBody, http::header};
    use securecrud_domain::ValidationErrors;
    use serde_json::Value;

    use super::*;

    /// Status, body and the `WWW-Authenticate` and `Retry-After` headers of `err` at the token endpoint.
    fn answered(err: ApiError) -> (u16, Value, Option<String>, Option<String>) {
        let response = OAuthError(err).error_response();
        let header = |name| {
            response
                .headers()
                .get(name)
                .map(|v| v.to_str().unwrap().to_owned())
        };
        let (challenge, retry) = (
            header(header::WWW_AUTHENTICATE),
            header(header::RETRY_AFTER),
        );
        let status = response.status().as_u16();
        let body = response.into_body().try_into_bytes().unwrap();
        (
            status,
            serde_json::from_slice(&body).unwrap(),
            challenge,
            retry,
        )
    }

    #[test]
    fn a_refused_grant_is_400_invalid_grant_without_a_challenge() {
        for refused in [
            ApiError::Unauthorized {
                code: ErrorCode::InvalidCredentials,
                detail: "invalid login or password",
            },
            ApiError::Forbidden("this account is deactivated"),
            ApiError::EmailNotVerified,
        ] {
            let (status, body, challenge, _) = answered(refused);
            assert_eq!(status, 400);
            assert_eq!(body["code"], "invalid_grant");
            assert_eq!(body["error"], "invalid_grant");
            assert_eq!(body["title"], "Invalid grant");
            assert_eq!(body["error_description"], body["detail"]);
            assert_eq!(challenge, None);
        }
    }

    #[test]
    fn bad_parameters_are_400_invalid_request_listing_the_fields() {
        let (status, body, _, _) =
            answered(ValidationErrors::single("token", "is required").into());
        assert_eq!(
            (status, &body["code"], &body["error"]),
            (400, &"invalid_request".into(), &"invalid_request".into())
        );
        assert_eq!(body["errors"][0]["field"], "token");
        let (status, body, _, _) = answered(ApiError::BadRequest("unreadable form".into()));
        assert_eq!((status, &body["error"]), (400, &"invalid_request".into()));
    }

    #[test]
    fn other_failures_keep_their_status_and_gain_an_oauth_error() {
        let (status, body, challenge, _) = answered(ApiError::SecondFactorRequired);
        assert_eq!((status, &body["error"]), (401, &"mfa_required".into()));
        assert_eq!(challenge.as_deref(), Some(r#"Bearer realm="securecrud""#));
        let (status, body, _, retry) = answered(ApiError::RateLimited {
            retry_after_secs: 7,
        });
        assert_eq!(
            (status, &body["error"]),
            (429, &"temporarily_unavailable".into())
        );
        assert_eq!(retry.as_deref(), Some("7"));
        let (status, body, _, _) = answered(ApiError::Internal(anyhow::anyhow!("disk on fire")));
        assert_eq!(
            (status, &body["error"], &body["code"]),
            (500, &"server_error".into(), &"internal".into())
        );
        assert!(!body.to_string().contains("fire"));
        let (status, body, _, _) = answered(ApiError::PayloadTooLarge);
        assert_eq!((status, &body["error"]), (413, &"invalid_request".into()));
        let (status, body, _, _) = answered(ApiError::UnsupportedGrantType);
        assert_eq!(
            (status, &body["error"]),
            (400, &"unsupported_grant_type".into())
        );
    }

    #[test]
    fn outside_the_token_endpoint_there_is_no_oauth_error() {
        let response = ApiError::Unauthorized {
            code: ErrorCode::TokenExpired,
            detail: "the access token has expired",
        }
        .error_response();
        assert_eq!(response.status().as_u16(), 401);
        assert_eq!(
            response.headers().get(header::WWW_AUTHENTICATE).unwrap(),
            r#"Bearer realm="securecrud", error="invalid_token""#
        );
        let body = response.into_body().try_into_bytes().unwrap();
        let body: Value = serde_json::from_slice(&body).unwrap();
        assert!(body.get("error").is_none(), "{body}");
    }
}
