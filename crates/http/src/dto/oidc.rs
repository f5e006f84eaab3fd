//! Sign in with an OpenID Connect provider: the providers, the exchange of a login code, and the signed-in
//! user's identities.

use securecrud_service::{IdentityInfo, ProviderInfo};

use super::*;

/// A provider one may sign in with.
#[derive(Debug, Serialize, Apiv2Schema)]
pub struct OidcProviderResponse {
    /// The `{name}` of its routes.
    pub name: String,
    /// What to show on its button.
    pub display_name: String,
}

impl From<ProviderInfo> for OidcProviderResponse {
    fn from(provider: ProviderInfo) -> Self {
        Self {
            name: provider.name,
            display_name: provider.display_name,
        }
    }
}

/// The configured providers.
#[derive(Debug, Serialize, Apiv2Schema)]
pub struct OidcProviderListResponse {
    /// In configuration order.
    pub items: Vec<OidcProviderResponse>,
}

/// Query parameters of `GET /api/v1/auth/oidc/{name}/authorize`.
#[derive(Debug, Default, Deserialize, Apiv2Schema)]
#[serde(default)]
pub struct OidcAuthorizeParams {
    /// The app URL the result goes to: exactly one of `OIDC_REDIRECT_ALLOWLIST`.
    pub redirect_uri: Required<Text<OpaqueToken>>,
    /// The app's own PKCE challenge (RFC 7636 S256: base64url of the SHA-256 of a verifier it keeps, 43
    /// characters). With it, the exchange needs `code_verifier`; without, it needs the cookie this answer sets
    /// (an app on the api's site). An app on another site, whose requests carry no cookie of the api, sends it.
    pub code_challenge: Optional<Text<OpaqueToken>>,
}

impl OidcAuthorizeParams {
    /// The app URL and the app's challenge.
    ///
    /// # Errors
    /// When the URL is missing, or the challenge is not 43 characters of base64url.
    pub fn parse(self) -> Result<(String, Option<String>), ValidationErrors> {
        let mut errors = ValidationErrors::default();
        let redirect_uri = errors.required("redirect_uri", self.redirect_uri.as_deref(), non_empty);
        let challenge = match self.code_challenge.as_deref() {
            None => Some(None),
            Some(raw)
                if raw.len() == 43
                    && raw
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') =>
            {
                Some(Some(raw.to_owned()))
            }
            Some(_) => {
                errors.push(
                    "code_challenge",
                    "must be 43 characters of base64url (the S256 of a verifier)",
                );
                None
            }
        };
        errors.finish(|| Some((redirect_uri?, challenge?)))
    }
}

/// Exchanging a login code for a session.
#[derive(Default, Deserialize, Apiv2Schema)]
#[serde(deny_unknown_fields, default)]
pub struct OidcExchangeRequest {
    /// The `login_code` of the redirect's fragment (single use, 60 seconds).
    pub login_code: Required<Text<OpaqueToken>>,
    /// The verifier of the `code_challenge` sent to `authorize`, when one was sent (43–128 characters of
    /// `A–Z a–z 0–9 - . _ ~`).
    pub code_verifier: Optional<Text<OpaqueToken>>,
    /// As at login: `token` (default) or `cookie`.
    pub session: Optional<Text<SessionModeRule>>,
}

impl RequestBody for OidcExchangeRequest {}

impl OidcExchangeRequest {
    /// The code and the session mode.
    ///
    /// # Errors
    /// Lists every missing or invalid field.
    pub fn parse(self) -> Result<(String, Option<String>, SessionMode), ValidationErrors> {
        let mut errors = ValidationErrors::default();
        let code = errors.required("login_code", self.login_code.as_deref(), non_empty);
        let verifier = match self.code_verifier.as_deref() {
            None => Some(None),
            Some(raw)
                if (43..=128).contains(&raw.len())
                    && raw.bytes().all(|b| {
                        b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
                    }) =>
            {
                Some(Some(raw.to_owned()))
            }
            Some(_) => {
                errors.push(
                    "code_verifier",
                    "must be 43–128 characters of A–Z a–z 0–9 - . _ ~",
                );
                None
            }
        };
        let mode = session_mode(&mut errors, &self.session);
        errors.finish(|| Some((code?, verifier?, mode?)))
    }
}

/// Linking a provider to the signed-in account.
#[derive(Default, Deserialize, Apiv2Schema)]
#[serde(deny_unknown_fields, default)]
pub struct IdentityLinkRequest {
    /// Required when the account has a password; an account without one re-authenticates with a session
    /// opened in the last 10 minutes instead.
    pub current_password: Optional<Text<CurrentPassword>>,
    /// The app URL the result goes to: exactly one of `OIDC_REDIRECT_ALLOWLIST`.
    pub redirect_uri: Required<Text<OpaqueToken>>,
}

impl RequestBody for IdentityLinkRequest {}

impl IdentityLinkRequest {
    /// The password (if given) and the app URL.
    ///
    /// # Errors
    /// Lists every missing or invalid field.
    pub fn parse(
        self,
        has_password: bool,
    ) -> Result<(Option<LoginPassword>, String), ValidationErrors> {
        let mut errors = ValidationErrors::default();
        let password = optional_password(
            &mut errors,
            "current_password",
            &self.current_password,
            has_password.then_some("is required"),
        );
        let redirect_uri = errors.required("redirect_uri", self.redirect_uri.as_deref(), non_empty);
        errors.finish(|| Some((password?, redirect_uri?)))
    }
}

/// Confirming a link.
#[derive(Default, Deserialize, Apiv2Schema)]
#[serde(deny_unknown_fields, default)]
pub struct IdentityConfirmRequest {
    /// The `link_code` of the fragment the link's callback sent the app (single use, 60 seconds).
    pub link_code: Required<Text<OpaqueToken>>,
}

impl RequestBody for IdentityConfirmRequest {}

impl IdentityConfirmRequest {
    /// The code.
    ///
    /// # Errors
    /// When it is missing or blank.
    pub fn parse(self) -> Result<String, ValidationErrors> {
        let mut errors = ValidationErrors::default();
        let code = errors.required("link_code", self.link_code.as_deref(), non_empty);
        errors.finish(|| code)
    }
}

/// Unlinking an identity (the body may be left out by an account without a password).
#[derive(Default, Deserialize, Apiv2Schema)]
#[serde(deny_unknown_fields, default)]
pub struct IdentityUnlinkRequest {
    /// Required when the account has a password; an account without one re-authenticates with a session
    /// opened in the last 10 minutes instead.
    pub current_password: Optional<Text<CurrentPassword>>,
}

impl RequestBody for IdentityUnlinkRequest {}

impl IdentityUnlinkRequest {
    /// The password, if given.
    ///
    /// # Errors
    /// When it is blank.
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

/// Where to send the browser to link a provider.
#[derive(Debug, Serialize, Apiv2Schema)]
pub struct IdentityLinkResponse {
    /// The provider's authorization URL; its callback verifies the identity the user signs in as, then
    /// sends the browser to `redirect_uri` with `#link_code=…` to confirm (or `#error=…`).
    pub authorize_url: String,
}

/// An identity at a provider, linked to the account.
#[derive(Debug, Serialize, Apiv2Schema)]
pub struct IdentityResponse {
    pub id: Uuid,
    /// The provider's name.
    pub provider: String,
    /// The provider's `sub` for this user.
    pub subject: String,
    /// The email the provider gave at the last sign-in, if any.
    pub email: OrNull<String>,
    pub linked_at: Timestamp,
    /// `null` until it is first used to sign in.
    pub last_used_at: OrNull<Timestamp>,
}

impl From<IdentityInfo> for IdentityResponse {
    fn from(identity: IdentityInfo) -> Self {
        Self {
            id: identity.id,
            provider: identity.provider,
            subject: identity.subject,
            email: identity.email.into(),
            linked_at: Timestamp(identity.linked_at),
            last_used_at: identity.last_used_at.map(Timestamp).into(),
        }
    }
}

/// The signed-in user's identities.
#[derive(Debug, Serialize, Apiv2Schema)]
pub struct IdentityListResponse {
    /// Oldest link first.
    pub items: Vec<IdentityResponse>,
}
