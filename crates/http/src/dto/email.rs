//! Wire types of email verification and password reset.

use paperclip::actix::Apiv2Schema;
use securecrud_domain::{Email, ValidationErrors};
use serde::Deserialize;

use super::non_empty;
use crate::schema::{NewPassword, OpaqueToken, RequestBody, Required, Text};

/// A token from an email link.
#[derive(Default, Deserialize, Apiv2Schema)]
#[serde(deny_unknown_fields, default)]
pub struct VerifyEmailRequest {
    /// The `token` of the verification link.
    pub token: Required<Text<OpaqueToken>>,
}

impl RequestBody for VerifyEmailRequest {}

impl VerifyEmailRequest {
    /// # Errors
    /// When the token is missing or empty.
    pub fn token(self) -> Result<String, ValidationErrors> {
        let mut errors = ValidationErrors::default();
        let token = errors.required("token", self.token.as_deref(), non_empty);
        errors.finish(|| token)
    }
}

/// Who forgot their password.
#[derive(Debug, Default, Deserialize, Apiv2Schema)]
#[serde(deny_unknown_fields, default)]
pub struct PasswordResetRequest {
    /// The account's email address.
    pub email: Required<Text<Email>>,
}

impl RequestBody for PasswordResetRequest {}

impl PasswordResetRequest {
    /// # Errors
    /// When the email is missing or not an address.
    pub fn email(self) -> Result<Email, ValidationErrors> {
        let mut errors = ValidationErrors::default();
        let email = errors.required("email", self.email.as_deref(), Email::parse);
        errors.finish(|| email)
    }
}

/// A new password with the token of a reset link.
#[derive(Default, Deserialize, Apiv2Schema)]
#[serde(deny_unknown_fields, default)]
pub struct PasswordResetConfirm {
    /// The `token` of the reset link.
    pub token: Required<Text<OpaqueToken>>,
    /// The password rules of registration apply.
    pub new_password: Required<Text<NewPassword>>,
}

impl RequestBody for PasswordResetConfirm {}

impl PasswordResetConfirm {
    /// The token and the new password, both required and non-empty (the rules are checked with the user).
    ///
    /// # Errors
    /// Every missing or empty field.
    pub fn parts(self) -> Result<(String, String), ValidationErrors> {
        let mut errors = ValidationErrors::default();
        let token = errors.required("token", self.token.as_deref(), non_empty);
        let password = errors.required("new_password", self.new_password.as_deref(), non_empty);
        errors.finish(|| token.zip(password))
    }
}
