//! Admin use cases: listing users, changing roles and active flags, creating the first admin.
//!
//! The role check itself is the HTTP layer's `AdminUser` extractor (the role comes from the database on every
//! request). Here are the rules that need the data: an admin cannot demote or deactivate themself (so the last
//! admin cannot lock everyone out by accident), and deactivation ends the user's sessions at once.

use securecrud_domain::{
    NewUser, Page, Role, User, UserFilter, UserId, Username, ValidationErrors,
};
use securecrud_persistence::AccountChange;

use crate::{CurrentSession, ServiceError, Services};

/// What promoting a user to admin did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Promotion {
    Promoted,
    AlreadyAdmin,
}

impl Services {
    /// # Errors
    /// [`ServiceError::Unavailable`] or [`ServiceError::Unexpected`] when the database fails.
    pub async fn list_users(&self, filter: UserFilter) -> Result<Page<User>, ServiceError> {
        Ok(self.inner.db.list_users(&filter).await?)
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
        let user = self
            .inner
            .db
            .change_account(id, change)
            .await?
            .ok_or(ServiceError::NotFound)?;
        log::info!(
            admin_id:% = admin.user.id, user_id:% = id, role = user.role.as_str(), is_active = user.is_active;
            "user changed by an admin"
        );
        Ok(user)
    }

    /// Makes the user named `username` an admin. `None` when there is no such user.
    ///
    /// # Errors
    /// [`ServiceError::Unavailable`] or [`ServiceError::Unexpected`] when the database fails.
    pub async fn promote_to_admin(
        &self,
        username: &Username,
    ) -> Result<Option<Promotion>, ServiceError> {
        let db = &self.inner.db;
        let Some(user) = db
            .find_credentials_by_login(username.as_str())
            .await?
            .map(|c| c.user)
        else {
            return Ok(None);
        };
        if user.role == Role::Admin {
            return Ok(Some(Promotion::AlreadyAdmin));
        }
        let change = AccountChange {
            role: Some(Role::Admin),
            is_active: None,
        };
        db.change_account(user.id, change).await?;
        log::info!(user_id:% = user.id; "user promoted to admin");
        Ok(Some(Promotion::Promoted))
    }

    /// Creates an admin account: registration's rules and hashing, with the `admin` role.
    ///
    /// # Errors
    /// [`ServiceError::Conflict`] when the username or email is taken.
    pub async fn create_admin(&self, new: NewUser) -> Result<User, ServiceError> {
        let user = self.insert_user(new, Role::Admin).await?;
        log::info!(user_id:% = user.id; "admin created");
        Ok(user)
    }
}
