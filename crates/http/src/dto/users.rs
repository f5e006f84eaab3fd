//! The signed-in user: the user as answered, password change, profile change, account deletion.

use super::*;
use crate::schema::JsonObject;
use securecrud_service::SecondFactor;

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
    /// Whether logging in with a password needs a second factor (a TOTP code, a passkey or a recovery
    /// code): on while the account has TOTP or a passkey.
    pub mfa_enabled: bool,
    /// `false` for an account made by an OpenID Connect provider until a password reset sets one
    /// (password logins are refused until then).
    pub has_password: bool,
    /// Only in `GET /users/me`: how many passkeys the account has.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub passkeys: Option<u64>,
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
            has_password: user.has_password,
            passkeys: None,
            created_at: Timestamp(user.created_at),
            updated_at: Timestamp(user.updated_at),
        }
    }
}

/// A password change.
#[derive(Default, Deserialize, Apiv2Schema)]
#[serde(deny_unknown_fields, default)]
pub struct ChangePasswordRequest {
    /// Required when the account has a password; one made by an OpenID Connect provider sets its first
    /// password without it, from a session opened in the last 10 minutes.
    pub current_password: Optional<Text<CurrentPassword>>,
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
        let current = optional_password(
            &mut errors,
            "current_password",
            &self.current_password,
            user.has_password.then_some("is required"),
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
    /// The current password; required with `email` when the account has one (without: a session opened in
    /// the last 10 minutes).
    pub current_password: Optional<Text<CurrentPassword>>,
    /// With two-factor authentication on, a code from the authenticator (or a recovery code), or `passkey`:
    /// required with `email` too (`401 mfa_required` without it).
    pub code: Optional<Text<MfaCodeRule>>,
    /// Instead of `code`: what `credential.toJSON()` returns for an assertion of one of the user's passkeys
    /// over a challenge of `POST /api/v1/auth/passkey/options`.
    pub passkey: Optional<JsonObject>,
}

impl RequestBody for UpdateMeRequest {
    fn body_rules() -> serde_json::Value {
        serde_json::json!({
            "not": { "required": ["code", "passkey"] }
        })
    }
}

impl UpdateMeRequest {
    /// The change, for an account with a password or not (`has_password`: the current password is then
    /// required with `email`).
    ///
    /// # Errors
    /// Lists every missing or invalid field.
    pub fn parse(self, has_password: bool) -> Result<ProfileUpdate, ValidationErrors> {
        let body = self;
        let mut errors = ValidationErrors::default();
        let username = body
            .username
            .as_deref()
            .and_then(|raw| errors.check("username", Username::parse(raw)));
        let email = body
            .email
            .as_deref()
            .and_then(|raw| errors.check("email", Email::parse(raw)));
        let required = (has_password && body.email.as_deref().is_some())
            .then_some("is required to change the email address");
        let current_password = optional_password(
            &mut errors,
            "current_password",
            &body.current_password,
            required,
        );
        let second_factor = second_factor(&mut errors, &body.code, body.passkey.into_option());
        errors.finish(|| {
            Some(ProfileUpdate {
                username,
                email,
                current_password: current_password?,
                second_factor,
            })
        })
    }
}

/// Confirms the deletion of the current user.
#[derive(Default, Deserialize, Apiv2Schema)]
#[serde(deny_unknown_fields, default)]
pub struct DeleteMeRequest {
    /// The current password: required when the account has one (without: a session opened in the last 10
    /// minutes).
    pub password: Optional<Text<CurrentPassword>>,
    /// With two-factor authentication on, a code from the authenticator (or a recovery code), or `passkey`:
    /// required (`401 mfa_required` without it).
    pub code: Optional<Text<MfaCodeRule>>,
    /// Instead of `code`: what `credential.toJSON()` returns for an assertion of one of the user's passkeys
    /// over a challenge of `POST /api/v1/auth/passkey/options`.
    pub passkey: Optional<JsonObject>,
}

impl RequestBody for DeleteMeRequest {
    fn body_rules() -> serde_json::Value {
        serde_json::json!({ "not": { "required": ["code", "passkey"] } })
    }
}

impl DeleteMeRequest {
    /// The password (required, non-empty) and the second factor, if given.
    ///
    /// # Errors
    /// When the password is missing or empty, or the code is not one.
    pub fn parse(
        self,
        has_password: bool,
    ) -> Result<(Option<LoginPassword>, Option<SecondFactor>), ValidationErrors> {
        let mut errors = ValidationErrors::default();
        let password = optional_password(
            &mut errors,
            "password",
            &self.password,
            has_password.then_some("is required"),
        );
        let second_factor = second_factor(&mut errors, &self.code, self.passkey.into_option());
        errors.finish(|| Some((password?, second_factor)))
    }
}
