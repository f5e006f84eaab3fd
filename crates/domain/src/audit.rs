//! The audit trail: what happened to an account, by whom, from where. API.md lists the event types.

use std::{fmt, str::FromStr};

use time::OffsetDateTime;

use crate::{Invalid, UserId};

macro_rules! audit_kinds {
    ($($variant:ident => $name:literal,)+) => {
        /// An audit event type; its `snake_case` name is part of the HTTP contract.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum AuditKind {
            $($variant,)+
        }

        impl AuditKind {
            /// Every type, in the contract's order.
            pub const ALL: &'static [Self] = &[$(Self::$variant,)+];

            pub fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $name,)+
                }
            }
        }
    };
}

audit_kinds! {
    UserRegistered => "user_registered",
    LoginSucceeded => "login_succeeded",
    LoginFailed => "login_failed",
    LoginLocked => "login_locked",
    TokenRefreshed => "token_refreshed",
    RefreshReuseDetected => "refresh_reuse_detected",
    Logout => "logout",
    LogoutAll => "logout_all",
    SessionRevoked => "session_revoked",
    PasswordChanged => "password_changed",
    PasswordResetRequested => "password_reset_requested",
    PasswordReset => "password_reset",
    EmailVerificationSent => "email_verification_sent",
    EmailVerified => "email_verified",
    UserUpdated => "user_updated",
    UserDeleted => "user_deleted",
    RoleChanged => "role_changed",
    UserActivated => "user_activated",
    UserDeactivated => "user_deactivated",
    UserUnlocked => "user_unlocked",
    SessionsRevoked => "sessions_revoked",
    MfaEnabled => "mfa_enabled",
    MfaDisabled => "mfa_disabled",
    MfaVerified => "mfa_verified",
    MfaFailed => "mfa_failed",
    MfaRecoveryCodeUsed => "mfa_recovery_code_used",
    MfaReset => "mfa_reset",
    PasskeyAdded => "passkey_added",
    PasskeyRemoved => "passkey_removed",
    PasskeyLogin => "passkey_login",
    PasskeyFailed => "passkey_failed",
    OidcLogin => "oidc_login",
    OidcFailed => "oidc_failed",
    IdentityLinked => "identity_linked",
    IdentityUnlinked => "identity_unlinked",
}

impl fmt::Display for AuditKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for AuditKind {
    type Err = Invalid;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .iter()
            .copied()
            .find(|kind| kind.as_str() == s)
            .ok_or_else(|| Invalid::new("is not a known audit event type"))
    }
}

/// A recorded event.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditEvent {
    pub id: i64,
    pub at: OffsetDateTime,
    pub kind: AuditKind,
    /// Who did it (`None`: the system, the CLI, or an anonymous client such as a failed login).
    pub actor_id: Option<UserId>,
    /// Whose account it concerns, if any.
    pub subject_id: Option<UserId>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub request_id: Option<String>,
    /// Event-specific facts; never a password or token.
    pub details: serde_json::Value,
}

/// One page of the audit trail and the cursor of the next (`None` on the last page).
#[derive(Debug, Clone)]
pub struct AuditPage {
    pub items: Vec<AuditEvent>,
    pub next_cursor: Option<i64>,
}

/// What to list from the audit trail: newest first, before `before` (the cursor), at most `limit`.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    /// Events where this user is the actor or the subject.
    pub user_id: Option<UserId>,
    pub kind: Option<AuditKind>,
    /// Events at or after this time.
    pub since: Option<OffsetDateTime>,
    /// Events before this time.
    pub until: Option<OffsetDateTime>,
    /// Only events with a smaller id (the previous page's `next_cursor`).
    pub before: Option<i64>,
    pub limit: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_round_trips_through_its_name() {
        assert_eq!(AuditKind::ALL.len(), 35);
        for kind in AuditKind::ALL {
            assert_eq!(kind.as_str().parse::<AuditKind>().unwrap(), *kind);
        }
        assert!("login".parse::<AuditKind>().is_err());
    }
}
