//! Wire types: request and response bodies, separate from domain and entity types.
//!
//! Request fields are `Option` so that a missing field is reported by domain validation together with every
//! other invalid field, instead of failing deserialisation on the first one. Unknown fields are refused.

mod admin;
mod auth;
mod email;
mod health;
mod mfa;
mod protection;
mod tasks;
mod users;

pub use admin::{AdminUserUpdate, UserListParams, UserPageResponse};
use auth::session_mode;
pub use auth::{
    LoginRequest, RefreshRequest, RegisterRequest, RevokeForm, TokenForm, TokenGrant,
    TokenPairResponse,
};
pub use email::{PasswordResetConfirm, PasswordResetRequest, VerifyEmailRequest};
pub use health::{HealthResponse, LiveResponse, ReadyResponse};
use mfa::optional_mfa_code;
pub use mfa::{
    MfaDisableRequest, MfaVerifyRequest, RecoveryCodesResponse, TotpConfirmRequest,
    TotpEnrolRequest, TotpEnrolmentResponse,
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
        CurrentPassword, GrantType, Limit, LoginId, MAX_LOGIN_CHARS, MFA_CODE_MAX_CHARS,
        MfaCodeRule, NewPassword, Offset, OpaqueToken, Optional, RequestBody, Required,
        SessionModeRule, Text, TokenTypeHint,
    },
};
use time::{OffsetDateTime, format_description::well_known::Rfc3339};
use uuid::Uuid;
/// An RFC 3339 UTC timestamp, e.g. `2026-11-23T10:00:00Z`.
#[derive(Debug, Clone, Copy)]
pub struct Timestamp(pub OffsetDateTime);

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let utc = self.0.to_offset(time::UtcOffset::UTC);
        let text = utc.format(&Rfc3339).map_err(serde::ser::Error::custom)?;
        serializer.serialize_str(&text)
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
);
