//! Sign in with an OpenID Connect provider: the authorization code flow with PKCE (S256), `state` and
//! `nonce` kept in the database (any instance finishes a flow another started), the result handed to the app
//! as a single-use `login_code` in the redirect's fragment and exchanged for tokens, so that no token travels
//! in a URL.
//!
//! The provider's `id_token` is verified by `openidconnect` (signature with the provider's JWKS, the
//! algorithm pinned to the asymmetric ones the provider announces, `iss`, `aud`, `exp`, `nonce`) before
//! anything is read from it. Identities are matched by (provider, `sub`) only: an email never links an
//! account by itself.

use std::{
    sync::{Arc, RwLock},
    time::Instant,
};

use anyhow::Context;
use openidconnect::{
    AuthType, AuthorizationCode, ClaimsVerificationError, ClientId, ClientSecret, CsrfToken,
    EndpointMaybeSet, EndpointNotSet, EndpointSet, HttpClientError, IssuerUrl, JwsSigningAlgorithm,
    Nonce, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, RequestTokenError, Scope,
    SignatureVerificationError, TokenResponse,
    core::{
        CoreAuthenticationFlow, CoreClient, CoreClientAuthMethod, CoreIdTokenClaims,
        CoreJwsSigningAlgorithm, CoreProviderMetadata,
    },
};
use secrecy::ExposeSecret;
use securecrud_auth::{generate_token, hash_token, seal::Sealer};
use securecrud_domain::{
    AuditKind, ConflictField, Email, LoginPassword, Role, UserId, Username, ValidationErrors,
};
use securecrud_persistence::{
    FlowPurpose, FlowStage, LoginCodeBinding, NewFlow, NewUserRecord, StoredIdentity, TakenFlow,
};
use serde::{Deserialize, Serialize};
use serde_json::json;
use time::{Duration, OffsetDateTime};
use tokio::sync::Mutex;
use uuid::Uuid;

use crate::{
    ClientInfo, CurrentSession, LoginOutcome, OidcProviderSettings, OidcSettings, ServiceError,
    Services,
    audit::{event, own_event},
    users::ensure_live,
};

/// How long a started flow may take (the user signs in at the provider meanwhile).
const FLOW_TTL: Duration = Duration::minutes(10);
/// How long the app has to exchange a login code.
const LOGIN_CODE_TTL: Duration = Duration::seconds(60);
/// How old a discovery document (and the keys with it) may be before it is fetched again.
const METADATA_MAX_AGE: std::time::Duration = std::time::Duration::from_secs(15 * 60);
/// The least time between two attempts to fetch a provider's discovery document (while it is down, or to
/// find a key an `id_token` names that the cached set lacks).
const RETRY_AFTER: std::time::Duration = std::time::Duration::from_secs(5);
/// For an account without a password, how recent a session must be to stand in for `current_password`.
pub(crate) const FRESH_SESSION: Duration = Duration::minutes(10);

/// The client of a discovered provider (authorization endpoint set, token and userinfo endpoints as
/// announced).
type DiscoveredClient = CoreClient<
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;

/// The configured providers, each with its discovery document once it loaded.
#[derive(Debug)]
pub(crate) struct Providers {
    providers: Vec<Provider>,
    settings: OidcSettings,
    /// Follows no redirect (a provider cannot point the api at another host) and gives up after
    /// `OIDC_TIMEOUT_MS`.
    http: reqwest::Client,
    /// Seals a flow's nonce and PKCE verifier while it waits in the database.
    sealer: Sealer,
}

#[derive(Debug)]
struct Provider {
    settings: OidcProviderSettings,
    loaded: RwLock<Option<Loaded>>,
    /// Held while fetching the discovery document (one fetch at a time); when the last attempt began.
    fetching: Mutex<Option<Instant>>,
}

#[derive(Debug, Clone)]
struct Loaded {
    metadata: Arc<CoreProviderMetadata>,
    at: Instant,
}

/// What waits sealed in a flow's row.
#[derive(Serialize, Deserialize)]
struct FlowSecrets {
    nonce: String,
    pkce_verifier: String,
}

impl Providers {
    pub(crate) fn new(settings: &OidcSettings, key_material: &[u8]) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .timeout(settings.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .context("building the OpenID Connect HTTP client failed")?;
        Ok(Self {
            providers: settings
                .providers
                .iter()
                .map(|settings| Provider {
                    settings: settings.clone(),
                    loaded: RwLock::new(None),
                    fetching: Mutex::new(None),
                })
                .collect(),
            settings: settings.clone(),
            http,
            sealer: Sealer::derive(key_material, b"securecrud-oidc", b"oidc flow secrets v1")
                .context("deriving the OpenID Connect sealing key failed")?,
        })
    }

    fn find(&self, name: &str) -> Result<&Provider, ServiceError> {
        self.providers
            .iter()
            .find(|p| p.settings.name == name)
            .ok_or(ServiceError::NotFound)
    }

    fn check_redirect(&self, redirect_uri: &str) -> Result<(), ServiceError> {
        if self.settings.allows_redirect(redirect_uri) {
            Ok(())
        } else {
            Err(ServiceError::Validation(ValidationErrors::single(
                "redirect_uri",
                "is not one of the app URLs this server sends results to (OIDC_REDIRECT_ALLOWLIST)",
            )))
        }
    }

    /// The provider's discovery document: the cached one while it is fresh, else fetched (one fetch at a
    /// time, at most one every [`RETRY_AFTER`]); a stale one when the fetch fails; `force` fetches even a
    /// fresh one (an `id_token` named a key the cached set lacks).
    async fn metadata(
        &self,
        provider: &Provider,
        force: bool,
    ) -> Result<Arc<CoreProviderMetadata>, ServiceError> {
        let cached = provider.cached();
        if let Some(loaded) = &cached
            && !force
            && loaded.at.elapsed() < METADATA_MAX_AGE
        {
            return Ok(Arc::clone(&loaded.metadata));
        }
        let mut last_attempt = match (&cached, provider.fetching.try_lock()) {
            (_, Ok(guard)) => guard,
            // Another request is fetching it: this one goes on with the stale document, not waiting.
            (Some(stale), Err(_)) if !force => return Ok(Arc::clone(&stale.metadata)),
            (_, Err(_)) => provider.fetching.lock().await,
        };
        // Another request may have fetched it while this one waited.
        if let Some(loaded) = provider.cached() {
            let newer = cached.as_ref().is_none_or(|old| loaded.at > old.at);
            if newer || (!force && loaded.at.elapsed() < METADATA_MAX_AGE) {
                return Ok(loaded.metadata);
            }
        }
        if last_attempt.is_some_and(|at| at.elapsed() < RETRY_AFTER) {
            return cached
                .map(|loaded| loaded.metadata)
                .ok_or(ServiceError::ProviderUnavailable);
        }
        *last_attempt = Some(Instant::now());
        let discovered = match IssuerUrl::new(provider.settings.issuer.clone()) {
            Ok(issuer) => CoreProviderMetadata::discover_async(issuer, &self.http)
                .await
                .map_err(|err| err.to_string()),
            Err(err) => Err(err.to_string()),
        };
        match discovered {
            Ok(metadata) => {
                let metadata = Arc::new(metadata);
                let loaded = Loaded {
                    metadata: Arc::clone(&metadata),
                    at: Instant::now(),
                };
                if let Ok(mut slot) = provider.loaded.write() {
                    *slot = Some(loaded);
                }
                log::info!(provider = provider.settings.name.as_str(); "OpenID Connect provider discovered");
                Ok(metadata)
            }
            Err(err) => {
                log::warn!(
                    provider = provider.settings.name.as_str();
                    "fetching the OpenID Connect provider's discovery document failed: {err}"
                );
                cached
                    .map(|loaded| loaded.metadata)
                    .ok_or(ServiceError::ProviderUnavailable)
            }
        }
    }
}

impl Provider {
    fn cached(&self) -> Option<Loaded> {
        self.loaded.read().ok().and_then(|slot| slot.clone())
    }

    fn client(&self, metadata: &CoreProviderMetadata) -> DiscoveredClient {
        let secret = self
            .settings
            .client_secret
            .as_ref()
            .map(|secret| ClientSecret::new(secret.expose_secret().to_owned()));
        let client = CoreClient::from_provider_metadata(
            metadata.clone(),
            ClientId::new(self.settings.client_id.clone()),
            secret,
        )
        .set_redirect_uri(RedirectUrl::from_url(self.settings.redirect_uri.clone()));
        // `client_secret_basic` unless the provider takes only `client_secret_post`.
        let methods = metadata.token_endpoint_auth_methods_supported();
        let post_only = methods.is_some_and(|methods| {
            methods.contains(&CoreClientAuthMethod::ClientSecretPost)
                && !methods.contains(&CoreClientAuthMethod::ClientSecretBasic)
        });
        if post_only {
            client.set_auth_type(AuthType::RequestBody)
        } else {
            client
        }
    }
}

/// The asymmetric algorithms the provider announces for `id_token`s: never `none`, never an HMAC (whose key
/// would be the client secret, or, in the classic confusion, a public key).
fn pinned_algorithms(metadata: &CoreProviderMetadata) -> Vec<CoreJwsSigningAlgorithm> {
    metadata
        .id_token_signing_alg_values_supported()
        .iter()
        .filter(|alg| !alg.uses_shared_secret() && **alg != CoreJwsSigningAlgorithm::None)
        .cloned()
        .collect()
}

/// A provider in the list of `GET /auth/oidc/providers`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderInfo {
    pub name: String,
    pub display_name: String,
}

/// Where the browser goes after a provider's callback.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallbackOutcome {
    /// To the app at `redirect_uri`, with these fragment parameters (`login_code`, `linked`, or `error`
    /// and `error_description`).
    Redirect {
        redirect_uri: String,
        fragment: Vec<(&'static str, String)>,
    },
    /// No flow names an app to go back to (an unknown `state`): `400`.
    UnknownState,
}

/// What an exchange shows of the app that started the sign-in: the browser binding of its cookie (an app on
/// the api's site) and the PKCE verifier of the challenge it sent to `authorize` (any app).
#[derive(Clone, Default)]
pub struct AppProof {
    pub browser_binding: Option<String>,
    pub code_verifier: Option<String>,
}

impl std::fmt::Debug for AppProof {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppProof").finish_non_exhaustive()
    }
}

impl AppProof {
    /// With a challenge, its verifier (S256) is what counts; without, the browser binding.
    fn matches(&self, binding: &LoginCodeBinding) -> bool {
        use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
        use sha2::{Digest, Sha256};
        match (&binding.app_challenge, &binding.browser_hash) {
            (Some(challenge), _) => self.code_verifier.as_ref().is_some_and(|verifier| {
                URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes())) == *challenge
            }),
            (None, Some(expected)) => self
                .browser_binding
                .as_deref()
                .is_some_and(|binding| hash_token(binding) == *expected),
            (None, None) => false,
        }
    }
}

/// A started sign-in: where to send the browser, and the browser binding to set in its cookie (the callback
/// must come back from the same browser).
#[derive(Clone, PartialEq, Eq)]
pub struct StartedSignIn {
    pub authorize_url: String,
    pub browser_binding: String,
}

impl std::fmt::Debug for StartedSignIn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StartedSignIn").finish_non_exhaustive()
    }
}

/// What a callback sent to the provider's callback route carried.
#[derive(Clone, Default)]
pub struct CallbackParams {
    pub state: Option<String>,
    pub code: Option<String>,
    pub error: Option<String>,
    /// The browser binding of the request's cookie, if it has one.
    pub browser_binding: Option<String>,
}

impl std::fmt::Debug for CallbackParams {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallbackParams")
            .field("error", &self.error)
            .finish_non_exhaustive()
    }
}

/// An identity linked to an account, as its owner sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentityInfo {
    pub id: Uuid,
    pub provider: String,
    pub subject: String,
    pub email: Option<String>,
    pub linked_at: OffsetDateTime,
    pub last_used_at: Option<OffsetDateTime>,
}

impl From<StoredIdentity> for IdentityInfo {
    fn from(identity: StoredIdentity) -> Self {
        Self {
            id: identity.id,
            provider: identity.provider,
            subject: identity.subject,
            email: identity.email,
            linked_at: identity.linked_at,
            last_used_at: identity.last_used_at,
        }
    }
}

/// Why a callback ends without a sign-in: the `error` the app gets, and what it is told.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Failure {
    InvalidState,
    /// The callback came from another browser than the one that started the sign-in (login CSRF).
    OtherBrowser,
    /// The provider answered with this (RFC 6749) error.
    Provider(&'static str),
    /// The code exchange failed: the provider refused it or answered nonsense.
    Exchange,
    /// The provider could not be reached (or timed out).
    Unreachable,
    InvalidIdToken,
    AccountExists,
    AccountDisabled,
    SignupDisabled,
    EmailRequired,
    IdentityTaken,
}

impl Failure {
    /// What the audit trail records.
    fn reason(self) -> &'static str {
        match self {
            Self::OtherBrowser => "other_browser",
            other => other.error(),
        }
    }

    fn error(self) -> &'static str {
        match self {
            Self::InvalidState | Self::OtherBrowser => "invalid_state",
            Self::Provider(error) => error,
            Self::Exchange => "provider_error",
            Self::Unreachable => "temporarily_unavailable",
            Self::InvalidIdToken => "invalid_id_token",
            Self::AccountExists => "account_exists",
            Self::AccountDisabled => "account_disabled",
            Self::SignupDisabled => "signup_disabled",
            Self::EmailRequired => "email_required",
            Self::IdentityTaken => "identity_taken",
        }
    }

    fn description(self) -> &'static str {
        match self {
            Self::InvalidState => {
                "the sign-in is unknown, expired or finished already; start again"
            }
            Self::OtherBrowser => {
                "the sign-in was started in another browser; start again in this one"
            }
            Self::Provider(_) => "the provider did not sign the user in",
            Self::Exchange => "the provider did not accept the authorization code",
            Self::Unreachable => "the provider could not be reached; try again later",
            Self::InvalidIdToken => "the provider's id_token did not verify",
            Self::AccountExists => {
                "an account with this email exists: sign in to it and link the provider from its settings"
            }
            Self::AccountDisabled => "the account is deactivated",
            Self::SignupDisabled => {
                "no account is linked to this identity, and sign-up with this provider is off"
            }
            Self::EmailRequired => "the provider gave no email address, which a new account needs",
            Self::IdentityTaken => "this identity is linked to another account",
        }
    }
}

/// The RFC 6749 (§4.1.2.1) and OpenID Connect errors a provider may send back; anything else is reported
/// as `provider_error` (the app is never handed text the provider chose).
const PROVIDER_ERRORS: &[&str] = &[
    "access_denied",
    "invalid_request",
    "unauthorized_client",
    "unsupported_response_type",
    "invalid_scope",
    "server_error",
    "temporarily_unavailable",
    "interaction_required",
    "login_required",
    "account_selection_required",
    "consent_required",
];

/// A verified identity waiting for its link to be confirmed (sealed in its row).
#[derive(Serialize, Deserialize)]
struct PendingLink {
    subject: String,
    email: Option<String>,
    email_verified: bool,
}

/// What the callback learnt from a verified `id_token`.
struct Verified {
    subject: String,
    email: Option<String>,
    email_verified: bool,
    preferred_username: Option<String>,
}

impl Services {
    /// The configured providers, in configuration order.
    pub fn oidc_providers(&self) -> Vec<ProviderInfo> {
        self.inner
            .oidc
            .providers
            .iter()
            .map(|p| ProviderInfo {
                name: p.settings.name.clone(),
                display_name: p.settings.display_name.clone(),
            })
            .collect()
    }

    /// Fetches every provider's discovery document once (at start: a misconfigured or unreachable provider
    /// is in the log at once, not at its first sign-in). A failure is logged; the routes retry.
    pub async fn discover_oidc_providers(&self) {
        let providers = &self.inner.oidc;
        for provider in &providers.providers {
            // `metadata` logs what went wrong; the sign-in routes answer 503 until a later attempt works.
            let _ = providers.metadata(provider, false).await;
        }
    }

    /// Starts a sign-in with provider `name` whose result goes to `redirect_uri`: the provider's
    /// authorization URL (code flow, PKCE S256, `state`, `nonce`).
    ///
    /// # Errors
    /// [`ServiceError::NotFound`] for an unknown provider; [`ServiceError::Validation`] for a
    /// `redirect_uri` not on the allowlist; [`ServiceError::ProviderUnavailable`] while its discovery
    /// document cannot be loaded.
    pub async fn start_oidc_sign_in(
        &self,
        name: &str,
        redirect_uri: &str,
        browser_binding: Option<&str>,
        app_challenge: Option<String>,
    ) -> Result<StartedSignIn, ServiceError> {
        // One binding per browser, kept while it has one: sign-ins started in two tabs both finish.
        let browser_binding = browser_binding
            .filter(|binding| is_token(binding))
            .map_or_else(generate_token, str::to_owned);
        let authorize_url = self
            .start_flow(
                name,
                redirect_uri,
                FlowPurpose::SignIn,
                (Some(hash_token(&browser_binding)), app_challenge),
            )
            .await?;
        Ok(StartedSignIn {
            authorize_url,
            browser_binding,
        })
    }

    /// Starts linking provider `name` to the signed-in account, after re-authentication (its password, or
    /// for an account without one, a session opened in the last ten minutes): the provider's authorization
    /// URL, whose callback links the identity it signs in.
    ///
    /// # Errors
    /// As [`Services::start_oidc_sign_in`]; [`ServiceError::InvalidCredentials`] for a wrong password;
    /// [`ServiceError::ReauthenticationRequired`] without a password or a fresh session.
    pub async fn start_oidc_link(
        &self,
        current: &CurrentSession,
        name: &str,
        current_password: Option<LoginPassword>,
        redirect_uri: &str,
        client: &ClientInfo,
    ) -> Result<String, ServiceError> {
        let providers = &self.inner.oidc;
        providers.find(name)?;
        providers.check_redirect(redirect_uri)?;
        self.reauthenticate(current, current_password, client)
            .await?;
        self.start_flow(
            name,
            redirect_uri,
            FlowPurpose::Link(current.user.id),
            (None, None),
        )
        .await
    }

    /// Re-authentication for a change to the account's ways in: its password when it has one, else a
    /// session opened in the last [`FRESH_SESSION`].
    pub(crate) async fn reauthenticate(
        &self,
        current: &CurrentSession,
        current_password: Option<LoginPassword>,
        client: &ClientInfo,
    ) -> Result<(), ServiceError> {
        self.reauthenticate_with(
            current,
            current_password,
            ("current_password", "is required"),
            client,
        )
        .await
    }

    /// [`Services::reauthenticate`], naming the password's field and what a missing one is told.
    pub(crate) async fn reauthenticate_with(
        &self,
        current: &CurrentSession,
        current_password: Option<LoginPassword>,
        (field, missing): (&'static str, &'static str),
        client: &ClientInfo,
    ) -> Result<(), ServiceError> {
        if current.user.has_password {
            let Some(password) = current_password else {
                return Err(ServiceError::Validation(ValidationErrors::single(
                    field, missing,
                )));
            };
            return self.check_password(&current.user, password, client).await;
        }
        // An account a provider made with an address it did not verify may be someone else's squat on that
        // address: it adds no way in (a passkey, TOTP, a password, a link) until the email is verified,
        // else the address's owner, recovering the account by a reset, would find the squatter's still there.
        if !current.user.email_verified {
            return Err(ServiceError::EmailNotVerified);
        }
        let opened = self
            .db
            .live_sessions(current.user.id)
            .await?
            .into_iter()
            .find(|session| session.id == current.session_id)
            .map(|session| session.created_at);
        match opened {
            Some(at) if self.db.now() - at <= FRESH_SESSION => Ok(()),
            _ => Err(ServiceError::ReauthenticationRequired),
        }
    }

    async fn start_flow(
        &self,
        name: &str,
        redirect_uri: &str,
        purpose: FlowPurpose,
        (browser_hash, app_challenge): (Option<String>, Option<String>),
    ) -> Result<String, ServiceError> {
        let providers = &self.inner.oidc;
        let provider = providers.find(name)?;
        providers.check_redirect(redirect_uri)?;
        let metadata = providers.metadata(provider, false).await?;
        let client = provider.client(&metadata);
        let (pkce_challenge, pkce_verifier) = PkceCodeChallenge::new_random_sha256();
        let mut request = client.authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        );
        for scope in provider.settings.scopes.iter().filter(|s| *s != "openid") {
            request = request.add_scope(Scope::new(scope.clone()));
        }
        let (url, state, nonce) = request.set_pkce_challenge(pkce_challenge).url();
        let state_hash = hash_token(state.secret());
        let secrets = serde_json::to_vec(&FlowSecrets {
            nonce: nonce.secret().clone(),
            pkce_verifier: pkce_verifier.secret().clone(),
        })
        .context("serialising a flow's secrets failed")?;
        let secrets = providers
            .sealer
            .seal(&secrets, state_hash.as_bytes())
            .context("sealing a flow's secrets failed")?;
        self.db
            .insert_flow(NewFlow {
                state_hash,
                provider: provider.settings.name.clone(),
                purpose,
                secrets,
                redirect_uri: redirect_uri.to_owned(),
                browser_hash,
                app_challenge,
                expires_at: self.db.now() + FLOW_TTL,
            })
            .await?;
        Ok(url.to_string())
    }

    /// Finishes a flow at the provider's callback: takes the flow its `state` names (once), exchanges the
    /// code with the PKCE verifier, verifies the `id_token` (signature, `iss`, `aud`, `exp`, `nonce`), then
    /// signs in (a login code for the app), signs up, or links, as the flow says.
    ///
    /// # Errors
    /// [`ServiceError::NotFound`] for an unknown provider; a database failure. Everything that goes wrong
    /// with the flow is an outcome: a redirect with `error`, or [`CallbackOutcome::UnknownState`].
    pub async fn finish_oidc_flow(
        &self,
        name: &str,
        params: CallbackParams,
        client: &ClientInfo,
    ) -> Result<CallbackOutcome, ServiceError> {
        let provider = self.inner.oidc.find(name)?;
        let Some(state) = params.state.filter(|state| !state.is_empty()) else {
            return Ok(CallbackOutcome::UnknownState);
        };
        let state_hash = hash_token(&state);
        let Some(flow) = self.db.take_flow(&state_hash, FlowStage::Started).await? else {
            // Spent or expired: its app still hears of it (and the audit trail); unknown: there is no app
            // to tell, and made-up states are not worth a row each.
            return Ok(match self.db.flow_redirect_uri(&state_hash).await? {
                Some(redirect_uri) => {
                    self.record_oidc_failure(client, name, None, Failure::InvalidState)
                        .await;
                    failed(redirect_uri, Failure::InvalidState)
                }
                None => CallbackOutcome::UnknownState,
            });
        };
        let user = match flow.purpose {
            FlowPurpose::SignIn => None,
            FlowPurpose::Link(user) | FlowPurpose::LinkResult(user) => Some(user),
        };
        let result = match (&flow.browser_hash, params.browser_binding.as_deref()) {
            // A sign-in is finished only by the browser that started it: another one (an attacker's flow
            // sent to a victim, to sign the victim in to the attacker's account) is refused.
            (Some(expected), binding) if binding.map(hash_token).as_ref() != Some(expected) => {
                Err(Ok(Failure::OtherBrowser))
            }
            _ => {
                self.complete_flow(
                    provider,
                    &flow,
                    &state_hash,
                    params.code,
                    params.error,
                    client,
                )
                .await
            }
        };
        match result {
            Ok(fragment) => Ok(CallbackOutcome::Redirect {
                redirect_uri: flow.redirect_uri,
                fragment,
            }),
            Err(Ok(failure)) => {
                self.record_oidc_failure(client, name, user, failure).await;
                Ok(failed(flow.redirect_uri, failure))
            }
            Err(Err(err)) => {
                // A failure of ours (the database): the app is told to try again, the cause is logged.
                log::error!(provider = name; "finishing an OpenID Connect flow failed: {err:#}");
                Ok(failed(flow.redirect_uri, Failure::Unreachable))
            }
        }
    }

    /// The flow after its `state` was taken: the fragment for the app, or why it failed.
    async fn complete_flow(
        &self,
        provider: &Provider,
        flow: &TakenFlow,
        state_hash: &str,
        code: Option<String>,
        error: Option<String>,
        client: &ClientInfo,
    ) -> Result<Vec<(&'static str, String)>, Result<Failure, ServiceError>> {
        if flow.provider != provider.settings.name {
            return Err(Ok(Failure::InvalidState));
        }
        if let Some(error) = error {
            let known = PROVIDER_ERRORS
                .iter()
                .find(|known| **known == error)
                .copied()
                .unwrap_or("provider_error");
            return Err(Ok(Failure::Provider(known)));
        }
        let Some(code) = code.filter(|code| !code.is_empty()) else {
            return Err(Ok(Failure::Exchange));
        };
        let secrets = self
            .inner
            .oidc
            .sealer
            .open(&flow.secrets, state_hash.as_bytes());
        let secrets: FlowSecrets = secrets
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .ok_or_else(|| {
                Err(ServiceError::Unexpected(anyhow::anyhow!(
                    "a flow's sealed secrets did not open"
                )))
            })?;
        let verified = self
            .exchange_and_verify(provider, code, secrets)
            .await
            .map_err(Ok)?;
        match flow.purpose {
            FlowPurpose::SignIn => {
                let binding = LoginCodeBinding {
                    browser_hash: flow.browser_hash.clone(),
                    app_challenge: flow.app_challenge.clone(),
                };
                self.sign_in(provider, verified, binding, client).await
            }
            FlowPurpose::Link(user) => self.finish_link(provider, user, verified, flow).await,
            FlowPurpose::LinkResult(_) => Err(Ok(Failure::InvalidState)),
        }
    }

    /// Exchanges the code (with the PKCE verifier) and verifies the `id_token`; a key the cached set lacks
    /// makes one fresh fetch of the provider's keys.
    async fn exchange_and_verify(
        &self,
        provider: &Provider,
        code: String,
        secrets: FlowSecrets,
    ) -> Result<Verified, Failure> {
        let providers = &self.inner.oidc;
        let metadata = providers
            .metadata(provider, false)
            .await
            .map_err(|_| Failure::Unreachable)?;
        let client = provider.client(&metadata);
        let request = client
            .exchange_code(AuthorizationCode::new(code))
            .map_err(|_| Failure::Exchange)?
            .set_pkce_verifier(PkceCodeVerifier::new(secrets.pkce_verifier));
        let response = request
            .request_async(&providers.http)
            .await
            .map_err(|err| {
                log::info!(provider = provider.settings.name.as_str(); "the code exchange failed: {err}");
                match err {
                    RequestTokenError::Request(HttpClientError::Reqwest(_)) => Failure::Unreachable,
                    _ => Failure::Exchange,
                }
            })?;
        let id_token = response.id_token().ok_or(Failure::InvalidIdToken)?;
        let nonce = Nonce::new(secrets.nonce);
        let verify = |metadata: &CoreProviderMetadata| {
            let client = provider.client(metadata);
            let verifier = client
                .id_token_verifier()
                .set_allowed_algs(pinned_algorithms(metadata));
            id_token.claims(&verifier, &nonce).cloned()
        };
        let claims = match verify(&metadata) {
            Err(ClaimsVerificationError::SignatureVerification(
                SignatureVerificationError::NoMatchingKey,
            )) => {
                // The provider may have rotated its keys since they were fetched.
                let fresh = providers
                    .metadata(provider, true)
                    .await
                    .map_err(|_| Failure::Unreachable)?;
                verify(&fresh)
            }
            other => other,
        };
        let claims: CoreIdTokenClaims = claims.map_err(|err| {
            log::info!(provider = provider.settings.name.as_str(); "an id_token was refused: {err}");
            Failure::InvalidIdToken
        })?;
        let subject = claims.subject().as_str().to_owned();
        if subject.is_empty() || subject.len() > 255 {
            return Err(Failure::InvalidIdToken);
        }
        Ok(Verified {
            subject,
            email: claims.email().map(|email| email.as_str().to_lowercase()),
            email_verified: claims.email_verified() == Some(true),
            preferred_username: claims
                .preferred_username()
                .map(|name| name.as_str().to_owned()),
        })
    }

    /// A sign-in: the identity's account (or a new one), and a login code for the app.
    async fn sign_in(
        &self,
        provider: &Provider,
        verified: Verified,
        binding: LoginCodeBinding,
        client: &ClientInfo,
    ) -> Result<Vec<(&'static str, String)>, Result<Failure, ServiceError>> {
        let name = provider.settings.name.as_str();
        let identity = match self.db.find_identity(name, &verified.subject).await {
            Ok(Some(identity)) => identity,
            Ok(None) => self.sign_up(provider, &verified, client).await?,
            Err(err) => return Err(Err(err.into())),
        };
        let user = self
            .db
            .find_user(identity.user)
            .await
            .map_err(|err| Err(err.into()))?
            .ok_or(Ok(Failure::InvalidState))?;
        if !user.is_active {
            return Err(Ok(Failure::AccountDisabled));
        }
        self.db
            .record_identity_use(identity.id, verified.email.clone(), verified.email_verified)
            .await
            .map_err(|err| Err(err.into()))?;
        let code = generate_token();
        self.db
            .insert_login_code(
                hash_token(&code),
                user.id,
                identity.id,
                binding,
                self.db.now() + LOGIN_CODE_TTL,
            )
            .await
            .map_err(|err| Err(err.into()))?;
        Ok(vec![("login_code", code)])
    }

    /// A first sign-in: a new account for the identity, unless its email belongs to an account here
    /// already (never linked by email: whoever controls the provider account would take the local one), or
    /// sign-up is off.
    async fn sign_up(
        &self,
        provider: &Provider,
        verified: &Verified,
        client: &ClientInfo,
    ) -> Result<StoredIdentity, Result<Failure, ServiceError>> {
        let Some(email) = verified
            .email
            .as_deref()
            .and_then(|email| Email::parse(email).ok())
        else {
            return Err(Ok(Failure::EmailRequired));
        };
        // Sign-up first: with it off, the answer must not tell whether an email has an account here.
        if !provider.settings.signup {
            return Err(Ok(Failure::SignupDisabled));
        }
        let taken = self
            .db
            .find_credentials_by_login(email.as_str())
            .await
            .map_err(|err| Err(err.into()))?;
        if taken.is_some() {
            return Err(Ok(Failure::AccountExists));
        }
        let base = username_base(verified.preferred_username.as_deref(), email.as_str());
        for attempt in 0..8u32 {
            let username = username_candidate(&base, attempt);
            match self
                .insert_oidc_account(provider, verified, &email, username, client)
                .await
            {
                Ok(identity) => return Ok(identity),
                Err(ServiceError::Conflict(ConflictField::Username)) => {}
                Err(ServiceError::Conflict(ConflictField::Email | ConflictField::Identity)) => {
                    // The same first sign-in finished concurrently (its account took the email first): that
                    // account is this identity's. Else the email became another account's meanwhile.
                    return self
                        .db
                        .find_identity(&provider.settings.name, &verified.subject)
                        .await
                        .map_err(|err| Err(err.into()))?
                        .ok_or(Ok(Failure::AccountExists));
                }
                Err(err) => return Err(Err(err)),
            }
        }
        Err(Err(ServiceError::Unexpected(anyhow::anyhow!(
            "no free username for {base:?} after 8 attempts"
        ))))
    }

    /// Inserts an account without a password, and its identity, in one transaction.
    async fn insert_oidc_account(
        &self,
        provider: &Provider,
        verified: &Verified,
        email: &Email,
        username: Username,
        client: &ClientInfo,
    ) -> Result<StoredIdentity, ServiceError> {
        let tx = self.db.begin().await?;
        let user = tx
            .insert_user(NewUserRecord {
                username,
                email: email.clone(),
                password_hash: None,
                role: Role::User,
            })
            .await?;
        if verified.email_verified {
            tx.mark_email_verified(user.id, email.as_str()).await?;
        }
        let identity = StoredIdentity {
            id: Uuid::new_v4(),
            user: user.id,
            provider: provider.settings.name.clone(),
            subject: verified.subject.clone(),
            email: Some(email.as_str().to_owned()),
            email_verified: verified.email_verified,
            linked_at: self.db.now(),
            last_used_at: None,
        };
        tx.insert_identity(identity.clone()).await?;
        tx.record_audit(own_event(
            AuditKind::UserRegistered,
            client,
            user.id,
            json!({ "provider": provider.settings.name }),
        ))
        .await?;
        tx.record_audit(own_event(
            AuditKind::IdentityLinked,
            client,
            user.id,
            json!({ "provider": provider.settings.name, "identity_id": identity.id.to_string() }),
        ))
        .await?;
        tx.commit().await?;
        log::info!(user_id:% = user.id, provider = provider.settings.name.as_str(); "account made by an OpenID Connect sign-in");
        Ok(identity)
    }

    /// A link whose identity verified: unless the identity is another account's, a `link_code` for the app,
    /// which the signed-in user confirms (`POST /users/me/identities`). The callback itself links nothing: it
    /// cannot tell who the browser is, and a link flow sent to someone else (a victim signed in at the
    /// provider) would otherwise put their identity on the sender's account.
    async fn finish_link(
        &self,
        provider: &Provider,
        user: UserId,
        verified: Verified,
        flow: &TakenFlow,
    ) -> Result<Vec<(&'static str, String)>, Result<Failure, ServiceError>> {
        let name = &provider.settings.name;
        let existing = self
            .db
            .find_identity(name, &verified.subject)
            .await
            .map_err(|err| Err(err.into()))?;
        if existing.is_some_and(|identity| identity.user != user) {
            return Err(Ok(Failure::IdentityTaken));
        }
        let code = generate_token();
        let code_hash = hash_token(&code);
        let pending = serde_json::to_vec(&PendingLink {
            subject: verified.subject,
            email: verified.email,
            email_verified: verified.email_verified,
        })
        .map_err(|err| Err(anyhow::Error::new(err).into()))?;
        let secrets = self
            .inner
            .oidc
            .sealer
            .seal(&pending, code_hash.as_bytes())
            .map_err(|err| Err(anyhow::Error::new(err).into()))?;
        self.db
            .insert_flow(NewFlow {
                state_hash: code_hash,
                provider: name.clone(),
                purpose: FlowPurpose::LinkResult(user),
                secrets,
                redirect_uri: flow.redirect_uri.clone(),
                browser_hash: None,
                app_challenge: None,
                expires_at: self.db.now() + LOGIN_CODE_TTL,
            })
            .await
            .map_err(|err| Err(err.into()))?;
        Ok(vec![("link_code", code)])
    }

    /// Confirms a link: the `link_code` of a link flow this user started, from a live session of theirs
    /// (single use, 60 s). The identity is then linked.
    ///
    /// # Errors
    /// [`ServiceError::InvalidLoginCode`] for an unknown, used or expired code, or one of another user's
    /// flow; [`ServiceError::Conflict`] ([`ConflictField::Identity`]) when the identity was linked to another
    /// account meanwhile; [`ServiceError::InvalidToken`] when the session ended.
    pub async fn confirm_oidc_link(
        &self,
        current: &CurrentSession,
        link_code: &str,
        client: &ClientInfo,
    ) -> Result<IdentityInfo, ServiceError> {
        let code_hash = hash_token(link_code);
        let taken = self
            .db
            .take_flow(&code_hash, FlowStage::Finished)
            .await?
            .ok_or(ServiceError::InvalidLoginCode)?;
        if taken.purpose != FlowPurpose::LinkResult(current.user.id) {
            return Err(ServiceError::InvalidLoginCode);
        }
        let pending: PendingLink = self
            .inner
            .oidc
            .sealer
            .open(&taken.secrets, code_hash.as_bytes())
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .context("a pending link's sealed identity did not open")?;
        if let Some(existing) = self
            .db
            .find_identity(&taken.provider, &pending.subject)
            .await?
        {
            return if existing.user == current.user.id {
                Ok(IdentityInfo::from(existing))
            } else {
                Err(ServiceError::Conflict(ConflictField::Identity))
            };
        }
        let identity = StoredIdentity {
            id: Uuid::new_v4(),
            user: current.user.id,
            provider: taken.provider,
            subject: pending.subject,
            email: pending.email,
            email_verified: pending.email_verified,
            linked_at: self.db.now(),
            last_used_at: None,
        };
        let tx = self.db.begin().await?;
        // A link started from a session that ended since (a password change, a logout) is not made.
        ensure_live(&tx, current).await?;
        tx.insert_identity(identity.clone()).await?;
        tx.record_audit(own_event(
            AuditKind::IdentityLinked,
            client,
            current.user.id,
            json!({ "provider": identity.provider, "identity_id": identity.id.to_string() }),
        ))
        .await?;
        tx.commit().await?;
        log::info!(user_id:% = current.user.id, provider = identity.provider.as_str(); "identity linked");
        Ok(IdentityInfo::from(identity))
    }

    /// Exchanges a login code for a session (or, with two-factor on, an `mfa_token`): single use, 60 s; of
    /// concurrent exchanges one wins.
    ///
    /// # Errors
    /// [`ServiceError::InvalidLoginCode`] for an unknown, used or expired code;
    /// [`ServiceError::AccountDisabled`]; [`ServiceError::EmailNotVerified`].
    pub async fn exchange_login_code(
        &self,
        login_code: &str,
        proof: &AppProof,
        client: &ClientInfo,
    ) -> Result<LoginOutcome, ServiceError> {
        let taken = self
            .db
            .take_login_code(&hash_token(login_code))
            .await?
            .ok_or(ServiceError::InvalidLoginCode)?;
        // Only the app that started the sign-in may finish it: a code carried into someone else's app (to
        // sign its user in to the attacker's account) is refused, and spent.
        if !proof.matches(&taken.binding) {
            log::info!(user_id:% = taken.user; "a login code came from another app or browser");
            return Err(ServiceError::InvalidLoginCode);
        }
        let user = self
            .db
            .find_user(taken.user)
            .await?
            .ok_or(ServiceError::InvalidLoginCode)?;
        if !user.is_active {
            return Err(ServiceError::AccountDisabled);
        }
        if self.inner.mail.require_verified_email && !user.email_verified {
            return Err(ServiceError::EmailNotVerified);
        }
        if user.mfa_enabled {
            let challenge = self.mfa_challenge(&user).await?;
            return Ok(LoginOutcome::MfaRequired(challenge));
        }
        let provider = self
            .db
            .identities_of(user.id)
            .await?
            .into_iter()
            .find(|identity| identity.id == taken.identity)
            .map(|identity| identity.provider);
        let tx = self.db.begin().await?;
        let opened = self.open_session_in(&tx, &user, client, &[]).await?;
        tx.record_audit(own_event(
            AuditKind::OidcLogin,
            client,
            user.id,
            json!({
                "session_id": opened.id.to_string(),
                "provider": provider,
                "identity_id": taken.identity.to_string(),
            }),
        ))
        .await?;
        tx.commit().await?;
        log::info!(user_id:% = user.id; "login succeeded with an OpenID Connect provider");
        Ok(LoginOutcome::Tokens(self.token_pair(
            &user,
            opened.id,
            opened.refresh_token,
            opened.expires_at,
        )?))
    }

    /// The signed-in user's identities.
    ///
    /// # Errors
    /// [`ServiceError::Unavailable`] when the database is.
    pub async fn identities(&self, user: UserId) -> Result<Vec<IdentityInfo>, ServiceError> {
        Ok(self
            .db
            .identities_of(user)
            .await?
            .into_iter()
            .map(IdentityInfo::from)
            .collect())
    }

    /// Unlinks identity `id` from the signed-in account, after re-authentication; never the account's last
    /// way in (a password, another identity, a passkey), however many unlinks run at once.
    ///
    /// # Errors
    /// [`ServiceError::NotFound`]; [`ServiceError::LastSignInMethod`]; as [`Services::start_oidc_link`]'s
    /// re-authentication.
    pub async fn unlink_identity(
        &self,
        current: &CurrentSession,
        id: Uuid,
        current_password: Option<LoginPassword>,
        client: &ClientInfo,
    ) -> Result<(), ServiceError> {
        let user = &current.user;
        if !self
            .db
            .identities_of(user.id)
            .await?
            .iter()
            .any(|identity| identity.id == id)
        {
            return Err(ServiceError::NotFound);
        }
        self.reauthenticate(current, current_password, client)
            .await?;
        let tx = self.db.begin().await?;
        let others = tx
            .other_sign_in_methods(user.id, id)
            .await?
            .ok_or(ServiceError::NotFound)?;
        if others == 0 {
            return Err(ServiceError::LastSignInMethod);
        }
        if !tx.delete_identity(user.id, id).await? {
            return Err(ServiceError::NotFound);
        }
        tx.record_audit(own_event(
            AuditKind::IdentityUnlinked,
            client,
            user.id,
            json!({ "identity_id": id.to_string() }),
        ))
        .await?;
        tx.commit().await?;
        log::info!(user_id:% = user.id; "identity unlinked");
        Ok(())
    }

    /// Records a refused callback (`oidc_failed`, with the provider and the reason). Failing to record it
    /// does not change the answer.
    async fn record_oidc_failure(
        &self,
        client: &ClientInfo,
        provider: &str,
        user: Option<UserId>,
        failure: Failure,
    ) {
        let recorded = async {
            let tx = self.db.begin().await?;
            tx.record_audit(event(
                AuditKind::OidcFailed,
                client,
                None,
                user,
                json!({ "provider": provider, "reason": failure.reason() }),
            ))
            .await?;
            tx.commit().await?;
            Ok::<_, ServiceError>(())
        }
        .await;
        log::info!(provider = provider, reason = failure.reason(); "OpenID Connect sign-in refused");
        if let Err(err) = recorded {
            log::error!("recording a refused OpenID Connect sign-in failed: {err:#}");
        }
    }
}

/// Whether `value` has the shape of [`generate_token`]'s tokens (43 characters of base64url).
fn is_token(value: &str) -> bool {
    value.len() == 43
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn failed(redirect_uri: String, failure: Failure) -> CallbackOutcome {
    CallbackOutcome::Redirect {
        redirect_uri,
        fragment: vec![
            ("error", failure.error().to_owned()),
            ("error_description", failure.description().to_owned()),
        ],
    }
}

/// The username a new account starts from: the provider's `preferred_username`, else the email's local
/// part, cut down to the username rules (`[A-Za-z0-9_.-]`, 3–32 characters).
fn username_base(preferred: Option<&str>, email: &str) -> String {
    let source = preferred
        .filter(|name| !name.contains('@'))
        .unwrap_or_else(|| email.split('@').next().unwrap_or_default());
    let mut base: String = source
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
        .take(Username::MAX_CHARS - 5)
        .collect();
    while base.chars().count() < Username::MIN_CHARS {
        base.push('_');
    }
    base
}

/// The `attempt`-th username to try: the base, then the base with a random 4-digit suffix.
fn username_candidate(base: &str, attempt: u32) -> Username {
    let candidate = if attempt == 0 {
        base.to_owned()
    } else {
        format!("{base}-{:04}", rand::random_range(0..10_000u32))
    };
    Username::parse(&candidate).unwrap_or_else(|_| {
        // The base keeps to the rules by construction; a random one always parses.
        Username::parse(&format!(
            "user-{:08}",
            rand::random_range(0..100_000_000u32)
        ))
        .unwrap_or_else(|_| unreachable!("`user-` and 8 digits is a valid username"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_come_from_the_provider_or_the_email() {
        assert_eq!(username_base(Some("Ann.Lee"), "x@example.com"), "Ann.Lee");
        assert_eq!(
            username_base(Some("ann@corp"), "ann.lee@example.com"),
            "ann.lee"
        );
        assert_eq!(username_base(None, "a+b@example.com"), "ab_");
        assert_eq!(username_base(Some("Zoë Ünal"), "z@example.com"), "Zonal");
        let long = "a".repeat(80);
        assert_eq!(
            username_base(Some(&long), "z@example.com").len(),
            Username::MAX_CHARS - 5
        );
        for attempt in 0..3 {
            assert!(Username::parse(username_candidate(&"b".repeat(27), attempt).as_str()).is_ok());
        }
    }

    #[test]
    fn only_known_provider_errors_reach_the_app() {
        assert!(PROVIDER_ERRORS.contains(&"access_denied"));
        assert!(!PROVIDER_ERRORS.contains(&"<script>"));
    }
}
