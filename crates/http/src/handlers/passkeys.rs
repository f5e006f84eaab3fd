//! Passkeys (WebAuthn): `/api/v1/users/me/passkeys*` for the signed-in user, `/api/v1/auth/passkey/*` for a
//! passwordless login, and `/api/v1/auth/mfa/passkey/options` for a password login's second step.

use actix_web::HttpRequest;
use paperclip::actix::{NoContent, api_v2_operation, web};
use securecrud_service::Services;
use uuid::Uuid;

use crate::{
    browser::{BrowserSessions, SessionMode},
    dto::{
        MfaPasskeyOptions, MfaPasskeyOptionsRequest, PasskeyDeleteRequest, PasskeyListResponse,
        PasskeyLoginOptions, PasskeyLoginOptionsRequest, PasskeyLoginRequest,
        PasskeyOptionsRequest, PasskeyRegisterRequest, PasskeyRegistrationOptions,
        PasskeyRenameRequest, PasskeyResponse, RegisteredPasskeyResponse,
    },
    error::{Problem, error_set},
    extract::{ApiJson, Client, SignedIn},
    handlers::{resource, users::SignedInError},
    respond::{Created, Tokens},
};

/// The passkey routes. Every one checks a password, a signature or hands out a challenge, so each is under
/// the per-IP auth limit.
pub fn routes(cfg: &mut web::ServiceConfig<'_>) {
    resource!(cfg, "/users/me/passkeys/options", limited, [POST => start_registration]);
    resource!(cfg, "/users/me/passkeys", limited, [GET => list, POST => register]);
    resource!(cfg, "/users/me/passkeys/{id}", limited, [PATCH => rename, DELETE => delete]);
    resource!(cfg, "/auth/passkey/options", limited, [POST => login_options]);
    resource!(cfg, "/auth/passkey/verify", limited, [POST => login]);
    resource!(cfg, "/auth/mfa/passkey/options", limited, [POST => second_step_options]);
}

error_set!(
    /// What the signed-in user's passkey routes can answer besides success.
    PasskeyError {
        400 => "The body is not valid JSON; `invalid_token`: the `registration_id` is unknown, expired or already used",
        401 => "No or a bad access token; `invalid_credentials`: a wrong current password (counted like a failed login), or a wrong second factor; `mfa_required`: with two-factor authentication on, registering or deleting a passkey needs `code` or `passkey` too",
        404 => "The user has no such passkey",
        409 => "`conflict`: this credential is registered already",
        413 => "The body is larger than 64 KiB",
        415 => "The body is not `application/json`",
        422 => "A field is missing or invalid (all listed in `errors`); `credential` did not verify (origin, RP ID, challenge, user verification)",
        429 => "`rate_limited`: too many requests from this IP, or the account is locked after failed passwords; see `Retry-After`",
        500 => "Unexpected server error",
        503 => "The database is unavailable",
    }
);

/// Start registering a passkey
///
/// Checks `current_password` (counted like a login) and, with two-factor authentication on, a second factor
/// (`code` or `passkey`, as for an email change), and returns the options for
/// `navigator.credentials.create` (WebAuthn Level 3 JSON, for `PublicKeyCredential.parseCreationOptionsFromJSON`):
/// a discoverable credential with user verification, attestation `none`, the user's passkeys excluded. Send
/// the credential with `registration_id` (single use, 5 minutes) to `POST /api/v1/users/me/passkeys`.
#[api_v2_operation(tags(Passkeys), operation_id = "startPasskeyRegistration")]
pub async fn start_registration(
    services: web::Data<Services>,
    client: Client,
    auth: SignedIn,
    body: ApiJson<PasskeyOptionsRequest>,
) -> Result<web::Json<PasskeyRegistrationOptions>, PasskeyError> {
    let (password, second_factor) = body.0.parse(auth.0.user.has_password)?;
    let options = services
        .start_passkey_registration(&auth.0, password, second_factor.as_ref(), &client.0)
        .await?;
    Ok(web::Json(options.into()))
}

/// Register a passkey
///
/// With the `registration_id` of the options and what `credential.toJSON()` returns. The credential must
/// answer that ceremony (challenge, origin, RP ID) with user verification. The account's first second factor
/// turns two-factor authentication on: the answer then carries ten `recovery_codes`, shown this once, and
/// the account's other sessions end.
#[api_v2_operation(tags(Passkeys), operation_id = "registerPasskey")]
pub async fn register(
    services: web::Data<Services>,
    client: Client,
    auth: SignedIn,
    body: ApiJson<PasskeyRegisterRequest>,
) -> Result<Created<RegisteredPasskeyResponse>, PasskeyError> {
    let (registration_id, credential, name) = body.0.parse()?;
    let registered = services
        .finish_passkey_registration(&auth.0, &registration_id, &credential, name, &client.0)
        .await?;
    let location = format!("/api/v1/users/me/passkeys/{}", registered.passkey.id);
    Ok(Created::at(location, registered.into()))
}

/// The current user's passkeys
///
/// Oldest first.
#[api_v2_operation(tags(Passkeys), operation_id = "listPasskeys")]
pub async fn list(
    services: web::Data<Services>,
    auth: SignedIn,
) -> Result<web::Json<PasskeyListResponse>, SignedInError> {
    let passkeys = services.passkeys(auth.0.user.id).await?;
    Ok(web::Json(PasskeyListResponse {
        items: passkeys.into_iter().map(PasskeyResponse::from).collect(),
    }))
}

/// Rename a passkey
#[api_v2_operation(tags(Passkeys), operation_id = "renamePasskey")]
pub async fn rename(
    services: web::Data<Services>,
    auth: SignedIn,
    id: web::Path<Uuid>,
    body: ApiJson<PasskeyRenameRequest>,
) -> Result<web::Json<PasskeyResponse>, PasskeyError> {
    let name = body.0.parse()?;
    let passkey = services
        .rename_passkey(&auth.0, id.into_inner(), &name)
        .await?;
    Ok(web::Json(passkey.into()))
}

/// Delete a passkey
///
/// Needs the current password and a second factor (`code`, or `passkey`: this one will do). Removing the
/// account's last second factor turns two-factor authentication off (its recovery codes are deleted too).
#[api_v2_operation(tags(Passkeys), operation_id = "deletePasskey")]
pub async fn delete(
    services: web::Data<Services>,
    client: Client,
    auth: SignedIn,
    id: web::Path<Uuid>,
    body: ApiJson<PasskeyDeleteRequest>,
) -> Result<NoContent, PasskeyError> {
    let (password, second_factor) = body.0.parse(auth.0.user.has_password)?;
    services
        .delete_passkey(
            &auth.0,
            id.into_inner(),
            password,
            second_factor.as_ref(),
            &client.0,
        )
        .await?;
    Ok(NoContent)
}

error_set!(
    /// What starting a passkey login can answer besides 200.
    PasskeyOptionsError {
        400 => "The body is not valid JSON",
        413 => "The body is larger than 64 KiB",
        415 => "The body is not `application/json`",
        422 => "The body is not an empty object",
        429 => "`rate_limited`: too many requests from this IP; see `Retry-After`",
        500 => "Unexpected server error",
        503 => "The database is unavailable",
    }
);

/// Start a passkey login
///
/// No username: the options (for `PublicKeyCredential.parseRequestOptionsFromJSON`) have an empty
/// `allowCredentials`, so the browser offers the passkeys it holds for this site and nothing can be
/// enumerated. Send the assertion with `challenge_id` (single use, 5 minutes) to
/// `POST /api/v1/auth/passkey/verify`.
#[api_v2_operation(tags(Auth), operation_id = "startPasskeyLogin")]
pub async fn login_options(
    services: web::Data<Services>,
    _body: ApiJson<PasskeyLoginOptionsRequest>,
) -> Result<web::Json<PasskeyLoginOptions>, PasskeyOptionsError> {
    let options = services.start_passkey_login().await?;
    Ok(web::Json(options.into()))
}

error_set!(
    /// What a passkey login can answer besides 200.
    PasskeyLoginError {
        400 => "The body is not valid JSON; `invalid_token`: the `challenge_id` is unknown, expired or already used",
        401 => "`invalid_credentials`: the assertion did not verify (unknown credential, bad signature, wrong origin, RP ID or challenge, no user verification, a signature counter that went backwards); nothing was issued",
        403 => "The account is deactivated, or `email_not_verified`; with `session: \"cookie\"`, no `X-Requested-With: securecrud` or an origin that is not allowed",
        413 => "The body is larger than 64 KiB",
        415 => "The body is not `application/json`",
        422 => "A field is missing or invalid (all listed in `errors`)",
        429 => "`rate_limited`: too many requests from this IP; see `Retry-After`",
        500 => "Unexpected server error",
        503 => "The database is unavailable",
    }
);

/// Log in with a passkey
///
/// With the `challenge_id` of the options and what `credential.toJSON()` returns for the assertion. A passkey
/// is two factors on its own (held, and unlocked with a PIN or biometric): the session opens at once, as a
/// login's does (`session: "cookie"` too). A lock from failed passwords does not apply.
#[api_v2_operation(tags(Auth), operation_id = "passkeyLogin")]
pub async fn login(
    services: web::Data<Services>,
    browser: web::Data<BrowserSessions>,
    req: HttpRequest,
    client: Client,
    body: ApiJson<PasskeyLoginRequest>,
) -> Result<Tokens, PasskeyLoginError> {
    let (challenge_id, credential, mode) = body.0.parse()?;
    if mode == SessionMode::Cookie {
        browser.check_csrf(&req)?;
    }
    let pair = services
        .finish_passkey_login(&challenge_id, &credential, &client.0)
        .await?;
    Ok(Tokens::new(pair, mode))
}

error_set!(
    /// What the options of a second step with a passkey can answer besides 200.
    SecondStepOptionsError {
        400 => "The body is not valid JSON",
        401 => "`invalid_token`: the `mfa_token` is unknown, expired or already used",
        409 => "`conflict`: the account has no passkey",
        413 => "The body is larger than 64 KiB",
        415 => "The body is not `application/json`",
        422 => "A field is missing or invalid (all listed in `errors`)",
        429 => "`rate_limited`: too many requests from this IP; see `Retry-After`",
        500 => "Unexpected server error",
        503 => "The database is unavailable",
    }
);

/// Options for a second step with a passkey
///
/// With the `mfa_token` of a login's `401 mfa_required` answer: options for `navigator.credentials.get`
/// allowing the account's passkeys. Send the assertion as `passkey` (with the `mfa_token`) to
/// `POST /api/v1/auth/mfa/verify`. Asking again replaces the challenge.
#[api_v2_operation(tags(Auth), operation_id = "startPasskeySecondStep")]
pub async fn second_step_options(
    services: web::Data<Services>,
    body: ApiJson<MfaPasskeyOptionsRequest>,
) -> Result<web::Json<MfaPasskeyOptions>, SecondStepOptionsError> {
    let mfa_token = body.0.parse()?;
    let public_key = services.start_passkey_second_step(&mfa_token).await?;
    Ok(web::Json(MfaPasskeyOptions::new(public_key)))
}
