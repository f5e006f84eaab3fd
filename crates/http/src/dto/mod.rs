//! Wire types: request and response bodies, separate from domain and entity types.
//!
//! Request fields are `Option` so that a missing field is reported by domain validation together with every
//! other invalid field, instead of failing deserialisation on the first one. Unknown fields are refused.

mod admin;
mod auth;
mod email;
mod health;
mod mfa;
mod oidc;
mod passkeys;
mod protection;
mod tasks;
mod users;

pub use admin::{AdminUserUpdate, UserListParams, UserPageResponse};
use auth::session_mode;
pub use auth::{
    LoginRequest, RefreshRequest, RegisterRequest, RevocationFeedParams, RevokeForm, TokenForm,
    TokenGrant, TokenPairResponse,
};
pub use email::{PasswordResetConfirm, PasswordResetRequest, VerifyEmailRequest};
pub use health::{HealthResponse, LiveResponse, ReadyResponse};
use mfa::second_factor;
pub use mfa::{
    MfaDisableRequest, MfaVerifyRequest, RecoveryCodesResponse, TotpConfirmRequest,
    TotpEnrolRequest, TotpEnrolmentResponse,
};
pub use oidc::{
    IdentityConfirmRequest, IdentityLinkRequest, IdentityLinkResponse, IdentityListResponse,
    IdentityResponse, IdentityUnlinkRequest, OidcAuthorizeParams, OidcExchangeRequest,
    OidcProviderListResponse,
};
pub use passkeys::{
    MfaPasskeyOptions, MfaPasskeyOptionsRequest, PASSKEY_NAME_MAX_CHARS, PasskeyDeleteRequest,
    PasskeyListResponse, PasskeyLoginOptions, PasskeyLoginOptionsRequest, PasskeyLoginRequest,
    PasskeyOptionsRequest, PasskeyRegisterRequest, PasskeyRegistrationOptions,
    PasskeyRenameRequest, PasskeyResponse, RegisteredPasskeyResponse,
};
pub use protection::{AuditListParams, AuditPageResponse, SessionListResponse};
pub use tasks::{
    AdminTaskListParams, CompleteTaskRequest, CreateTaskRequest, TaskListParams, TaskPageResponse,
    TaskResponse, UpdateTaskRequest,
};
pub use users::{ChangePasswordRequest, DeleteMeRequest, UpdateMeRequest, UserResponse};

use paperclip::{
    actix::Apiv2Schema,
    v2::{
        models::{DataType, DataTypeFormat},
        schema::TypedData,
    },
};
use securecrud_domain::{
    Email, Invalid, LoginPassword, NewUser, Paging, Password, Role, User, Username,
    ValidationErrors,
};
use securecrud_service::{
    LoginInput, MfaCode, PasswordChange, ProfileUpdate, TokenPair, TotpEnrolment,
};
use serde::{Deserialize, Serialize, Serializer};

use crate::{
    browser::SessionMode,
    error::{ApiError, OAuthError},
    schema::{
        CurrentPassword, FeedCursor, GrantType, Limit, LoginId, MAX_LOGIN_CHARS,
        MFA_CODE_MAX_CHARS, MfaCodeRule, NewPassword, Offset, OpaqueToken, Optional, OrNull,
        RequestBody, Required, SessionModeRule, Text, TokenTypeHint,
    },
};
use time::{OffsetDateTime, format_description::well_known::Rfc3339};
use uuid::Uuid;
/// An RFC 3339 UTC timestamp, e.g. `2026-11-23T10:00:00Z`.
#[derive(Debug, Clone, Copy)]
pub struct Timestamp(pub OffsetDateTime);

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        // Formatted on the stack: a page of tasks has two timestamps a task. The longest UTC form,
        // `YYYY-MM-DDTHH:MM:SS.fffffffffZ`, is 30 bytes; a longer one fails the format, never the buffer.
        let mut buffer = [0_u8; 40];
        let mut cursor = std::io::Cursor::new(&mut buffer[..]);
        self.0
            .checked_to_offset(time::UtcOffset::UTC)
            .ok_or_else(|| serde::ser::Error::custom("the time is out of range in UTC"))?
            .format_into(&mut cursor, &Rfc3339)
            .map_err(serde::ser::Error::custom)?;
        let written = usize::try_from(cursor.position()).map_err(serde::ser::Error::custom)?;
        let text = std::str::from_utf8(&buffer[..written]).map_err(serde::ser::Error::custom)?;
        serializer.serialize_str(text)
    }
}

impl TypedData for Timestamp {
    fn data_type() -> DataType {
        DataType::String
    }

    fn format() -> Option<DataTypeFormat> {
        Some(DataTypeFormat::DateTime)
    }
}

/// `limit` and `offset` query parameters, with their defaults and bounds.
pub(super) fn paging(
    errors: &mut ValidationErrors,
    limit: &Optional<Text<Limit>>,
    offset: &Optional<Text<Offset>>,
) -> Paging {
    Paging::parse(errors, limit.as_deref(), offset.as_deref())
}

/// A user id parameter: a UUID in its hyphenated form (what the document's `format: uuid` means).
pub(crate) fn parse_user_id(raw: &str) -> Result<securecrud_domain::UserId, Invalid> {
    if raw.len() != 36 {
        return Err(Invalid::new("must be a user id (UUID)"));
    }
    Uuid::parse_str(raw)
        .map(securecrud_domain::UserId::from_uuid)
        .map_err(|_| Invalid::new("must be a user id (UUID)"))
}

/// A password given to re-authenticate: blank is refused, and missing too when the account has one
/// (`required`); an account without a password re-authenticates with a fresh session instead (the use case
/// checks that, and the password again).
pub(crate) fn optional_password(
    errors: &mut ValidationErrors,
    field: &'static str,
    password: &Optional<Text<CurrentPassword>>,
    required: Option<&'static str>,
) -> Option<Option<LoginPassword>> {
    match password.as_deref() {
        None => match required {
            Some(message) => {
                errors.push(field, message);
                None
            }
            None => Some(None),
        },
        Some(raw) => errors
            .check(field, non_empty(raw))
            .map(|raw| Some(LoginPassword::new(&raw))),
    }
}

pub(crate) fn non_empty(raw: &str) -> Result<String, Invalid> {
    if raw.is_empty() {
        Err(Invalid::new("must not be empty"))
    } else {
        Ok(raw.to_owned())
    }
}

/// Request bodies holding passwords print without them.
macro_rules! redacted_debug {
    ($($ty:ident { $($field:ident),* }),+ $(,)?) => {
        $(impl std::fmt::Debug for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_struct(stringify!($ty))
                    $(.field(stringify!($field), &self.$field))*
                    .finish_non_exhaustive()
            }
        })+
    };
}

redacted_debug!(
    RegisterRequest { username, email },
    LoginRequest { login, session },
    UpdateMeRequest { username, email },
    TokenForm {
        grant_type,
        username
    },
    RevokeForm { token_type_hint },
    RefreshRequest {},
    ChangePasswordRequest {},
    DeleteMeRequest {},
    VerifyEmailRequest {},
    PasswordResetConfirm {},
    TotpEnrolRequest {},
    TotpConfirmRequest {},
    MfaDisableRequest {},
    MfaVerifyRequest {},
    PasskeyOptionsRequest {},
    PasskeyRegisterRequest {},
    PasskeyRenameRequest { name },
    PasskeyLoginRequest { session },
    MfaPasskeyOptionsRequest {},
);

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::Timestamp;

    #[test]
    fn timestamps_are_rfc_3339_in_utc_with_the_precision_they_have() {
        let cases = [
            (datetime!(2026-11-23 10:00:00 UTC), "2026-11-23T10:00:00Z"),
            (
                datetime!(2026-11-23 10:00:00.5 +02:00),
                "2026-11-23T08:00:00.5Z",
            ),
            (
                datetime!(9999-12-31 23:59:59.999_999_999 UTC),
                "9999-12-31T23:59:59.999999999Z",
            ),
        ];
        for (at, text) in cases {
            let json = serde_json::to_string(&Timestamp(at)).unwrap();
            assert_eq!(json, format!("\"{text}\""));
        }
        assert!(serde_json::to_string(&Timestamp(datetime!(-0001-01-01 0:00 UTC))).is_err());
    }
}
