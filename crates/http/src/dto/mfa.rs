//! Two-factor authentication: the code step of a login, TOTP enrolment and its confirmation, turning it off.

use securecrud_service::SecondFactor;

use super::{passkeys::assertion, *};
use crate::schema::JsonObject;

/// The second step of a login with two-factor authentication: a code, or a passkey's assertion.
#[derive(Default, Deserialize, Apiv2Schema)]
#[serde(deny_unknown_fields, default)]
pub struct MfaVerifyRequest {
    /// The `mfa_token` of the login's `401 mfa_required` answer (single use, 5 minutes).
    pub mfa_token: Required<Text<OpaqueToken>>,
    /// A 6-digit code from the authenticator app, or one of the recovery codes (each works once). Required
    /// unless `passkey` is sent.
    pub code: Optional<Text<MfaCodeRule>>,
    /// Instead of `code`: what `credential.toJSON()` returns for the assertion made with the options of
    /// `POST /api/v1/auth/mfa/passkey/options`.
    pub passkey: Optional<JsonObject>,
    /// As at login: `token` (default) or `cookie`.
    pub session: Optional<Text<SessionModeRule>>,
}

impl RequestBody for MfaVerifyRequest {
    /// `code` or `passkey`: one of them.
    fn body_rules() -> serde_json::Value {
        serde_json::json!({
            "oneOf": [
                { "required": ["code"], "not": { "required": ["passkey"] } },
                { "required": ["passkey"], "not": { "required": ["code"] } }
            ]
        })
    }
}

impl MfaVerifyRequest {
    /// The token, the second factor and the session mode.
    ///
    /// # Errors
    /// Lists every missing or invalid field; `code` and `passkey` together are refused.
    pub fn parse(self) -> Result<(String, SecondFactor, SessionMode), ValidationErrors> {
        let mut errors = ValidationErrors::default();
        let token = errors.required("mfa_token", self.mfa_token.as_deref(), non_empty);
        if self.code.as_deref().is_none() && self.passkey.as_ref().is_none() {
            errors.push("code", "is required (or `passkey`)");
        }
        let factor = second_factor(&mut errors, &self.code, self.passkey.into_option());
        let mode = session_mode(&mut errors, &self.session);
        errors.finish(|| Some((token?, factor?, mode?)))
    }
}

/// `code`: a TOTP code or a recovery code.
pub(super) fn mfa_code(
    errors: &mut ValidationErrors,
    code: &Required<Text<MfaCodeRule>>,
) -> Option<MfaCode> {
    errors.required("code", code.as_deref(), parse_mfa_code)
}

/// A second factor where it may be left out (a step-up: needed only with two-factor on): `code` or
/// `passkey`, not both.
pub(super) fn second_factor(
    errors: &mut ValidationErrors,
    code: &Optional<Text<MfaCodeRule>>,
    passkey: Option<JsonObject>,
) -> Option<SecondFactor> {
    match (code.as_deref(), passkey) {
        (Some(_), Some(_)) => {
            errors.push("passkey", "send either `code` or `passkey`, not both");
            None
        }
        (Some(raw), None) => errors
            .check("code", parse_mfa_code(raw))
            .map(SecondFactor::Code),
        (None, Some(passkey)) => assertion(errors, "passkey", Some(passkey))
            .map(|assertion| SecondFactor::Passkey(Box::new(assertion))),
        (None, None) => None,
    }
}

pub(super) fn parse_mfa_code(raw: &str) -> Result<MfaCode, Invalid> {
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
    /// Required when the account has a password (without: a session opened in the last 10 minutes).
    pub current_password: Optional<Text<CurrentPassword>>,
}

impl RequestBody for TotpEnrolRequest {}

impl TotpEnrolRequest {
    /// The current password.
    ///
    /// # Errors
    /// When it is missing or empty.
    pub fn parse(self, has_password: bool) -> Result<Option<LoginPassword>, ValidationErrors> {
        let mut errors = ValidationErrors::default();
        let password = optional_password(
            &mut errors,
            "current_password",
            &self.current_password,
            has_password.then_some("is required"),
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
