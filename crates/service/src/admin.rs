//! Admin use cases: listing users, changing roles and active flags, creating the first admin.
//!
//! The role check itself is the HTTP layer's `AdminUser` extractor (the role comes from the database on every
//! request). Here are the rules that need the data: an admin cannot demote or deactivate themself (so the last
//! admin cannot lock everyone out by accident), and deactivation ends the user's sessions at once.

use securecrud_domain::{
    AccountChange, AuditKind, Email, NewUser, Page, Role, User, UserFilter, UserId, Username,
    ValidationErrors,
};
use securecrud_persistence::{AccountChanged, NewAuditEvent};
use serde_json::json;

use crate::{ClientInfo, CurrentSession, ServiceError, Services, audit::event};

/// What promoting a user to admin did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Promotion {
    Promoted,
    AlreadyAdmin,
    /// A user has that username, but another email: refused (whoever registers a name first must not
    /// become admin because an operator typed it).
    EmailMismatch,
    /// The username and email match, but the email is not verified: anyone can register an address they
    /// do not own, so only a verified one proves the account is the one meant.
    EmailNotVerified,
}

impl Services {
    /// # Errors
    /// [`ServiceError::Unavailable`] or [`ServiceError::Unexpected`] when the database fails.
    pub async fn list_users(&self, filter: UserFilter) -> Result<Page<User>, ServiceError> {
        Ok(self.db.list_users(&filter).await?)
    }

    /// Changes a user's role and/or active flag.
    ///
    /// # Errors
    /// [`ServiceError::Validation`] when an admin would demote or deactivate themself;
    /// [`ServiceError::NotFound`] when there is no such user.
    pub async fn change_user(
        &self,
        admin: &CurrentSession,
        id: UserId,
        change: AccountChange,
        client: &ClientInfo,
    ) -> Result<User, ServiceError> {
        if id == admin.user.id {
            let mut errors = ValidationErrors::default();
            if change.role.is_some_and(|role| role != Role::Admin) {
                errors.push("role", "an admin cannot demote themself");
            }
            if change.is_active == Some(false) {
                errors.push("is_active", "an admin cannot deactivate themself");
            }
            if !errors.is_empty() {
                return Err(errors.into());
            }
        }
        let tx = self.db.begin().await?;
        let before = tx.find_user(id).await?.ok_or(ServiceError::NotFound)?;
        let user = match tx.change_account(id, change).await? {
            AccountChanged::Changed(user) => user,
            AccountChanged::NoSuchUser => return Err(ServiceError::NotFound),
            AccountChanged::LastAdmin => return Err(ServiceError::LastAdmin),
        };
        for audit in account_events(&before, &user, client, Some(admin.user.id)) {
            tx.record_audit(audit).await?;
        }
        tx.commit().await?;
        log::info!(
            admin_id:% = admin.user.id, user_id:% = id, role = user.role.as_str(), is_active = user.is_active;
            "user changed by an admin"
        );
        Ok(user)
    }

    /// Makes the user named `username` an admin if their email is `email` too and verified. `None` when there
    /// is no such user.
    ///
    /// # Errors
    /// [`ServiceError::Unavailable`] or [`ServiceError::Unexpected`] when the database fails.
    pub async fn promote_to_admin(
        &self,
        username: &Username,
        email: &Email,
    ) -> Result<Option<Promotion>, ServiceError> {
        let db = &self.db;
        let Some(user) = db
            .find_credentials_by_login(&username.normalized())
            .await?
            .map(|c| c.user)
        else {
            return Ok(None);
        };
        if user.email != *email {
            return Ok(Some(Promotion::EmailMismatch));
        }
        if !user.email_verified {
            return Ok(Some(Promotion::EmailNotVerified));
        }
        if user.role == Role::Admin {
            return Ok(Some(Promotion::AlreadyAdmin));
        }
        let change = AccountChange {
            role: Some(Role::Admin),
            is_active: None,
        };
        let tx = db.begin().await?;
        if let AccountChanged::Changed(promoted) = tx.change_account(user.id, change).await? {
            for audit in account_events(&user, &promoted, &ClientInfo::default(), None) {
                tx.record_audit(audit).await?;
            }
        }
        tx.commit().await?;
        log::info!(user_id:% = user.id; "user promoted to admin");
        Ok(Some(Promotion::Promoted))
    }

    /// Creates an admin account: registration's rules and hashing, with the `admin` role.
    ///
    /// # Errors
    /// [`ServiceError::Conflict`] when the username or email is taken.
    pub async fn create_admin(&self, new: NewUser) -> Result<User, ServiceError> {
        let details = json!({ "role": Role::Admin.as_str(), "via": "create-admin" });
        let user = self
            .insert_user(new, Role::Admin, &ClientInfo::default(), details)
            .await?;
        log::info!(user_id:% = user.id; "admin created");
        Ok(user)
    }

    /// Clears the login lockout of a user's username and email: their failure counts start from zero.
    ///
    /// # Errors
    /// [`ServiceError::NotFound`] when there is no such user.
    pub async fn unlock_user(
        &self,
        admin: &CurrentSession,
        id: UserId,
        client: &ClientInfo,
    ) -> Result<(), ServiceError> {
        let tx = self.db.begin().await?;
        let user = tx.find_user(id).await?.ok_or(ServiceError::NotFound)?;
        let identifiers = [user.username.normalized(), user.email.as_str().to_owned()];
        let cleared = tx.clear_login_failures(&identifiers).await?;
        tx.record_audit(event(
            AuditKind::UserUnlocked,
            client,
            Some(admin.user.id),
            Some(id),
            json!({ "cleared": cleared }),
        ))
        .await?;
        tx.commit().await?;
        log::info!(admin_id:% = admin.user.id, user_id:% = id; "login lockout cleared by an admin");
        Ok(())
    }
}

impl Services {
    /// Ends every live session of user `id` at once (the account stays active); records `sessions_revoked`.
    ///
    /// # Errors
    /// [`ServiceError::NotFound`] when there is no such user.
    pub async fn revoke_user_sessions(
        &self,
        admin: &CurrentSession,
        id: UserId,
        client: &ClientInfo,
    ) -> Result<(), ServiceError> {
        let tx = self.db.begin().await?;
        tx.find_user(id).await?.ok_or(ServiceError::NotFound)?;
        let ended = tx.revoke_user_sessions(id, None).await?;
        tx.record_audit(event(
            AuditKind::SessionsRevoked,
            client,
            Some(admin.user.id),
            Some(id),
            json!({ "sessions_ended": ended }),
        ))
        .await?;
        tx.commit().await?;
        log::info!(admin_id:% = admin.user.id, user_id:% = id, ended; "sessions ended by an admin");
        Ok(())
    }
}

/// The audit events of an account change from `before` to `after`: `role_changed`, `user_activated`,
/// `user_deactivated`, one per field that changed.
fn account_events(
    before: &User,
    after: &User,
    client: &ClientInfo,
    actor: Option<UserId>,
) -> Vec<NewAuditEvent> {
    let mut events = Vec::new();
    if before.role != after.role {
        events.push(event(
            AuditKind::RoleChanged,
            client,
            actor,
            Some(after.id),
            json!({ "from": before.role.as_str(), "to": after.role.as_str() }),
        ));
    }
    if before.is_active != after.is_active {
        let kind = if after.is_active {
            AuditKind::UserActivated
        } else {
            AuditKind::UserDeactivated
        };
        events.push(event(kind, client, actor, Some(after.id), json!({})));
    }
    events
}
