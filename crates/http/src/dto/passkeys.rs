//! Passkeys: registration (options, then the credential), the list, renaming and deleting, the passwordless
//! login, and the second step of a password login.

use securecrud_service::{
    CeremonyOptions, PasskeyInfo, PublicKeyCredential, RegisterPublicKeyCredential,
    RegisteredPasskey, SecondFactor,
};

use serde_json::Value;

use super::*;
use crate::schema::{JsonObject, PasskeyName};

/// The longest passkey name, in characters.
pub const PASSKEY_NAME_MAX_CHARS: usize = 64;

/// `name`: 1–64 characters after trimming (stored trimmed).
fn passkey_name(raw: &str) -> Result<String, Invalid> {
    let name = raw.trim();
    if name.is_empty() {
        return Err(Invalid::new("must not be blank"));
    }
    if name.chars().count() > PASSKEY_NAME_MAX_CHARS {
        return Err(Invalid::new(format!(
            "must be at most {PASSKEY_NAME_MAX_CHARS} characters"
        )));
    }
    Ok(name.to_owned())
}

/// `credential` as a registration response: `422` naming the field when it is not one.
fn registration(
    errors: &mut ValidationErrors,
    credential: Required<JsonObject>,
) -> Option<RegisterPublicKeyCredential> {
    let Some(credential) = credential.into_option() else {
        errors.push("credential", "is required");
        return None;
    };
    match serde_json::from_value(Value::Object(credential.0)) {
        Ok(parsed) => Some(parsed),
        Err(_) => {
            errors.push(
                "credential",
                "must be the JSON of a public-key credential made by navigator.credentials.create \
                 (credential.toJSON())",
            );
            None
        }
    }
}

/// `field` as an assertion: `422` naming it when it is not one.
pub(super) fn assertion(
    errors: &mut ValidationErrors,
    field: &'static str,
    credential: Option<JsonObject>,
) -> Option<PublicKeyCredential> {
    let credential = credential?;
    match serde_json::from_value(Value::Object(credential.0)) {
        Ok(parsed) => Some(parsed),
        Err(_) => {
            errors.push(
                field,
                "must be the JSON of a public-key credential returned by navigator.credentials.get \
                 (credential.toJSON())",
            );
            None
        }
    }
}

/// Starting a passkey registration (or deleting one): the password and, with two-factor on, a second factor.
#[derive(Default, Deserialize, Apiv2Schema)]
#[serde(deny_unknown_fields, default)]
pub struct PasskeyOptionsRequest {
    /// Required when the account has a password (without: a session opened in the last 10 minutes).
    pub current_password: Optional<Text<CurrentPassword>>,
    /// With two-factor authentication on, a code from the authenticator (or a recovery code), or `passkey`:
    /// required (`401 mfa_required` without it).
    pub code: Optional<Text<MfaCodeRule>>,
    /// Instead of `code`: what `credential.toJSON()` returns for an assertion of one of the user's passkeys
    /// over a challenge of `POST /api/v1/auth/passkey/options`.
    pub passkey: Optional<JsonObject>,
}

impl RequestBody for PasskeyOptionsRequest {
    fn body_rules() -> serde_json::Value {
        serde_json::json!({ "not": { "required": ["code", "passkey"] } })
    }
}

impl PasskeyOptionsRequest {
    /// The current password and the second factor, if given.
    ///
    /// # Errors
    /// Lists every missing or invalid field.
    pub fn parse(
        self,
        has_password: bool,
    ) -> Result<(Option<LoginPassword>, Option<SecondFactor>), ValidationErrors> {
        let mut errors = ValidationErrors::default();
        let password = optional_password(
            &mut errors,
            "current_password",
            &self.current_password,
            has_password.then_some("is required"),
        );
        let second_factor = second_factor(&mut errors, &self.code, self.passkey.into_option());
        errors.finish(|| Some((password?, second_factor)))
    }
}

/// The options of a started registration.
#[derive(Debug, Serialize, Apiv2Schema)]
pub struct PasskeyRegistrationOptions {
    /// Send it back with the credential (single use, 5 minutes).
    pub registration_id: String,
    /// For `PublicKeyCredential.parseCreationOptionsFromJSON` (WebAuthn Level 3 JSON: binary fields are
    /// base64url without padding). `excludeCredentials` lists the user's passkeys.
    #[serde(rename = "publicKey")]
    pub public_key: JsonObject,
}

impl From<CeremonyOptions> for PasskeyRegistrationOptions {
    fn from(options: CeremonyOptions) -> Self {
        Self {
            registration_id: options.id,
            public_key: JsonObject::of(options.public_key),
        }
    }
}

/// Finishing a passkey registration.
#[derive(Default, Deserialize, Apiv2Schema)]
#[serde(deny_unknown_fields, default)]
pub struct PasskeyRegisterRequest {
    /// The `registration_id` of the options.
    pub registration_id: Required<Text<OpaqueToken>>,
    /// What `credential.toJSON()` returns for the credential `navigator.credentials.create` made.
    pub credential: Required<JsonObject>,
    /// 1–64 characters (default "Passkey").
    pub name: Optional<Text<PasskeyName>>,
}

impl RequestBody for PasskeyRegisterRequest {}

impl PasskeyRegisterRequest {
    /// The ceremony id, the credential and the name.
    ///
    /// # Errors
    /// Lists every missing or invalid field.
    pub fn parse(
        self,
    ) -> Result<(String, RegisterPublicKeyCredential, Option<String>), ValidationErrors> {
        let mut errors = ValidationErrors::default();
        let id = errors.required(
            "registration_id",
            self.registration_id.as_deref(),
            non_empty,
        );
        let name = match self.name.as_deref() {
            Some(raw) => errors.check("name", passkey_name(raw)).map(Some),
            None => Some(None),
        };
        let credential = registration(&mut errors, self.credential);
        errors.finish(|| Some((id?, credential?, name?)))
    }
}

/// A passkey.
#[derive(Debug, Serialize, Apiv2Schema)]
pub struct PasskeyResponse {
    pub id: Uuid,
    /// 1–64 characters.
    pub name: String,
    pub created_at: Timestamp,
    /// `null` until it is first used to sign in.
    pub last_used_at: OrNull<Timestamp>,
    /// Whether the credential may be synced or backed up (the authenticator's `BE` flag).
    pub backup_eligible: bool,
    /// Whether it is backed up now (`BS`, as of its last use).
    pub backed_up: bool,
}

impl From<PasskeyInfo> for PasskeyResponse {
    fn from(passkey: PasskeyInfo) -> Self {
        Self {
            id: passkey.id,
            name: passkey.name,
            created_at: Timestamp(passkey.created_at),
            last_used_at: passkey.last_used_at.map(Timestamp).into(),
            backup_eligible: passkey.backup_eligible,
            backed_up: passkey.backed_up,
        }
    }
}

/// A registered passkey, with the recovery codes when it was the account's first second factor.
#[derive(Serialize, Apiv2Schema)]
pub struct RegisteredPasskeyResponse {
    pub id: Uuid,
    /// 1–64 characters.
    pub name: String,
    pub created_at: Timestamp,
    /// `null`: not used yet.
    pub last_used_at: OrNull<Timestamp>,
    /// Whether the credential may be synced or backed up (the authenticator's `BE` flag).
    pub backup_eligible: bool,
    /// Whether it is backed up now (`BS`).
    pub backed_up: bool,
    /// Ten codes `xxxx-xxxx-xxxx-xxxx`, shown this once: only when this passkey turned two-factor
    /// authentication on. Each works once in place of a second factor.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recovery_codes: Option<Vec<String>>,
}

impl std::fmt::Debug for RegisteredPasskeyResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegisteredPasskeyResponse")
            .field("id", &self.id)
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl From<RegisteredPasskey> for RegisteredPasskeyResponse {
    fn from(registered: RegisteredPasskey) -> Self {
        let passkey = PasskeyResponse::from(registered.passkey);
        Self {
            id: passkey.id,
            name: passkey.name,
            created_at: passkey.created_at,
            last_used_at: passkey.last_used_at,
            backup_eligible: passkey.backup_eligible,
            backed_up: passkey.backed_up,
            recovery_codes: registered.recovery_codes,
        }
    }
}

/// The user's passkeys.
#[derive(Debug, Serialize, Apiv2Schema)]
pub struct PasskeyListResponse {
    /// Oldest first.
    pub items: Vec<PasskeyResponse>,
}

/// Renaming a passkey.
#[derive(Default, Deserialize, Apiv2Schema)]
#[serde(deny_unknown_fields, default)]
pub struct PasskeyRenameRequest {
    /// 1–64 characters.
    pub name: Required<Text<PasskeyName>>,
}

impl RequestBody for PasskeyRenameRequest {}

impl PasskeyRenameRequest {
    /// The new name.
    ///
    /// # Errors
    /// When it is missing, blank or too long.
    pub fn parse(self) -> Result<String, ValidationErrors> {
        let mut errors = ValidationErrors::default();
        let name = errors.required("name", self.name.as_deref(), passkey_name);
        errors.finish(|| name)
    }
}

/// Deleting a passkey: the password and, with two-factor on, a second factor, as for starting a registration.
pub type PasskeyDeleteRequest = PasskeyOptionsRequest;

/// Starting a passkey login: an empty object.
#[derive(Debug, Default, Deserialize, Apiv2Schema)]
#[serde(deny_unknown_fields)]
pub struct PasskeyLoginOptionsRequest {}

impl RequestBody for PasskeyLoginOptionsRequest {}

/// The options of a started passkey login.
#[derive(Debug, Serialize, Apiv2Schema)]
pub struct PasskeyLoginOptions {
    /// Send it back with the assertion (single use, 5 minutes).
    pub challenge_id: String,
    /// For `PublicKeyCredential.parseRequestOptionsFromJSON`: `allowCredentials` is empty (any passkey of
    /// this site; the browser asks which), `userVerification` is `required`.
    #[serde(rename = "publicKey")]
    pub public_key: JsonObject,
}

impl From<CeremonyOptions> for PasskeyLoginOptions {
    fn from(options: CeremonyOptions) -> Self {
        Self {
            challenge_id: options.id,
            public_key: JsonObject::of(options.public_key),
        }
    }
}

/// Finishing a passkey login.
#[derive(Default, Deserialize, Apiv2Schema)]
#[serde(deny_unknown_fields, default)]
pub struct PasskeyLoginRequest {
    /// The `challenge_id` of the options.
    pub challenge_id: Required<Text<OpaqueToken>>,
    /// What `credential.toJSON()` returns for the assertion of `navigator.credentials.get`.
    pub credential: Required<JsonObject>,
    /// As at login: `token` (default) or `cookie`.
    pub session: Optional<Text<SessionModeRule>>,
}

impl RequestBody for PasskeyLoginRequest {}

impl PasskeyLoginRequest {
    /// The ceremony id, the assertion and the session mode.
    ///
    /// # Errors
    /// Lists every missing or invalid field.
    pub fn parse(self) -> Result<(String, PublicKeyCredential, SessionMode), ValidationErrors> {
        let mut errors = ValidationErrors::default();
        let id = errors.required("challenge_id", self.challenge_id.as_deref(), non_empty);
        let credential = match self.credential.into_option() {
            None => {
                errors.push("credential", "is required");
                None
            }
            some => assertion(&mut errors, "credential", some),
        };
        let mode = session_mode(&mut errors, &self.session);
        errors.finish(|| Some((id?, credential?, mode?)))
    }
}

/// The options of a password login's second step with a passkey.
#[derive(Default, Deserialize, Apiv2Schema)]
#[serde(deny_unknown_fields, default)]
pub struct MfaPasskeyOptionsRequest {
    /// The `mfa_token` of the login's `401 mfa_required` answer.
    pub mfa_token: Required<Text<OpaqueToken>>,
}

impl RequestBody for MfaPasskeyOptionsRequest {}

impl MfaPasskeyOptionsRequest {
    /// The token.
    ///
    /// # Errors
    /// When it is missing or empty.
    pub fn parse(self) -> Result<String, ValidationErrors> {
        let mut errors = ValidationErrors::default();
        let token = errors.required("mfa_token", self.mfa_token.as_deref(), non_empty);
        errors.finish(|| token)
    }
}

/// The options of a second step with a passkey: sign with one of the account's passkeys, then send the
/// assertion to `POST /api/v1/auth/mfa/verify` as `passkey`.
#[derive(Debug, Serialize, Apiv2Schema)]
pub struct MfaPasskeyOptions {
    /// For `PublicKeyCredential.parseRequestOptionsFromJSON`: `allowCredentials` lists the account's
    /// passkeys.
    #[serde(rename = "publicKey")]
    pub public_key: JsonObject,
}

impl MfaPasskeyOptions {
    /// The options, as the service made them.
    pub fn new(public_key: Value) -> Self {
        Self {
            public_key: JsonObject::of(public_key),
        }
    }
}
