//! How the use cases' failures (and a body's invalid fields) become API errors.

use securecrud_auth::ErrorCode;
use securecrud_domain::ValidationErrors;
use securecrud_service::ServiceError;

use super::ApiError;

impl From<ServiceError> for ApiError {
    fn from(err: ServiceError) -> Self {
        match err {
            ServiceError::Validation(errors) => Self::Validation(errors),
            ServiceError::Conflict(field) => Self::Conflict(field),
            ServiceError::InvalidCredentials => Self::Unauthorized {
                code: ErrorCode::InvalidCredentials,
                detail: "invalid login or password",
            },
            ServiceError::InvalidToken(kind) => Self::Unauthorized {
                code: ErrorCode::InvalidToken,
                detail: match kind {
                    securecrud_service::CredentialKind::Access => {
                        "the access token is invalid or its session has ended"
                    }
                    securecrud_service::CredentialKind::Refresh => {
                        "the refresh token is invalid, expired or already used, or its session has ended"
                    }
                    securecrud_service::CredentialKind::Mfa => {
                        "the mfa_token is invalid, expired or already used: log in again for a new one"
                    }
                },
            },
            ServiceError::InvalidLinkToken => Self::InvalidLinkToken,
            ServiceError::InvalidCeremony => Self::InvalidCeremony,
            ServiceError::PasskeysOff => Self::PasskeysOff,
            ServiceError::InvalidLoginCode => Self::InvalidLoginCode,
            ServiceError::ProviderUnavailable => Self::ProviderUnavailable,
            ServiceError::LastSignInMethod => Self::LastSignInMethod,
            ServiceError::ReauthenticationRequired => Self::ReauthenticationRequired,
            ServiceError::InvalidPasskey => Self::Unauthorized {
                code: ErrorCode::InvalidCredentials,
                detail: "the passkey did not verify (a passkey of this account, on this site, with its PIN or \
                         biometric): try again with new options",
            },
            ServiceError::InvalidMfaCode => Self::Unauthorized {
                code: ErrorCode::InvalidCredentials,
                detail: "the code is wrong, or was already used (a code works once; wait for the next one)",
            },
            ServiceError::TokenExpired => Self::Unauthorized {
                code: ErrorCode::TokenExpired,
                detail: "the access token has expired",
            },
            ServiceError::MfaState(detail) => Self::StateConflict(detail),
            ServiceError::AccountDisabled => Self::Forbidden("this account is deactivated"),
            ServiceError::EmailNotVerified => Self::EmailNotVerified,
            ServiceError::LastAdmin => Self::LastAdmin,
            ServiceError::AlreadyVerified => {
                Self::StateConflict("the email address is already verified")
            }
            ServiceError::RateLimited { retry_after_secs } => {
                Self::RateLimited { retry_after_secs }
            }
            ServiceError::SecondFactorLocked => Self::SecondFactorLocked,
            ServiceError::SecondFactorRequired => Self::SecondFactorRequired,
            ServiceError::NotFound => Self::NotFound,
            ServiceError::Busy { retry_after_secs } => Self::Busy { retry_after_secs },
            ServiceError::Unavailable(cause) => Self::Unavailable(cause),
            ServiceError::Unexpected(cause) => Self::Internal(cause),
        }
    }
}

impl From<ValidationErrors> for ApiError {
    fn from(errors: ValidationErrors) -> Self {
        Self::Validation(errors)
    }
}
