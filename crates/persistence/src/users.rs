//! The users repository.

use anyhow::Context;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, Condition, EntityTrait, ExprTrait,
    PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, sea_query::Expr,
};
use securecrud_domain::{
    AccountChange, ConflictField, Email, Page, Role, SessionId, User, UserFilter, UserId, Username,
};
use time::OffsetDateTime;

use securecrud_migration::{USERS_EMAIL_UNIQUE, USERS_USERNAME_UNIQUE, UniqueIndex};

use crate::{
    Conn, Database, RepoError, Transaction, connect::Effect, entity::users, error::unique_conflict,
    session_cache::Stale, tasks::contains_pattern,
};

/// Changes to a user's own profile; `None` leaves a field as it is.
#[derive(Debug, Default)]
pub struct ProfileChange {
    pub username: Option<Username>,
    pub email: Option<Email>,
}

/// What `users.password_hash` holds for an account without a password (one made by an OpenID Connect
/// provider): like a locked entry in `/etc/shadow`, no bcrypt hash can be `!`.
pub(crate) const NO_PASSWORD: &str = "!";

/// A user to insert: validated fields and the bcrypt hash of their password (which `Debug` leaves out);
/// `None`: an account without a password.
pub struct NewUserRecord {
    pub username: Username,
    pub email: Email,
    pub password_hash: Option<String>,
    pub role: Role,
}

impl std::fmt::Debug for NewUserRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewUserRecord")
            .field("username", &self.username)
            .field("email", &self.email)
            .field("role", &self.role)
            .finish_non_exhaustive()
    }
}

/// A user together with their password hash, for login only (`None`: the account has no password).
pub struct UserCredentials {
    pub user: User,
    pub password_hash: Option<String>,
}

impl std::fmt::Debug for UserCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserCredentials")
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
}

impl<C: Conn> Database<C> {
    /// Inserts a new user.
    ///
    /// # Errors
    /// [`RepoError::Conflict`] when the username (case-insensitively) or the email is taken.
    pub async fn insert_user(&self, new: NewUserRecord) -> Result<User, RepoError> {
        let write = self.write(Effect::Unseen).await?;
        let model = new_user_model(UserId::new(), new, self.now())
            .insert(&write)
            .await
            .map_err(|err| unique_conflict(err, &USER_UNIQUES))?;
        to_user(model)
    }

    /// Finds a user by username or email, case-insensitively, with their password hash.
    ///
    /// # Errors
    /// [`RepoError::Unavailable`] or [`RepoError::Unexpected`] when the query fails.
    pub async fn find_credentials_by_login(
        &self,
        login: &str,
    ) -> Result<Option<UserCredentials>, RepoError> {
        // Usernames cannot contain '@' and emails must, so one indexed column decides.
        let normalized = login.to_lowercase();
        let column = if normalized.contains('@') {
            users::Column::Email
        } else {
            users::Column::UsernameNormalized
        };
        users::Entity::find()
            .filter(column.eq(normalized))
            .one(&self.read())
            .await?
            .map(to_credentials)
            .transpose()
    }

    /// A user by id with their password hash.
    ///
    /// # Errors
    /// [`RepoError::Unavailable`] or [`RepoError::Unexpected`] when the query fails.
    pub async fn find_credentials_by_id(
        &self,
        id: UserId,
    ) -> Result<Option<UserCredentials>, RepoError> {
        users::Entity::find_by_id(id.as_uuid())
            .one(&self.read())
            .await?
            .map(to_credentials)
            .transpose()
    }

    /// A user by id.
    ///
    /// # Errors
    /// [`RepoError::Unavailable`] or [`RepoError::Unexpected`] when the query fails.
    pub async fn find_user(&self, id: UserId) -> Result<Option<User>, RepoError> {
        users::Entity::find_by_id(id.as_uuid())
            .one(&self.read())
            .await?
            .map(to_user)
            .transpose()
    }

    /// Applies a profile change. A new email (other than the current one) is unverified.
    ///
    /// # Errors
    /// [`RepoError::Conflict`] when the new username or email belongs to someone else;
    /// [`RepoError::Unexpected`] if the user does not exist.
    pub async fn update_profile(
        &self,
        id: UserId,
        change: ProfileChange,
    ) -> Result<User, RepoError> {
        let write = self.write(Effect::Stale(Stale::User(id))).await?;
        let model = users::Entity::find_by_id(id.as_uuid())
            .one(&write)
            .await?
            .with_context(|| format!("user {id} vanished during a profile update"))?;
        let username_changes = change
            .username
            .as_ref()
            .is_some_and(|u| u.as_str() != model.username);
        let email_changes = change
            .email
            .as_ref()
            .is_some_and(|e| e.as_str() != model.email);
        if !username_changes && !email_changes {
            return to_user(model);
        }
        let mut active: users::ActiveModel = model.into();
        if let Some(username) = change.username.filter(|_| username_changes) {
            active.username_normalized = Set(username.normalized());
            active.username = Set(username.as_str().to_owned());
        }
        if let Some(email) = change.email.filter(|_| email_changes) {
            active.email = Set(email.as_str().to_owned());
            active.email_verified = Set(false);
        }
        active.updated_at = Set(self.now());
        let model = active
            .update(&write)
            .await
            .map_err(|err| unique_conflict(err, &USER_UNIQUES))?;
        to_user(model)
    }

    /// Deletes a user; their sessions, tasks, tokens and outbox-free data go with them (foreign keys cascade).
    ///
    /// # Errors
    /// [`RepoError::Unavailable`] or [`RepoError::Unexpected`] when the delete fails.
    pub async fn delete_user(&self, id: UserId) -> Result<bool, RepoError> {
        let write = self.write(Effect::Stale(Stale::User(id))).await?;
        let result = users::Entity::delete_many()
            .filter(users::Column::Id.eq(id.as_uuid()))
            .exec(&write)
            .await?;
        Ok(result.rows_affected > 0)
    }

    /// One page of the users matching `filter` (oldest first), and how many match in all.
    ///
    /// # Errors
    /// [`RepoError::Unavailable`] or [`RepoError::Unexpected`] when a query fails.
    pub async fn list_users(&self, filter: &UserFilter) -> Result<Page<User>, RepoError> {
        let mut condition = Condition::all();
        if let Some(q) = &filter.q {
            let pattern = contains_pattern(q);
            condition = condition.add(
                Condition::any()
                    .add(Expr::col(users::Column::UsernameNormalized).like(pattern.clone()))
                    .add(Expr::col(users::Column::Email).like(pattern)),
            );
        }
        if let Some(role) = filter.role {
            condition = condition.add(users::Column::Role.eq(role.as_str()));
        }
        let query = users::Entity::find().filter(condition);
        let total = query.clone().count(&self.read()).await?;
        let items = query
            .order_by_asc(users::Column::CreatedAt)
            .order_by_asc(users::Column::Id)
            .limit(filter.paging.limit())
            .offset(filter.paging.offset())
            .all(&self.read())
            .await?
            .into_iter()
            .map(to_user)
            .collect::<Result<_, _>>()?;
        Ok(Page {
            items,
            total,
            limit: filter.paging.limit(),
            offset: filter.paging.offset(),
        })
    }

    /// Replaces a user's password hash (after a cost change).
    ///
    /// # Errors
    /// [`RepoError::Unavailable`] or [`RepoError::Unexpected`] when the update fails.
    pub async fn update_password_hash(&self, id: UserId, hash: String) -> Result<(), RepoError> {
        let write = self.write(Effect::Unseen).await?;
        users::Entity::update_many()
            .col_expr(
                users::Column::PasswordHash,
                sea_orm::sea_query::Expr::value(hash),
            )
            .filter(users::Column::Id.eq(id.as_uuid()))
            .exec(&write)
            .await?;
        Ok(())
    }
}

impl Transaction {
    /// Sets a new password hash and revokes every session of the user but `keep`, in this transaction.
    /// Returns how many sessions it ended.
    ///
    /// # Errors
    /// [`RepoError::Unavailable`] or [`RepoError::Unexpected`] when a statement fails.
    pub async fn change_password(
        &self,
        id: UserId,
        hash: String,
        keep: Option<SessionId>,
    ) -> Result<u64, RepoError> {
        // `updated_at` is part of a cached check's user.
        users::Entity::update_many()
            .col_expr(users::Column::PasswordHash, Expr::value(hash))
            .col_expr(users::Column::UpdatedAt, Expr::value(self.now()))
            .filter(users::Column::Id.eq(id.as_uuid()))
            .exec(&self.write(Effect::Stale(Stale::User(id))).await?)
            .await?;
        let ended = self.revoke_user_sessions(id, keep).await?;
        Ok(ended)
    }

    /// Whether `id` is the only active admin, locking every active admin's row until this transaction ends
    /// (PostgreSQL `FOR UPDATE`, in id order so that concurrent callers queue instead of deadlocking; on
    /// SQLite this transaction already holds the write lock), so each caller sees the changes committed
    /// before it.
    ///
    /// # Errors
    /// [`RepoError::Unavailable`] or [`RepoError::Unexpected`] when the query fails.
    pub async fn is_last_active_admin(&self, id: UserId) -> Result<bool, RepoError> {
        let admins: Vec<uuid::Uuid> = users::Entity::find()
            .select_only()
            .column(users::Column::Id)
            .filter(users::Column::Role.eq(Role::Admin.as_str()))
            .filter(users::Column::IsActive.eq(true))
            .order_by_asc(users::Column::Id)
            .lock_exclusive()
            .into_tuple()
            .all(&self.read())
            .await?;
        Ok(admins == [id.as_uuid()])
    }

    /// Changes a user's role and/or active flag; deactivating also revokes every session of the user, in the
    /// same transaction (this one).
    ///
    /// The last active admin is never demoted or deactivated, however many admins try at once (see
    /// [`Transaction::is_last_active_admin`]).
    ///
    /// # Errors
    /// [`RepoError::Unavailable`] or [`RepoError::Unexpected`] when a statement fails.
    pub async fn change_account(
        &self,
        id: UserId,
        change: AccountChange,
    ) -> Result<AccountChanged, RepoError> {
        let removes_admin =
            change.role.is_some_and(|role| role != Role::Admin) || change.is_active == Some(false);
        if removes_admin && self.is_last_active_admin(id).await? {
            return Ok(AccountChanged::LastAdmin);
        }
        let write = self.write(Effect::Stale(Stale::User(id))).await?;
        let mut update = users::Entity::update_many()
            .col_expr(users::Column::UpdatedAt, Expr::value(self.now()))
            .filter(users::Column::Id.eq(id.as_uuid()));
        if let Some(role) = change.role {
            update = update.col_expr(users::Column::Role, Expr::value(role.as_str()));
        }
        if let Some(active) = change.is_active {
            update = update.col_expr(users::Column::IsActive, Expr::value(active));
        }
        let Some(model) = update.exec_with_returning(&write).await?.pop() else {
            return Ok(AccountChanged::NoSuchUser);
        };
        if change.is_active == Some(false) {
            self.revoke_user_sessions(id, None).await?;
        }
        to_user(model).map(AccountChanged::Changed)
    }
}

/// What [`Transaction::change_account`] did.
#[derive(Debug)]
pub enum AccountChanged {
    Changed(User),
    NoSuchUser,
    /// Refused: the user is the last active admin.
    LastAdmin,
}

/// The unique indexes a write of a user can collide on, and the field a client is told is taken.
pub(crate) const USER_UNIQUES: [(UniqueIndex, ConflictField); 2] = [
    (USERS_USERNAME_UNIQUE, ConflictField::Username),
    (USERS_EMAIL_UNIQUE, ConflictField::Email),
];

/// The row of a new user: not verified, active, created and updated `at`.
pub(crate) fn new_user_model(
    id: UserId,
    new: NewUserRecord,
    at: OffsetDateTime,
) -> users::ActiveModel {
    users::ActiveModel {
        id: Set(id.as_uuid()),
        username_normalized: Set(new.username.normalized()),
        username: Set(new.username.as_str().to_owned()),
        email: Set(new.email.as_str().to_owned()),
        password_hash: Set(new.password_hash.unwrap_or_else(|| NO_PASSWORD.to_owned())),
        role: Set(new.role.as_str().to_owned()),
        email_verified: Set(false),
        is_active: Set(true),
        mfa_enabled: Set(false),
        created_at: Set(at),
        updated_at: Set(at),
    }
}

fn to_credentials(model: users::Model) -> Result<UserCredentials, RepoError> {
    let password_hash = Some(model.password_hash.clone()).filter(|hash| hash != NO_PASSWORD);
    Ok(UserCredentials {
        user: to_user(model)?,
        password_hash,
    })
}

/// Converts a stored row into a domain user; a row that breaks the domain rules is corrupt data.
pub(crate) fn to_user(model: users::Model) -> Result<User, RepoError> {
    let context = || format!("user {} holds invalid data", model.id);
    Ok(User {
        id: UserId::from_uuid(model.id),
        username: Username::parse(&model.username)
            .map_err(|e| anyhow::anyhow!(e.0))
            .with_context(context)?,
        email: Email::parse(&model.email)
            .map_err(|e| anyhow::anyhow!(e.0))
            .with_context(context)?,
        role: model
            .role
            .parse::<Role>()
            .map_err(|e| anyhow::anyhow!(e.0))
            .with_context(context)?,
        email_verified: model.email_verified,
        is_active: model.is_active,
        mfa_enabled: model.mfa_enabled,
        has_password: model.password_hash != NO_PASSWORD,
        created_at: model.created_at,
        updated_at: model.updated_at,
    })
}
