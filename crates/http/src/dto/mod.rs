//! Wire types: request and response bodies, separate from domain and entity types.
//!
//! Request fields are `Option` so that a missing field is reported by domain validation together with every
//! other invalid field, instead of failing deserialisation on the first one. Unknown fields are refused.

mod admin;
mod email;
mod protection;
mod tasks;

pub use admin::{AdminUserUpdate, UserListParams, UserPageResponse};
pub use email::{PasswordResetConfirm, PasswordResetRequest, VerifyEmailRequest};
pub use protection::{AuditListParams, AuditPageResponse, SessionListResponse};
pub use tasks::{
    AdminTaskListParams, CompleteTaskRequest, CreateTaskRequest, TaskListParams, TaskPageResponse,
    TaskResponse, UpdateTaskRequest,
};

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
    error::ApiError,
    schema::{
        CurrentPassword, GrantType, Limit, LoginId, MAX_LOGIN_CHARS, MFA_CODE_MAX_CHARS,
        MfaCodeRule, NewPassword, Offset, OpaqueToken, Optional, RequestBody, Required,
        SessionModeRule, Text, TokenTypeHint,
    },
};
use securecrud_auth::ErrorCode;
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

/// A user account. Never contains a password or its hash.
#[derive(Debug, Serialize, Apiv2Schema)]
pub struct UserResponse {
    pub id: Uuid,
    /// 3–32 characters of `[A-Za-z0-9_.-]`, as registered.
    pub username: String,
    /// Lower-cased.
    pub email: String,
    pub role: Text<Role>,
    pub email_verified: bool,
    pub is_active: bool,
    /// Whether logging in needs a second factor (TOTP or a recovery code).
    pub mfa_enabled: bool,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl From<User> for UserResponse {
    fn from(user: User) -> Self {
        Self {
            id: user.id.as_uuid(),
            username: user.username.as_str().to_owned(),
            email: user.email.as_str().to_owned(),
            role: Text::new(user.role.as_str()),
            email_verified: user.email_verified,
            is_active: user.is_active,
            mfa_enabled: user.mfa_enabled,
            created_at: Timestamp(user.created_at),
            updated_at: Timestamp(user.updated_at),
        }
    }
}

/// A registration.
#[derive(Default, Deserialize, Apiv2Schema)]
#[serde(deny_unknown_fields, default)]
pub struct RegisterRequest {
    /// 3–32 characters of `[A-Za-z0-9_.-]`; unique case-insensitively.
    pub username: Required<Text<Username>>,
    /// A valid address of at most 254 characters; stored lower-cased; unique.
    pub email: Required<Text<Email>>,
    /// At least 8 characters and at most 72 bytes of UTF-8; not the username or email; not a common
    /// password.
    pub password: Required<Text<NewPassword>>,
}

impl RequestBody for RegisterRequest {}

impl TryFrom<RegisterRequest> for NewUser {
    type Error = ValidationErrors;

    fn try_from(body: RegisterRequest) -> Result<Self, Self::Error> {
        NewUser::parse(
            body.username.as_deref(),
            body.email.as_deref(),
            body.password.as_deref(),
        )
    }
}

/// A login by username or email.
#[derive(Default, Deserialize, Apiv2Schema)]
#[serde(deny_unknown_fields, default)]
pub struct LoginRequest {
    /// A username or an email address (case-insensitive; surrounding spaces are ignored).
    pub login: Required<Text<LoginId>>,
    pub password: Required<Text<CurrentPassword>>,
    /// `token` (default): the refresh token in the body. `cookie`, for a browser app on the api's site: the
    /// refresh token only in the `HttpOnly` cookie `__Host-securecrud_refresh`, never in the body.
    pub session: Optional<Text<SessionModeRule>>,
}

impl RequestBody for LoginRequest {}

impl LoginRequest {
    /// The login and how its session is handed over.
    ///
    /// # Errors
    /// Lists every missing or invalid field.
    pub fn parse(self) -> Result<(LoginInput, SessionMode), ValidationErrors> {
        let mut errors = ValidationErrors::default();
        let input = login_fields(&mut errors, &self.login, &self.password, "login");
        let mode = session_mode(&mut errors, &self.session);
        errors.finish(|| Some((input?, mode?)))
    }
}

/// `session`: `token` (the default) or `cookie`.
fn session_mode(
    errors: &mut ValidationErrors,
    session: &Optional<Text<SessionModeRule>>,
) -> Option<SessionMode> {
    match session.as_deref() {
        None | Some("token") => Some(SessionMode::Token),
        Some("cookie") => Some(SessionMode::Cookie),
        Some(_) => {
            errors.push("session", "must be `token` or `cookie`");
            None
        }
    }
}

/// The second step of a login with two-factor authentication.
#[derive(Default, Deserialize, Apiv2Schema)]
#[serde(deny_unknown_fields, default)]
pub struct MfaVerifyRequest {
    /// The `mfa_token` of the login's `401 mfa_required` answer (single use, 5 minutes).
    pub mfa_token: Required<Text<OpaqueToken>>,
    /// A 6-digit code from the authenticator app, or one of the recovery codes (each works once).
    pub code: Required<Text<MfaCodeRule>>,
    /// As at login: `token` (default) or `cookie`.
    pub session: Optional<Text<SessionModeRule>>,
}

impl RequestBody for MfaVerifyRequest {}

impl MfaVerifyRequest {
    /// The token, the code and the session mode.
    ///
    /// # Errors
    /// Lists every missing or invalid field.
    pub fn parse(self) -> Result<(String, MfaCode, SessionMode), ValidationErrors> {
        let mut errors = ValidationErrors::default();
        let token = errors.required("mfa_token", self.mfa_token.as_deref(), non_empty);
        let code = mfa_code(&mut errors, &self.code);
        let mode = session_mode(&mut errors, &self.session);
        errors.finish(|| Some((token?, code?, mode?)))
    }
}

/// `code`: a TOTP code or a recovery code.
fn mfa_code(errors: &mut ValidationErrors, code: &Required<Text<MfaCodeRule>>) -> Option<MfaCode> {
    errors.required("code", code.as_deref(), parse_mfa_code)
}

/// `code` where it may be left out (a step-up: needed only with two-factor on).
fn optional_mfa_code(
    errors: &mut ValidationErrors,
    code: &Optional<Text<MfaCodeRule>>,
) -> Option<MfaCode> {
    let raw = code.as_deref()?;
    errors.check("code", parse_mfa_code(raw))
}

fn parse_mfa_code(raw: &str) -> Result<MfaCode, Invalid> {
    if raw.chars().count() > MFA_CODE_MAX_CHARS {
        return Err(Invalid::new(format!(
            "must be at most {MFA_CODE_MAX_CHARS} characters"
        )));
    }
    MfaCode::parse(raw).ok_or_else(|| {
        Invalid::new("must be a 6-digit code or a recovery code (xxxx-xxxx-xxxx-xxxx)")
    })
}

/// Starting a TOTP enrolment.
#[derive(Default, Deserialize, Apiv2Schema)]
#[serde(deny_unknown_fields, default)]
pub struct TotpEnrolRequest {
    pub current_password: Required<Text<CurrentPassword>>,
}

impl RequestBody for TotpEnrolRequest {}

impl TotpEnrolRequest {
    /// The current password.
    ///
    /// # Errors
    /// When it is missing or empty.
    pub fn parse(self) -> Result<LoginPassword, ValidationErrors> {
        let mut errors = ValidationErrors::default();
        let password = errors.required(
            "current_password",
            self.current_password.as_deref(),
            |raw| non_empty(raw).map(|raw| LoginPassword::new(&raw)),
        );
        errors.finish(|| password)
    }
}

/// Confirming a TOTP enrolment.
#[derive(Default, Deserialize, Apiv2Schema)]
#[serde(deny_unknown_fields, default)]
pub struct TotpConfirmRequest {
    /// A 6-digit code from the authenticator app, for the secret just shown.
    pub code: Required<Text<MfaCodeRule>>,
}

impl RequestBody for TotpConfirmRequest {}

impl TotpConfirmRequest {
    /// The code.
    ///
    /// # Errors
    /// When it is missing or not a code.
    pub fn parse(self) -> Result<MfaCode, ValidationErrors> {
        let mut errors = ValidationErrors::default();
        let code = mfa_code(&mut errors, &self.code);
        errors.finish(|| code)
    }
}

/// Turning two-factor authentication off.
#[derive(Default, Deserialize, Apiv2Schema)]
#[serde(deny_unknown_fields, default)]
pub struct MfaDisableRequest {
    pub current_password: Required<Text<CurrentPassword>>,
    /// A 6-digit code from the authenticator app, or a recovery code.
    pub code: Required<Text<MfaCodeRule>>,
}

impl RequestBody for MfaDisableRequest {}

impl MfaDisableRequest {
    /// The password and the code.
    ///
    /// # Errors
    /// Lists every missing or invalid field.
    pub fn parse(self) -> Result<(LoginPassword, MfaCode), ValidationErrors> {
        let mut errors = ValidationErrors::default();
        let password = errors.required(
            "current_password",
            self.current_password.as_deref(),
            |raw| non_empty(raw).map(|raw| LoginPassword::new(&raw)),
        );
        let code = mfa_code(&mut errors, &self.code);
        errors.finish(|| Some((password?, code?)))
    }
}

/// A started enrolment: add the secret to an authenticator app (scan `otpauth_uri` as a QR code, or type
/// `secret`), then confirm with a code.
#[derive(Serialize, Apiv2Schema)]
pub struct TotpEnrolmentResponse {
    /// The shared secret, base32 (RFC 4648, no padding).
    pub secret: String,
    /// `otpauth://totp/<issuer>:<username>?secret=…&issuer=…` for authenticator apps.
    pub otpauth_uri: String,
}

impl std::fmt::Debug for TotpEnrolmentResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TotpEnrolmentResponse([REDACTED])")
    }
}

impl From<TotpEnrolment> for TotpEnrolmentResponse {
    fn from(enrolment: TotpEnrolment) -> Self {
        Self {
            secret: enrolment.secret,
            otpauth_uri: enrolment.otpauth_uri,
        }
    }
}

/// The recovery codes of a confirmed enrolment: shown this once, each works once in place of a code.
#[derive(Serialize, Apiv2Schema)]
pub struct RecoveryCodesResponse {
    /// Ten codes `xxxx-xxxx-xxxx-xxxx`; keep them somewhere safe.
    pub recovery_codes: Vec<String>,
}

impl std::fmt::Debug for RecoveryCodesResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RecoveryCodesResponse([REDACTED])")
    }
}

/// A request to the OAuth 2.0 token endpoint (RFC 6749): the password grant (§4.3, as Swagger UI's
/// "Authorize" sends it) or the refresh-token grant (§6). Other parameters (`scope`, `client_id`,
/// `client_secret`) are ignored, as the RFC requires of unknown ones.
#[derive(Default, Deserialize, Apiv2Schema)]
#[serde(default)]
pub struct TokenForm {
    /// `password` or `refresh_token`.
    pub grant_type: Required<Text<GrantType>>,
    /// `password` grant: a username or an email address.
    pub username: Optional<Text<LoginId>>,
    /// `password` grant.
    pub password: Optional<Text<CurrentPassword>>,
    /// `refresh_token` grant: the refresh token of the latest token pair; rotated as by `/auth/refresh`.
    pub refresh_token: Optional<Text<OpaqueToken>>,
}

impl RequestBody for TokenForm {
    const MEDIA_TYPE: &'static str = "application/x-www-form-urlencoded";
    const REFUSES_UNKNOWN_FIELDS: bool = false;
    const OAUTH: bool = true;

    fn body_rules() -> serde_json::Value {
        serde_json::json!({
            "oneOf": [
                { "properties": { "grant_type": { "enum": ["password"] } },
                  "required": ["username", "password"] },
                { "properties": { "grant_type": { "enum": ["refresh_token"] } },
                  "required": ["refresh_token"] }
            ]
        })
    }
}

/// What a token request asks for. Its `Debug` never shows the refresh token.
pub enum TokenGrant {
    Password(LoginInput),
    RefreshToken(String),
}

impl std::fmt::Debug for TokenGrant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Password(input) => f.debug_tuple("Password").field(input).finish(),
            Self::RefreshToken(_) => f.write_str("RefreshToken([REDACTED])"),
        }
    }
}

impl TokenForm {
    /// The grant, with its parameters.
    ///
    /// # Errors
    /// `400 unsupported_grant_type` for another `grant_type`; `400 invalid_request` listing every missing
    /// or empty parameter.
    pub fn grant(self) -> Result<TokenGrant, ApiError> {
        let mut errors = ValidationErrors::default();
        match self.grant_type.as_deref() {
            Some("password") => {
                let input = login_fields(
                    &mut errors,
                    &Required(self.username.0),
                    &Required(self.password.0),
                    "username",
                );
                errors
                    .finish(|| input)
                    .map(TokenGrant::Password)
                    .map_err(ApiError::from)
            }
            Some("refresh_token") => {
                let token =
                    errors.required("refresh_token", self.refresh_token.as_deref(), non_empty);
                errors
                    .finish(|| token)
                    .map(TokenGrant::RefreshToken)
                    .map_err(ApiError::from)
            }
            Some(_) => Err(ApiError::OAuth {
                code: ErrorCode::UnsupportedGrantType,
                detail: "grant_type must be 'password' or 'refresh_token'".to_owned(),
                errors: None,
            }),
            None => Err(ValidationErrors::single("grant_type", "is required").into()),
        }
        .map_err(ApiError::at_token_endpoint)
    }
}

/// A token revocation (RFC 7009).
#[derive(Default, Deserialize, Apiv2Schema)]
#[serde(default)]
pub struct RevokeForm {
    /// A refresh token or an access token. Unknown, expired and already revoked tokens are accepted too.
    pub token: Required<Text<OpaqueToken>>,
    /// A hint only (RFC 7009 §2.1), e.g. `refresh_token` or `access_token`: both kinds are recognised
    /// whatever it says, and an unknown hint is ignored.
    pub token_type_hint: Optional<Text<TokenTypeHint>>,
}

impl RequestBody for RevokeForm {
    const MEDIA_TYPE: &'static str = "application/x-www-form-urlencoded";
    const REFUSES_UNKNOWN_FIELDS: bool = false;
    const OAUTH: bool = true;
}

impl RevokeForm {
    /// The token to revoke.
    ///
    /// # Errors
    /// `400 invalid_request` when it is missing or empty.
    pub fn token(self) -> Result<String, ApiError> {
        let mut errors = ValidationErrors::default();
        let token = errors.required("token", self.token.as_deref(), non_empty);
        errors
            .finish(|| token)
            .map_err(|errors| ApiError::from(errors).at_token_endpoint())
    }
}

/// The login identifier (trimmed, 1–254 characters) and password (non-empty) of a login request.
fn login_fields(
    errors: &mut ValidationErrors,
    login: &Required<Text<LoginId>>,
    password: &Required<Text<CurrentPassword>>,
    login_field: &str,
) -> Option<LoginInput> {
    let login = errors.required(login_field, login.as_deref(), |raw| match raw.trim() {
        "" => Err(Invalid::new("must not be empty")),
        trimmed if trimmed.chars().count() > MAX_LOGIN_CHARS => Err(Invalid::new(format!(
            "must be at most {MAX_LOGIN_CHARS} characters"
        ))),
        trimmed => Ok(trimmed.to_owned()),
    });
    let password = errors.required("password", password.as_deref(), |raw| {
        non_empty(raw).map(|raw| LoginPassword::new(&raw))
    });
    Some(LoginInput {
        login: login?,
        password: password?,
    })
}

/// A refresh token, to rotate or to end its session.
#[derive(Default, Deserialize, Apiv2Schema)]
#[serde(deny_unknown_fields, default)]
pub struct RefreshRequest {
    /// The `refresh_token` of the latest token pair. Left out (`{}`) by a browser session, whose token is
    /// in its cookie.
    pub refresh_token: Optional<Text<OpaqueToken>>,
}

impl RequestBody for RefreshRequest {}

impl RefreshRequest {
    /// The token, when given: non-empty.
    ///
    /// # Errors
    /// When it is empty.
    pub fn token(self) -> Result<Option<String>, ValidationErrors> {
        let mut errors = ValidationErrors::default();
        let token = match self.refresh_token.as_deref() {
            None => return Ok(None),
            Some(raw) => errors.check("refresh_token", non_empty(raw)),
        };
        errors.finish(|| token.map(Some))
    }
}

/// A password change.
#[derive(Default, Deserialize, Apiv2Schema)]
#[serde(deny_unknown_fields, default)]
pub struct ChangePasswordRequest {
    pub current_password: Required<Text<CurrentPassword>>,
    /// The password rules of registration apply.
    pub new_password: Required<Text<NewPassword>>,
}

impl RequestBody for ChangePasswordRequest {}

impl ChangePasswordRequest {
    /// Parses the change for `user` (the new password may not equal their username or email).
    ///
    /// # Errors
    /// Lists every missing or invalid field.
    pub fn parse(self, user: &User) -> Result<PasswordChange, ValidationErrors> {
        let mut errors = ValidationErrors::default();
        let current = errors.required(
            "current_password",
            self.current_password.as_deref(),
            |raw| non_empty(raw).map(|raw| LoginPassword::new(&raw)),
        );
        let identities = [user.username.as_str(), user.email.as_str()];
        let new = errors.required("new_password", self.new_password.as_deref(), |raw| {
            Password::parse(raw, &identities)
        });
        errors.finish(|| {
            Some(PasswordChange {
                current_password: current?,
                new_password: new?,
            })
        })
    }
}

/// Changes to the current user; fields left out keep their value.
#[derive(Default, Deserialize, Apiv2Schema)]
#[serde(deny_unknown_fields, default)]
pub struct UpdateMeRequest {
    /// A new username (the username rules apply; free case-insensitively, except that one's own name may
    /// change letter case). The old name stops working for login.
    pub username: Optional<Text<Username>>,
    /// A new email; it is then unverified, a verification link goes to it and a notice to the old address.
    /// Needs `current_password`.
    pub email: Optional<Text<Email>>,
    /// The current password; required with `email`.
    pub current_password: Optional<Text<CurrentPassword>>,
    /// With two-factor authentication on, a code from the authenticator (or a recovery code): required with
    /// `email` too (`401 mfa_required` without it).
    pub code: Optional<Text<MfaCodeRule>>,
}

impl RequestBody for UpdateMeRequest {
    fn body_rules() -> serde_json::Value {
        serde_json::json!({
            "anyOf": [
                { "not": { "required": ["email"] } },
                { "required": ["current_password"] }
            ]
        })
    }
}

impl TryFrom<UpdateMeRequest> for ProfileUpdate {
    type Error = ValidationErrors;

    fn try_from(body: UpdateMeRequest) -> Result<Self, Self::Error> {
        let mut errors = ValidationErrors::default();
        let username = body
            .username
            .as_deref()
            .and_then(|raw| errors.check("username", Username::parse(raw)));
        let email = body
            .email
            .as_deref()
            .and_then(|raw| errors.check("email", Email::parse(raw)));
        let current_password = match (body.email.as_ref(), body.current_password.as_deref()) {
            (Some(_), None) => {
                errors.push(
                    "current_password",
                    "is required to change the email address",
                );
                None
            }
            (_, Some(raw)) => errors
                .check("current_password", non_empty(raw))
                .map(|raw| LoginPassword::new(&raw)),
            (None, None) => None,
        };
        let code = optional_mfa_code(&mut errors, &body.code);
        errors.finish(|| {
            Some(ProfileUpdate {
                username,
                email,
                current_password,
                code,
            })
        })
    }
}

/// Confirms the deletion of the current user.
#[derive(Default, Deserialize, Apiv2Schema)]
#[serde(deny_unknown_fields, default)]
pub struct DeleteMeRequest {
    /// The current password.
    pub password: Required<Text<CurrentPassword>>,
    /// With two-factor authentication on, a code from the authenticator (or a recovery code): required
    /// (`401 mfa_required` without it).
    pub code: Optional<Text<MfaCodeRule>>,
}

impl RequestBody for DeleteMeRequest {}

impl DeleteMeRequest {
    /// The password (required, non-empty) and the second factor, if given.
    ///
    /// # Errors
    /// When the password is missing or empty, or the code is not one.
    pub fn parse(self) -> Result<(LoginPassword, Option<MfaCode>), ValidationErrors> {
        let mut errors = ValidationErrors::default();
        let password = errors.required("password", self.password.as_deref(), |raw| {
            non_empty(raw).map(|raw| LoginPassword::new(&raw))
        });
        let code = optional_mfa_code(&mut errors, &self.code);
        errors.finish(|| Some((password?, code)))
    }
}

/// `limit` and `offset` query parameters, with their defaults and bounds.
fn paging(
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

/// An access token and a refresh token.
#[derive(Serialize, Apiv2Schema)]
pub struct TokenPairResponse {
    /// A JWT to send as `Authorization: Bearer <access_token>`.
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: &'static str,
    /// Seconds until the access token expires.
    pub expires_in: i64,
    /// An opaque token for `POST /api/v1/auth/refresh`. Absent for a browser session (`session: "cookie"`),
    /// whose refresh token is only in its `HttpOnly` cookie.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    /// Seconds until the refresh token expires.
    pub refresh_expires_in: i64,
}

impl std::fmt::Debug for TokenPairResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenPairResponse")
            .field("expires_in", &self.expires_in)
            .field("refresh_expires_in", &self.refresh_expires_in)
            .finish_non_exhaustive()
    }
}

impl From<TokenPair> for TokenPairResponse {
    fn from(pair: TokenPair) -> Self {
        Self {
            access_token: pair.access_token,
            token_type: "Bearer",
            expires_in: pair.expires_in,
            refresh_token: Some(pair.refresh_token),
            refresh_expires_in: pair.refresh_expires_in,
        }
    }
}

/// The service's health.
#[derive(Debug, Serialize, Apiv2Schema)]
pub struct HealthResponse {
    /// `ok`.
    pub status: &'static str,
    /// `ok` when the database answered.
    pub database: &'static str,
    /// The api's version.
    pub version: &'static str,
}

/// The liveness probe's answer.
#[derive(Debug, Serialize, Apiv2Schema)]
pub struct LiveResponse {
    /// `ok`.
    pub status: &'static str,
    /// The api's version.
    pub version: &'static str,
}

/// The readiness probe's answer.
#[derive(Debug, Serialize, Apiv2Schema)]
pub struct ReadyResponse {
    /// `ok`.
    pub status: &'static str,
    /// `ok`: the database answered.
    pub database: &'static str,
    /// `current`: every migration this version knows is applied.
    pub migrations: &'static str,
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
