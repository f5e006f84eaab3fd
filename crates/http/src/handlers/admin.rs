//! `/api/v1/admin/*`: for users whose role (from the database) is `admin`; everyone else gets 403.

use paperclip::actix::{NoContent, api_v2_operation, web};
use securecrud_domain::{AccountChange, AuditFilter, TaskFilter, UserFilter, UserId};
use securecrud_service::Services;
use uuid::Uuid;

use crate::{
    dto::{
        AdminTaskListParams, AdminUserUpdate, AuditListParams, AuditPageResponse, TaskPageResponse,
        UserListParams, UserPageResponse, UserResponse,
    },
    error::{Problem, error_set},
    extract::{AdminUser, ApiJson, Client, StrictQuery},
    handlers::resource,
};

/// `/api/v1/admin/*`.
pub fn routes(cfg: &mut web::ServiceConfig<'_>) {
    resource!(cfg, "/admin/users", [GET => list_users]);
    resource!(cfg, "/admin/users/{id}", [PATCH => update_user]);
    resource!(cfg, "/admin/users/{id}/unlock", [POST => unlock_user]);
    resource!(cfg, "/admin/users/{id}/sessions", [DELETE => revoke_user_sessions]);
    resource!(cfg, "/admin/users/{id}/mfa/reset", [POST => reset_user_mfa]);
    resource!(cfg, "/admin/tasks", [GET => list_tasks]);
    resource!(cfg, "/admin/audit", [GET => audit]);
}

error_set!(
    /// What an admin route can answer besides success.
    AdminError {
        400 => "The body or query string could not be parsed",
        401 => "No, an invalid, an expired or a revoked access token",
        403 => "The current user is not an admin",
        404 => "No such user",
        409 => "`last_admin`: the change would leave no active admin",
        413 => "The body is larger than 64 KiB",
        415 => "The body is not `application/json`",
        422 => "A field or parameter breaks its rule, or an admin would demote or deactivate themself",
        429 => "`rate_limited`: too many requests from this IP; see `Retry-After`",
        500 => "Unexpected server error",
        503 => "The database is unavailable",
    }
);

/// List and search users
#[api_v2_operation(tags(Admin), operation_id = "adminListUsers")]
pub async fn list_users(
    services: web::Data<Services>,
    _admin: AdminUser,
    query: StrictQuery<UserListParams>,
) -> Result<web::Json<UserPageResponse>, AdminError> {
    let filter = UserFilter::try_from(query.0)?;
    let page = services.list_users(filter).await?;
    Ok(web::Json(page.into()))
}

/// Change a user's role or active flag
///
/// Deactivating a user ends all their sessions at once. An admin cannot demote or deactivate themself.
#[api_v2_operation(tags(Admin), operation_id = "adminUpdateUser")]
pub async fn update_user(
    services: web::Data<Services>,
    client: Client,
    admin: AdminUser,
    id: web::Path<Uuid>,
    body: ApiJson<AdminUserUpdate>,
) -> Result<web::Json<UserResponse>, AdminError> {
    let change = AccountChange::try_from(body.0)?;
    let user = services
        .change_user(
            &admin.0,
            UserId::from_uuid(id.into_inner()),
            change,
            &client.0,
        )
        .await?;
    Ok(web::Json(user.into()))
}

/// List every user's tasks
#[api_v2_operation(tags(Admin), operation_id = "adminListTasks")]
pub async fn list_tasks(
    services: web::Data<Services>,
    _admin: AdminUser,
    query: StrictQuery<AdminTaskListParams>,
) -> Result<web::Json<TaskPageResponse>, AdminError> {
    let filter = TaskFilter::try_from(query.0)?;
    let page = services.list_all_tasks(filter).await?;
    Ok(web::Json(page.into()))
}

/// Clear a user's login lockout
///
/// Forgets the failed logins and locks of the user's username and email: the count starts from zero.
#[api_v2_operation(tags(Admin), operation_id = "adminUnlockUser")]
pub async fn unlock_user(
    services: web::Data<Services>,
    client: Client,
    admin: AdminUser,
    id: web::Path<Uuid>,
) -> Result<NoContent, AdminError> {
    services
        .unlock_user(&admin.0, UserId::from_uuid(id.into_inner()), &client.0)
        .await?;
    Ok(NoContent)
}

/// Reset a user's two-factor authentication
///
/// For a user who lost both their authenticator and their recovery codes: their TOTP secret and recovery
/// codes are deleted (they log in with the password alone until they enrol again) and every session of
/// theirs ends at once. Recorded as `mfa_reset`.
#[api_v2_operation(tags(Admin), operation_id = "adminResetUserMfa")]
pub async fn reset_user_mfa(
    services: web::Data<Services>,
    client: Client,
    admin: AdminUser,
    id: web::Path<Uuid>,
) -> Result<NoContent, AdminError> {
    services
        .reset_mfa(&admin.0, UserId::from_uuid(id.into_inner()), &client.0)
        .await?;
    Ok(NoContent)
}

/// End every session of a user
///
/// All their access and refresh tokens stop working at once; the account stays active (to lock someone out,
/// deactivate them). Recorded as `sessions_revoked`.
#[api_v2_operation(tags(Admin), operation_id = "adminRevokeUserSessions")]
pub async fn revoke_user_sessions(
    services: web::Data<Services>,
    client: Client,
    admin: AdminUser,
    id: web::Path<Uuid>,
) -> Result<NoContent, AdminError> {
    services
        .revoke_user_sessions(&admin.0, UserId::from_uuid(id.into_inner()), &client.0)
        .await?;
    Ok(NoContent)
}

/// Read the audit trail
///
/// Newest first. Filters: `user_id` (as actor or subject), `type`, `since` (inclusive) and `until`
/// (exclusive). Page with `cursor` = the previous page's `next_cursor`: pages never repeat or skip events,
/// even while new ones are recorded.
#[api_v2_operation(tags(Admin), operation_id = "adminListAudit")]
pub async fn audit(
    services: web::Data<Services>,
    _admin: AdminUser,
    query: StrictQuery<AuditListParams>,
) -> Result<web::Json<AuditPageResponse>, AdminError> {
    let filter = AuditFilter::try_from(query.0)?;
    let page = services.audit_events(&filter).await?;
    Ok(web::Json(page.into()))
}
