//! The sessions repository.

use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, QuerySelect,
    RelationTrait, sea_query::JoinType,
};
use securecrud_domain::{SessionId, User, UserId};
use time::OffsetDateTime;

use crate::{
    Database, RepoError,
    entity::{sessions, users},
    now,
    users::to_user,
};

/// A session to open at login.
#[derive(Debug)]
pub struct NewSession {
    pub id: SessionId,
    pub user_id: UserId,
    /// SHA-256 (hex) of the refresh token; the token itself is never stored.
    pub refresh_hash: String,
    pub user_agent: Option<String>,
    pub ip: Option<String>,
    pub expires_at: OffsetDateTime,
}

impl Database {
    /// Opens a session.
    ///
    /// # Errors
    /// [`RepoError::Unavailable`] or [`RepoError::Unexpected`] when the insert fails.
    pub async fn insert_session(&self, new: NewSession) -> Result<(), RepoError> {
        let at = now();
        sessions::ActiveModel {
            id: Set(new.id.as_uuid()),
            user_id: Set(new.user_id.as_uuid()),
            refresh_hash: Set(new.refresh_hash),
            user_agent: Set(new.user_agent),
            ip: Set(new.ip),
            created_at: Set(at),
            last_used_at: Set(at),
            expires_at: Set(new.expires_at),
            revoked_at: Set(None),
        }
        .insert(&self.conn)
        .await?;
        Ok(())
    }

    /// The user of a live session, in one indexed query: the session exists, belongs to `user_id`, is neither
    /// revoked nor expired, and its user is active. `None` otherwise.
    ///
    /// # Errors
    /// [`RepoError::Unavailable`] or [`RepoError::Unexpected`] when the query fails.
    pub async fn find_session_user(
        &self,
        session_id: SessionId,
        user_id: UserId,
    ) -> Result<Option<User>, RepoError> {
        let model = users::Entity::find()
            .join(JoinType::InnerJoin, users::Relation::Sessions.def())
            .filter(sessions::Column::Id.eq(session_id.as_uuid()))
            .filter(sessions::Column::UserId.eq(user_id.as_uuid()))
            .filter(sessions::Column::RevokedAt.is_null())
            .filter(sessions::Column::ExpiresAt.gt(now()))
            .filter(users::Column::IsActive.eq(true))
            .one(&self.conn)
            .await?;
        model.map(to_user).transpose()
    }
}
