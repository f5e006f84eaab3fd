//! Sign in with an OpenID Connect provider: `/api/v1/auth/oidc/*` (the providers, the way to one and back,
//! the exchange of a login code) and `/api/v1/users/me/identities*` (linking and unlinking).

use actix_web::HttpRequest;
use paperclip::actix::{NoContent, api_v2_operation, web};
use securecrud_service::{AppProof, CallbackOutcome, CallbackParams, LoginOutcome, Services};
use uuid::Uuid;

use crate::{
    browser::{BrowserSessions, SessionMode},
    dto::{
        IdentityConfirmRequest, IdentityLinkRequest, IdentityLinkResponse, IdentityListResponse,
        IdentityResponse, IdentityUnlinkRequest, OidcAuthorizeParams, OidcExchangeRequest,
        OidcProviderListResponse,
    },
    error::{ApiError, Problem, error_set},
    extract::{ApiJson, Client, SignedIn, StrictQuery},
    handlers::resource,
    respond::{Redirect, Tokens},
};

/// The OpenID Connect routes. Each starts or ends a sign-in, or changes the account's ways in: all under the
/// per-IP auth limit (the list of providers too, which is cheap, for one rule).
pub fn routes(cfg: &mut web::ServiceConfig<'_>) {
    resource!(cfg, "/auth/oidc/providers", [GET => providers]);
    resource!(cfg, "/auth/oidc/exchange", limited, [POST => exchange]);
    resource!(cfg, "/auth/oidc/{name}/authorize", limited, [GET => authorize]);
    resource!(cfg, "/auth/oidc/{name}/callback", limited, [GET => callback]);
    resource!(cfg, "/users/me/identities", limited, [GET => identities, POST => confirm_link]);
    // One path for both: `{id}` is the provider's name to link (POST), an identity's id to unlink (DELETE).
    resource!(cfg, "/users/me/identities/{id}", limited, [POST => link, DELETE => unlink]);
}

error_set!(
    /// What the list of providers can answer besides 200.
    ProvidersError {
        500 => "Unexpected server error",
    }
);

/// The providers one may sign in with
///
/// Configured by `OIDC_PROVIDERS`; empty when there are none.
#[api_v2_operation(tags(Auth), operation_id = "listOidcProviders")]
pub async fn providers(
    services: web::Data<Services>,
) -> Result<web::Json<OidcProviderListResponse>, ProvidersError> {
    Ok(web::Json(OidcProviderListResponse {
        items: services
            .oidc_providers()
            .into_iter()
            .map(Into::into)
            .collect(),
    }))
}

error_set!(
    /// What starting a sign-in can answer besides the redirect.
    AuthorizeError {
        400 => "The query string could not be decoded",
        404 => "No provider of this name is configured",
        422 => "`redirect_uri` is missing, or is not exactly one of `OIDC_REDIRECT_ALLOWLIST`",
        429 => "`rate_limited`: too many requests from this IP; see `Retry-After`",
        500 => "Unexpected server error",
        503 => "The provider cannot be reached (its discovery document does not load), or the database is unavailable",
    }
);

/// Sign in with a provider
///
/// Sends the browser to the provider (authorization code flow with PKCE S256, `state` and `nonce`, kept by
/// the server for 10 minutes). Its callback ends at `redirect_uri` (exactly one of `OIDC_REDIRECT_ALLOWLIST`)
/// with `#login_code=…` (exchange it at `POST /api/v1/auth/oidc/exchange`) or `#error=…&error_description=…`.
#[api_v2_operation(tags(Auth), operation_id = "startOidcSignIn")]
pub async fn authorize(
    services: web::Data<Services>,
    browser: web::Data<BrowserSessions>,
    req: HttpRequest,
    name: web::Path<String>,
    query: StrictQuery<OidcAuthorizeParams>,
) -> Result<Redirect, AuthorizeError> {
    let (redirect_uri, app_challenge) = query.0.parse()?;
    let started = services
        .start_oidc_sign_in(
            &name,
            &redirect_uri,
            browser.sign_in_binding(&req).as_deref(),
            app_challenge,
        )
        .await?;
    Ok(Redirect::to(started.authorize_url)
        .with_cookie(browser.sign_in_cookie(&started.browser_binding)))
}

error_set!(
    /// What a provider's callback can answer besides the redirect.
    CallbackError {
        400 => "`state` is missing or names no sign-in (there is no app to send the browser back to)",
        404 => "No provider of this name is configured",
        429 => "`rate_limited`: too many requests from this IP; see `Retry-After`",
        500 => "Unexpected server error",
        503 => "The database is unavailable",
    }
);

/// Where the provider sends the browser back
///
/// Register `{PUBLIC_BASE_URL}/api/v1/auth/oidc/{name}/callback` at the provider. Takes the sign-in its
/// `state` names (once), exchanges `code` with the PKCE verifier, verifies the `id_token` (signature with the
/// provider's keys, `iss`, `aud`, `exp`, `nonce`), and sends the browser to the app with `#login_code=…`
/// (or, when linking, `#link_code=…` to confirm), or with `#error=…&error_description=…`: `invalid_state`,
/// `access_denied` (or another error of the provider), `provider_error`, `temporarily_unavailable`,
/// `invalid_id_token`, `account_exists` (a first sign-in whose email is an account's here: sign in to it and
/// link the provider), `account_disabled`, `signup_disabled`, `email_required`, `identity_taken`.
#[api_v2_operation(tags(Auth), operation_id = "finishOidcSignIn")]
pub async fn callback(
    services: web::Data<Services>,
    browser: web::Data<BrowserSessions>,
    req: HttpRequest,
    client: Client,
    name: web::Path<String>,
) -> Result<Redirect, CallbackError> {
    let mut params = callback_params(req.query_string())?;
    params.browser_binding = browser.sign_in_binding(&req);
    match services.finish_oidc_flow(&name, params, &client.0).await? {
        CallbackOutcome::Redirect {
            redirect_uri,
            fragment,
        } => {
            let fragment = serde_urlencoded::to_string(&fragment).map_err(|err| {
                ApiError::Internal(anyhow::Error::new(err).context("encoding a fragment failed"))
            })?;
            Ok(Redirect::to(format!("{redirect_uri}#{fragment}")))
        }
        CallbackOutcome::UnknownState => Err(ApiError::BadRequest(
            "the sign-in is unknown (no `state`, or one this server did not issue): start again from the app"
                .to_owned(),
        )
        .into()),
    }
}

/// The parameters of a callback: the first `state`, `code` and `error`; others (`iss`, `session_state`,
/// `scope`…) are the provider's business and ignored.
fn callback_params(query: &str) -> Result<CallbackParams, ApiError> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query)
        .map_err(|_| ApiError::BadRequest("the query string could not be decoded".to_owned()))?;
    let mut params = CallbackParams::default();
    for (key, value) in pairs {
        let slot = match key.as_str() {
            "state" => &mut params.state,
            "code" => &mut params.code,
            "error" => &mut params.error,
            _ => continue,
        };
        slot.get_or_insert(value);
    }
    Ok(params)
}

error_set!(
    /// What exchanging a login code can answer besides 200.
    ExchangeError {
        400 => "The body is not valid JSON; `invalid_token`: the `login_code` is unknown, expired or already used",
        401 => "`mfa_required`: the account has two-factor authentication on; send a second factor with the `mfa_token` to `POST /api/v1/auth/mfa/verify`",
        403 => "The account is deactivated, or `email_not_verified`; with `session: \"cookie\"`, no `X-Requested-With: securecrud` or an origin that is not allowed",
        413 => "The body is larger than 64 KiB",
        415 => "The body is not `application/json`",
        422 => "A field is missing or invalid (all listed in `errors`)",
        429 => "`rate_limited`: too many requests from this IP; see `Retry-After`",
        500 => "Unexpected server error",
        503 => "The database is unavailable",
    }
);

/// Exchange a login code for a session
///
/// With the `login_code` of the fragment the callback sent the app (single use, 60 seconds): a session as a
/// login opens (`session: "cookie"` too), or `401 mfa_required` when the account has two-factor
/// authentication on. Only the app that started the sign-in may exchange its code: with the `code_verifier` of
/// the `code_challenge` it sent to `authorize`, or else from the same browser (the cookie `authorize` set). A
/// code carried anywhere else is `400 invalid_token`, and spent.
#[api_v2_operation(tags(Auth), operation_id = "exchangeOidcLoginCode")]
pub async fn exchange(
    services: web::Data<Services>,
    browser: web::Data<BrowserSessions>,
    req: HttpRequest,
    client: Client,
    body: ApiJson<OidcExchangeRequest>,
) -> Result<Tokens, ExchangeError> {
    let (code, code_verifier, mode) = body.0.parse()?;
    if mode == SessionMode::Cookie {
        browser.check_csrf(&req)?;
    }
    let proof = AppProof {
        browser_binding: browser.sign_in_binding(&req),
        code_verifier,
    };
    match services
        .exchange_login_code(&code, &proof, &client.0)
        .await?
    {
        LoginOutcome::Tokens(pair) => Ok(Tokens::new(pair, mode)),
        LoginOutcome::MfaRequired(challenge) => Err(ApiError::MfaRequired(challenge).into()),
    }
}

error_set!(
    /// What the signed-in user's identity routes can answer besides success.
    IdentityError {
        400 => "The body is not valid JSON",
        401 => "No or a bad access token; `invalid_credentials`: a wrong current password (counted like a failed login); `reauthentication_required`: an account without a password whose session is older than 10 minutes",
        404 => "No such provider, or the user has no such identity",
        409 => "`last_sign_in_method`: the identity is the account's only way to sign in",
        413 => "The body is larger than 64 KiB",
        415 => "The body is not `application/json`",
        422 => "A field is missing or invalid (all listed in `errors`): `current_password` (required when the account has one), `redirect_uri` (exactly one of `OIDC_REDIRECT_ALLOWLIST`)",
        429 => "`rate_limited`: too many requests from this IP, or the account is locked after failed passwords; see `Retry-After`",
        500 => "Unexpected server error",
        503 => "The provider cannot be reached, or the database is unavailable",
    }
);

/// List my identities
///
/// The identities at OpenID Connect providers linked to the account, oldest first.
#[api_v2_operation(tags(Users), operation_id = "listMyIdentities")]
pub async fn identities(
    services: web::Data<Services>,
    auth: SignedIn,
) -> Result<web::Json<IdentityListResponse>, IdentityError> {
    let items = services.identities(auth.0.user.id).await?;
    Ok(web::Json(IdentityListResponse {
        items: items.into_iter().map(Into::into).collect(),
    }))
}

/// Link a provider to my account
///
/// Re-authenticates (`current_password`; an account without a password: a session opened in the last 10
/// minutes) and returns the provider's authorization URL: send the browser there. Its callback verifies the
/// identity the user signs in as (one linked to another account: `#error=identity_taken`) and ends at
/// `redirect_uri` with `#link_code=…`: confirm it with `POST /api/v1/users/me/identities` (within 60 s, from
/// this account) to link the identity.
#[api_v2_operation(tags(Users), operation_id = "linkMyIdentity")]
pub async fn link(
    services: web::Data<Services>,
    client: Client,
    auth: SignedIn,
    name: web::Path<String>,
    body: ApiJson<IdentityLinkRequest>,
) -> Result<web::Json<IdentityLinkResponse>, IdentityError> {
    let (password, redirect_uri) = body.0.parse(auth.0.user.has_password)?;
    let authorize_url = services
        .start_oidc_link(&auth.0, &name, password, &redirect_uri, &client.0)
        .await?;
    Ok(web::Json(IdentityLinkResponse { authorize_url }))
}

/// Confirm a link
///
/// With the `link_code` of the fragment a link's callback sent the app (single use, 60 seconds, good only
/// for the account that started the link, from a session still live): the identity is linked. Answers the
/// identity.
#[api_v2_operation(tags(Users), operation_id = "confirmMyIdentityLink")]
pub async fn confirm_link(
    services: web::Data<Services>,
    client: Client,
    auth: SignedIn,
    body: ApiJson<IdentityConfirmRequest>,
) -> Result<web::Json<IdentityResponse>, ConfirmLinkError> {
    let code = body.0.parse()?;
    let identity = services
        .confirm_oidc_link(&auth.0, &code, &client.0)
        .await?;
    Ok(web::Json(identity.into()))
}

error_set!(
    /// What confirming a link can answer besides 200.
    ConfirmLinkError {
        400 => "The body is not valid JSON; `invalid_token`: the `link_code` is unknown, expired, already used, or of a link another account started",
        401 => "No or a bad access token, or its session ended",
        409 => "`conflict`: the identity was linked to another account meanwhile",
        413 => "The body is larger than 64 KiB",
        415 => "The body is not `application/json`",
        422 => "A field is missing or invalid (all listed in `errors`)",
        429 => "`rate_limited`: too many requests from this IP; see `Retry-After`",
        500 => "Unexpected server error",
        503 => "The database is unavailable",
    }
);

/// Unlink an identity
///
/// Re-authenticates as linking does (`{}` for an account without a password). Never the account's last way
/// in (a password, another identity, a passkey): `409 last_sign_in_method`.
#[api_v2_operation(tags(Users), operation_id = "unlinkMyIdentity")]
pub async fn unlink(
    services: web::Data<Services>,
    client: Client,
    auth: SignedIn,
    id: web::Path<Uuid>,
    body: ApiJson<IdentityUnlinkRequest>,
) -> Result<NoContent, IdentityError> {
    let password = body.0.parse(auth.0.user.has_password)?;
    services
        .unlink_identity(&auth.0, id.into_inner(), password, &client.0)
        .await?;
    Ok(NoContent)
}
