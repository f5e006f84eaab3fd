//! `/api/v1/users/me*`: the current user, their password and their sessions.

use paperclip::actix::{NoContent, api_v2_operation, web};
use securecrud_domain::SessionId;
use securecrud_service::Services;
use uuid::Uuid;

use crate::{
    dto::{
        ChangePasswordRequest, DeleteMeRequest, MfaDisableRequest, RecoveryCodesResponse,
        SessionListResponse, TotpConfirmRequest, TotpEnrolRequest, TotpEnrolmentResponse,
        UpdateMeRequest, UserResponse,
    },
    error::{Problem, error_set},
    extract::{ApiJson, Client, SignedIn},
    handlers::resource,
};

/// `/api/v1/users/me*`. Its writes check a password (or may), so they are under the per-IP auth limit;
/// reads are not counted (see [`crate::middleware::auth_rate_limit`]).
pub fn routes(cfg: &mut web::ServiceConfig<'_>) {
    resource!(cfg, "/users/me", limited, [GET => me, PATCH => update_me, DELETE => delete_me]);
    resource!(cfg, "/users/me/password", limited, [POST => change_password]);
    resource!(cfg, "/users/me/mfa/totp", limited, [POST => start_totp]);
    resource!(cfg, "/users/me/mfa/totp/confirm", limited, [POST => confirm_totp]);
    resource!(cfg, "/users/me/mfa", limited, [DELETE => disable_mfa]);
    resource!(cfg, "/users/me/sessions", [GET => sessions]);
    resource!(cfg, "/users/me/sessions/{id}", [DELETE => revoke_session]);
}

error_set!(
    /// What an authenticated read can answer besides 200.
    SignedInError {
        401 => "No, an invalid, an expired or a revoked access token",
        429 => "`rate_limited`: too many requests from this IP; see `Retry-After`",
        500 => "Unexpected server error",
        503 => "The database is unavailable",
    }
);

error_set!(
    /// What a change to the current user can answer besides success.
    AccountError {
        400 => "The body is not valid JSON",
        401 => "No or a bad access token, a wrong current password or code (`invalid_credentials`); `mfa_required`: with two-factor authentication on, an email change or a deletion needs `code` too",
        409 => "`username_taken` or `email_taken`; `last_admin`: the last active admin cannot delete themself",
        413 => "The body is larger than 64 KiB",
        415 => "The body is not `application/json`",
        422 => "A field breaks its rule (all listed in `errors`)",
        429 => "`rate_limited`: too many requests from this IP; see `Retry-After`",
        500 => "Unexpected server error",
        503 => "The database is unavailable",
    }
);

error_set!(
    /// What a two-factor change can answer besides success.
    MfaError {
        400 => "The body is not valid JSON",
        401 => "No or a bad access token; `invalid_credentials`: a wrong current password or code (counted like a failed login)",
        409 => "`conflict`: two-factor authentication is already on (enrolment), not on (disabling), or no enrolment is waiting for its code (confirmation)",
        413 => "The body is larger than 64 KiB",
        415 => "The body is not `application/json`",
        422 => "A field is missing or invalid (all listed in `errors`)",
        429 => "`rate_limited`: too many requests from this IP, or the account is locked after failed passwords or codes; see `Retry-After`",
        500 => "Unexpected server error",
        503 => "The database is unavailable",
    }
);

/// Start a TOTP enrolment
///
/// Checks `current_password` (counted like a login) and returns a new secret for an authenticator app:
/// `secret` (base32) and `otpauth_uri` (to show as a QR code). Two-factor authentication is not on until
/// the enrolment is confirmed with a code; starting again replaces a pending enrolment.
#[api_v2_operation(tags(Users), operation_id = "startTotpEnrolment")]
pub async fn start_totp(
    services: web::Data<Services>,
    client: Client,
    auth: SignedIn,
    body: ApiJson<TotpEnrolRequest>,
) -> Result<web::Json<TotpEnrolmentResponse>, MfaError> {
    let password = body.0.parse(auth.0.user.has_password)?;
    let enrolment = services
        .start_totp_enrolment(&auth.0, password, &client.0)
        .await?;
    Ok(web::Json(enrolment.into()))
}

/// Confirm the TOTP enrolment
///
/// With a 6-digit code of the secret just shown: two-factor authentication is on from now (every login
/// needs a code), and ten recovery codes are returned, **shown this once** (only their hashes are kept).
/// A wrong code counts like a failed login.
#[api_v2_operation(tags(Users), operation_id = "confirmTotpEnrolment")]
pub async fn confirm_totp(
    services: web::Data<Services>,
    client: Client,
    auth: SignedIn,
    body: ApiJson<TotpConfirmRequest>,
) -> Result<web::Json<RecoveryCodesResponse>, MfaError> {
    let code = body.0.parse()?;
    let recovery_codes = services.confirm_totp(&auth.0, &code, &client.0).await?;
    Ok(web::Json(RecoveryCodesResponse { recovery_codes }))
}

/// Turn two-factor authentication off
///
/// Needs the current password and a code (or a recovery code), counted together like one login attempt.
/// The secret and the recovery codes are deleted.
#[api_v2_operation(tags(Users), operation_id = "disableMfa")]
pub async fn disable_mfa(
    services: web::Data<Services>,
    client: Client,
    auth: SignedIn,
    body: ApiJson<MfaDisableRequest>,
) -> Result<NoContent, MfaError> {
    let (password, code) = body.0.parse()?;
    services
        .disable_mfa(&auth.0, password, &code, &client.0)
        .await?;
    Ok(NoContent)
}

/// The current user
#[api_v2_operation(tags(Users), operation_id = "getMe")]
pub async fn me(
    services: web::Data<Services>,
    auth: SignedIn,
) -> Result<web::Json<UserResponse>, SignedInError> {
    let passkeys = services.passkey_count(&auth.0.user).await?;
    let mut user = UserResponse::from(auth.0.user);
    user.passkeys = Some(passkeys);
    Ok(web::Json(user))
}

/// Update the current user
///
/// `username`: a new name (free case-insensitively; one's own may change letter case); the old one stops
/// working for login. `email`: a new address, with `current_password`; it is then unverified, a verification
/// link goes to it and a notice to the old address, and unused password-reset links stop working.
#[api_v2_operation(tags(Users), operation_id = "updateMe")]
pub async fn update_me(
    services: web::Data<Services>,
    client: Client,
    auth: SignedIn,
    body: ApiJson<UpdateMeRequest>,
) -> Result<web::Json<UserResponse>, AccountError> {
    let change = body.0.parse(auth.0.user.has_password)?;
    let user = services.update_profile(&auth.0, change, &client.0).await?;
    Ok(web::Json(user.into()))
}

/// Change the password
///
/// Checks `current_password`, applies the password rules to `new_password`, and ends every other session of
/// the user (this one stays).
#[api_v2_operation(tags(Users), operation_id = "changePassword")]
pub async fn change_password(
    services: web::Data<Services>,
    client: Client,
    auth: SignedIn,
    body: ApiJson<ChangePasswordRequest>,
) -> Result<NoContent, AccountError> {
    let change = body.0.parse(&auth.0.user)?;
    services.change_password(&auth.0, change, &client.0).await?;
    Ok(NoContent)
}

/// Delete the current user
///
/// Needs the password. Deletes the user with their sessions and tasks.
#[api_v2_operation(tags(Users), operation_id = "deleteMe")]
pub async fn delete_me(
    services: web::Data<Services>,
    client: Client,
    auth: SignedIn,
    body: ApiJson<DeleteMeRequest>,
) -> Result<NoContent, AccountError> {
    let (password, second_factor) = body.0.parse(auth.0.user.has_password)?;
    services
        .delete_account(&auth.0, password, second_factor.as_ref(), &client.0)
        .await?;
    Ok(NoContent)
}

error_set!(
    /// What revoking a session can answer besides 204.
    SessionError {
        401 => "No, an invalid, an expired or a revoked access token",
        404 => "The user has no such live session (another user's session id included)",
        429 => "`rate_limited`: too many requests from this IP; see `Retry-After`",
        500 => "Unexpected server error",
        503 => "The database is unavailable",
    }
);

/// The current user's sessions
///
/// Live sessions only (not logged out, revoked or expired), most recently used first; `current` marks the one
/// of this access token.
#[api_v2_operation(tags(Users), operation_id = "listMySessions")]
pub async fn sessions(
    services: web::Data<Services>,
    auth: SignedIn,
) -> Result<web::Json<SessionListResponse>, SignedInError> {
    let sessions = services.sessions(&auth.0).await?;
    Ok(web::Json(SessionListResponse {
        items: sessions.into_iter().map(Into::into).collect(),
    }))
}

/// End one of the current user's sessions
///
/// Its access and refresh tokens stop working at once. Ending the current session is allowed (like logout).
#[api_v2_operation(tags(Users), operation_id = "revokeMySession")]
pub async fn revoke_session(
    services: web::Data<Services>,
    client: Client,
    auth: SignedIn,
    id: web::Path<Uuid>,
) -> Result<NoContent, SessionError> {
    services
        .revoke_session(&auth.0, SessionId::from_uuid(id.into_inner()), &client.0)
        .await?;
    Ok(NoContent)
}
