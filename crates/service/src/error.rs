//! The use cases' error type.

use securecrud_domain::ConflictField;
use securecrud_domain::ValidationErrors;
use securecrud_persistence::RepoError;

#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// Input broke the contract's rules; lists every invalid field.
    #[error("{0}")]
    Validation(ValidationErrors),
    /// A unique value is already taken.
    #[error("{0:?} is already taken")]
    Conflict(ConflictField),
    /// The change would leave no active admin.
    #[error("the last active admin cannot be demoted or deactivated")]
    LastAdmin,
    /// Wrong login or password (the same for an unknown user).
    #[error("invalid login or password")]
    InvalidCredentials,
    /// A second factor that is wrong, of a time step already used, or a recovery code already used.
    #[error("invalid two-factor code")]
    InvalidMfaCode,
    /// A missing, malformed, forged or revoked token of the given kind, or a session that ended.
    #[error("invalid {0}")]
    InvalidToken(CredentialKind),
    /// A verification or reset token (from an email link) that is unknown, used, superseded or expired.
    #[error("invalid or expired link token")]
    InvalidLinkToken,
    /// A WebAuthn ceremony id (`registration_id`, `challenge_id`, or a second step's passkey challenge) that
    /// is unknown, used, expired or not this caller's.
    #[error("invalid or expired passkey ceremony")]
    InvalidCeremony,
    /// A passkey's assertion that did not verify (unknown or another user's credential, a bad signature, a
    /// wrong origin, RP ID or challenge, no user verification, a counter that went backwards).
    #[error("the passkey did not verify")]
    InvalidPasskey,
    /// Passkeys are off on this server (no usable WebAuthn RP ID).
    #[error("passkeys are off")]
    PasskeysOff,
    /// An OpenID Connect `login_code` that is unknown, used or expired.
    #[error("invalid or expired login code")]
    InvalidLoginCode,
    /// An OpenID Connect provider whose discovery document cannot be loaded (yet): its routes answer `503`.
    #[error("the provider is unavailable")]
    ProviderUnavailable,
    /// Removing this would leave the account without a way in (a password, an identity, a passkey).
    #[error("the last way to sign in cannot be removed")]
    LastSignInMethod,
    /// An account without a password, whose session is not recent enough to stand in for one.
    #[error("sign in again to do this")]
    ReauthenticationRequired,
    /// A well-formed token past its expiry.
    #[error("token expired")]
    TokenExpired,
    /// No such resource, or one the caller may not see (another user's task).
    #[error("not found")]
    NotFound,
    /// Too many requests from one client IP, or too many failed logins for one identifier.
    #[error("rate limited; retry after {retry_after_secs} s")]
    RateLimited { retry_after_secs: u64 },
    /// `MFA_MAX_FAILURES` wrong second factors in a row: codes are refused until an admin resets the
    /// account's two-factor authentication.
    #[error("second factor locked")]
    SecondFactorLocked,
    /// The account has two-factor authentication on and the request changes what only its owner may
    /// (the email, deleting the account): a second factor (`code`) is needed besides the password.
    #[error("second factor required")]
    SecondFactorRequired,
    /// The email address is verified already (nothing to resend).
    #[error("email already verified")]
    AlreadyVerified,
    /// `REQUIRE_VERIFIED_EMAIL` is on and this account's email is not verified yet.
    #[error("email not verified")]
    EmailNotVerified,
    /// The two-factor state does not allow this (enabled already, not enabled, no enrolment pending).
    #[error("{0}")]
    MfaState(&'static str),
    /// The account is deactivated.
    #[error("account deactivated")]
    AccountDisabled,
    /// Password hashing is at capacity: the request waited `PASSWORD_QUEUE_TIMEOUT_MS` for its turn.
    #[error("busy; retry after {retry_after_secs} s")]
    Busy { retry_after_secs: u64 },
    /// The database cannot be reached or is overloaded.
    #[error("database unavailable")]
    Unavailable(#[source] anyhow::Error),
    /// A bug or an unforeseen failure; logged with its cause, shown to clients as an opaque 500.
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

impl From<RepoError> for ServiceError {
    fn from(err: RepoError) -> Self {
        match err {
            RepoError::Conflict(field) => Self::Conflict(field),
            RepoError::Unavailable(source) => Self::Unavailable(source.into()),
            RepoError::Unexpected(source) => Self::Unexpected(source),
        }
    }
}

impl From<ValidationErrors> for ServiceError {
    fn from(errors: ValidationErrors) -> Self {
        Self::Validation(errors)
    }
}

/// Which token [`ServiceError::InvalidToken`] is about, so that the answer names the one the client sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CredentialKind {
    /// A bearer access token (JWT).
    Access,
    /// A refresh token (in a body, a form or the browser-session cookie).
    Refresh,
    /// The `mfa_token` of a two-factor login.
    Mfa,
}

impl std::fmt::Display for CredentialKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Access => "access token",
            Self::Refresh => "refresh token",
            Self::Mfa => "mfa_token",
        })
    }
}
