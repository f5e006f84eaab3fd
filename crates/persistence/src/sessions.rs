//! The sessions repository: opening, authenticating, rotating and revoking sessions.

use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, sea_query::Expr,
};
use securecrud_domain::{Session, SessionId, User, UserId};
use time::OffsetDateTime;

use crate::{
    Conn, Database, RepoError, Transaction,
    connect::Effect,
    entity::{mfa_challenges, oidc_flows, oidc_login_codes, refresh_rotations, sessions, users},
    session_cache::Stale,
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

/// The user of a live session, with when the session was last used and when it ends.
#[derive(Debug, Clone)]
pub struct SessionUser {
    pub user: User,
    pub session_id: SessionId,
    pub last_used_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
}

/// A session whose refresh token was rotated with [`Database::rotate_refresh`].
#[derive(Debug, Clone, Copy)]
pub struct RotatedSession {
    pub session_id: SessionId,
    pub user_id: UserId,
    /// When the new refresh token expires.
    pub expires_at: OffsetDateTime,
}

/// What is known of a refresh token that was already rotated away from.
#[derive(Debug, Clone)]
pub struct PastRefresh {
    pub session_id: SessionId,
    pub user_id: UserId,
    pub rotated_at: OffsetDateTime,
    /// SHA-256 of the session's current refresh token.
    pub current_hash: String,
    /// Whether the session is still live (not revoked, not expired).
    pub live: bool,
    /// When the session's current refresh token expires.
    pub expires_at: OffsetDateTime,
}

impl<C: Conn> Database<C> {
    /// Opens a session.
    ///
    /// # Errors
    /// [`RepoError::Unavailable`] or [`RepoError::Unexpected`] when the insert fails.
    pub async fn insert_session(&self, new: NewSession) -> Result<(), RepoError> {
        let write = self.write(Effect::Unseen).await?;
        let at = self.now();
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
        .insert(&write)
        .await?;
        Ok(())
    }

    /// The user of a live session: the session exists, belongs to `user_id`, is neither revoked nor expired,
    /// and its user is active. `None` otherwise. Answered from this instance's session cache when it may
    /// (see `session_cache`: exact for this instance's own changes, for other instances' on PostgreSQL while
    /// notifications arrive, and never older than `ConnectOptions::session_cache_max_age`), else in one
    /// indexed query whose answer the cache keeps.
    ///
    /// # Errors
    /// [`RepoError::Unavailable`] or [`RepoError::Unexpected`] when the query fails.
    pub async fn find_session_user(
        &self,
        session_id: SessionId,
        user_id: UserId,
    ) -> Result<Option<SessionUser>, RepoError> {
        // A transaction may see its own uncommitted writes: it neither reads nor fills the cache.
        let cache = !self.in_transaction();
        if cache && let Some(cached) = self.sessions.get(session_id, user_id, self.clock()) {
            return Ok(Some(cached));
        }
        let ticket = if cache { self.sessions.ticket() } else { None };
        let found = sessions::Entity::find_by_id(session_id.as_uuid())
            .find_also_related(users::Entity)
            .filter(sessions::Column::UserId.eq(user_id.as_uuid()))
            .filter(sessions::Column::RevokedAt.is_null())
            .filter(sessions::Column::ExpiresAt.gt(self.now()))
            .filter(users::Column::IsActive.eq(true))
            .one(&self.read())
            .await?;
        let Some((session, Some(user))) = found else {
            return Ok(None);
        };
        let found = SessionUser {
            user: to_user(user)?,
            session_id,
            last_used_at: session.last_used_at,
            expires_at: session.expires_at,
        };
        if let Some(ticket) = ticket {
            self.sessions.fill(ticket, &found);
        }
        Ok(Some(found))
    }

    /// Records that a session was used now.
    ///
    /// # Errors
    /// [`RepoError::Unavailable`] or [`RepoError::Unexpected`] when the update fails.
    pub async fn touch_session(&self, session_id: SessionId) -> Result<(), RepoError> {
        let write = self.write(Effect::Unseen).await?;
        let at = self.now();
        sessions::Entity::update_many()
            .col_expr(sessions::Column::LastUsedAt, Expr::value(at))
            .filter(sessions::Column::Id.eq(session_id.as_uuid()))
            .exec(&write)
            .await?;
        self.sessions.touched(session_id, at);
        Ok(())
    }

    /// The user of the live session whose current refresh token has this SHA-256 (a browser session's
    /// cookie, for the forward-auth check): `None` when there is none, it is revoked or expired, or its user
    /// is deactivated. Reads only; the token is not rotated.
    ///
    /// # Errors
    /// [`RepoError::Unavailable`] or [`RepoError::Unexpected`] when the query fails.
    pub async fn find_session_by_refresh(
        &self,
        hash: &str,
    ) -> Result<Option<SessionUser>, RepoError> {
        let found = sessions::Entity::find()
            .find_also_related(users::Entity)
            .filter(sessions::Column::RefreshHash.eq(hash))
            .filter(sessions::Column::RevokedAt.is_null())
            .filter(sessions::Column::ExpiresAt.gt(self.now()))
            .filter(users::Column::IsActive.eq(true))
            .one(&self.read())
            .await?;
        let Some((session, Some(user))) = found else {
            return Ok(None);
        };
        Ok(Some(SessionUser {
            user: to_user(user)?,
            session_id: SessionId::from_uuid(session.id),
            last_used_at: session.last_used_at,
            expires_at: session.expires_at,
        }))
    }

    /// What is known of a refresh token that was rotated away from, if `hash` is one.
    ///
    /// # Errors
    /// [`RepoError::Unavailable`] or [`RepoError::Unexpected`] when the query fails.
    pub async fn find_past_refresh(&self, hash: &str) -> Result<Option<PastRefresh>, RepoError> {
        let found = refresh_rotations::Entity::find_by_id(hash.to_owned())
            .find_also_related(sessions::Entity)
            .one(&self.read())
            .await?;
        let Some((rotation, Some(session))) = found else {
            return Ok(None);
        };
        Ok(Some(PastRefresh {
            session_id: SessionId::from_uuid(session.id),
            user_id: UserId::from_uuid(session.user_id),
            rotated_at: rotation.rotated_at,
            live: session.revoked_at.is_none() && session.expires_at > self.now(),
            expires_at: session.expires_at,
            current_hash: session.refresh_hash,
        }))
    }

    /// Revokes one session. Returns whether a live session was revoked.
    ///
    /// # Errors
    /// [`RepoError::Unavailable`] or [`RepoError::Unexpected`] when the update fails.
    pub async fn revoke_session(&self, session_id: SessionId) -> Result<bool, RepoError> {
        let write = self
            .write(Effect::Stale(Stale::Session(session_id)))
            .await?;
        let result = sessions::Entity::update_many()
            .col_expr(sessions::Column::RevokedAt, Expr::value(self.now()))
            .filter(sessions::Column::Id.eq(session_id.as_uuid()))
            .filter(sessions::Column::RevokedAt.is_null())
            .exec(&write)
            .await?;
        Ok(result.rows_affected > 0)
    }

    /// Revokes the live session whose current refresh token hashes to `hash`. Returns the revoked session and
    /// its user, if there was one.
    ///
    /// # Errors
    /// [`RepoError::Unavailable`] or [`RepoError::Unexpected`] when the update fails.
    pub async fn revoke_session_by_refresh(
        &self,
        hash: &str,
    ) -> Result<Option<RotatedSession>, RepoError> {
        let mut write = self.write(Effect::Stale(Stale::Everything)).await?;
        // Which session is only known from the answer: until then (an error, a cancelled request), all.
        let revoked = sessions::Entity::update_many()
            .col_expr(sessions::Column::RevokedAt, Expr::value(self.now()))
            .filter(sessions::Column::RefreshHash.eq(hash))
            .filter(sessions::Column::RevokedAt.is_null())
            .exec_with_returning(&write)
            .await?;
        // The hash is unique: at most one session.
        write.set_stale(
            revoked
                .first()
                .map(|session| Stale::Session(SessionId::from_uuid(session.id))),
        );
        Ok(revoked.first().map(|session| RotatedSession {
            session_id: SessionId::from_uuid(session.id),
            user_id: UserId::from_uuid(session.user_id),
            expires_at: session.expires_at,
        }))
    }

    /// Revokes one live session of `user_id`. Returns whether there was one (another user's session id is
    /// "no such session").
    ///
    /// # Errors
    /// [`RepoError::Unavailable`] or [`RepoError::Unexpected`] when the update fails.
    pub async fn revoke_user_session(
        &self,
        user_id: UserId,
        session_id: SessionId,
    ) -> Result<bool, RepoError> {
        let write = self
            .write(Effect::Stale(Stale::Session(session_id)))
            .await?;
        let at = self.now();
        let result = sessions::Entity::update_many()
            .col_expr(sessions::Column::RevokedAt, Expr::value(at))
            .filter(sessions::Column::Id.eq(session_id.as_uuid()))
            .filter(sessions::Column::UserId.eq(user_id.as_uuid()))
            .filter(sessions::Column::RevokedAt.is_null())
            .filter(sessions::Column::ExpiresAt.gt(at))
            .exec(&write)
            .await?;
        Ok(result.rows_affected > 0)
    }

    /// The live sessions of a user (not revoked, not expired), most recently used first.
    ///
    /// # Errors
    /// [`RepoError::Unavailable`] or [`RepoError::Unexpected`] when the query fails.
    pub async fn live_sessions(&self, user_id: UserId) -> Result<Vec<Session>, RepoError> {
        Ok(sessions::Entity::find()
            .filter(sessions::Column::UserId.eq(user_id.as_uuid()))
            .filter(sessions::Column::RevokedAt.is_null())
            .filter(sessions::Column::ExpiresAt.gt(self.now()))
            .order_by_desc(sessions::Column::LastUsedAt)
            .order_by_desc(sessions::Column::Id)
            .all(&self.read())
            .await?
            .into_iter()
            .map(|session| Session {
                id: SessionId::from_uuid(session.id),
                created_at: session.created_at,
                last_used_at: session.last_used_at,
                expires_at: session.expires_at,
                ip: session.ip,
                user_agent: session.user_agent,
            })
            .collect())
    }

    /// Revokes every live session of a user, except `keep` if given, and the user's waiting `mfa_token`s (a
    /// login half done with a password that may be the reason for this). Returns how many sessions were
    /// revoked.
    ///
    /// # Errors
    /// [`RepoError::Unavailable`] or [`RepoError::Unexpected`] when the update fails.
    pub async fn revoke_user_sessions(
        &self,
        user_id: UserId,
        keep: Option<SessionId>,
    ) -> Result<u64, RepoError> {
        let write = self.write(Effect::Stale(Stale::User(user_id))).await?;
        let mut update = sessions::Entity::update_many()
            .col_expr(sessions::Column::RevokedAt, Expr::value(self.now()))
            .filter(sessions::Column::UserId.eq(user_id.as_uuid()))
            .filter(sessions::Column::RevokedAt.is_null());
        if let Some(keep) = keep {
            update = update.filter(sessions::Column::Id.ne(keep.as_uuid()));
        }
        let ended = update.exec(&write).await?.rows_affected;
        mfa_challenges::Entity::delete_many()
            .filter(mfa_challenges::Column::UserId.eq(user_id.as_uuid()))
            .exec(&write)
            .await?;
        // A link to this account started from a session that ends here ends with it (a link started with a
        // stolen session must not outlive the owner's password change or reset), and so do login codes not
        // yet exchanged.
        oidc_flows::Entity::delete_many()
            .filter(oidc_flows::Column::UserId.eq(user_id.as_uuid()))
            .exec(&write)
            .await?;
        oidc_login_codes::Entity::delete_many()
            .filter(oidc_login_codes::Column::UserId.eq(user_id.as_uuid()))
            .exec(&write)
            .await?;
        Ok(ended)
    }
}

impl Transaction {
    /// Locks a user's row until this transaction ends (PostgreSQL `FOR UPDATE`; SQLite's write transaction
    /// holds the database lock already), so that a write which then touches the user's tokens or sessions
    /// takes its locks in the order every such write does (user first) and queues instead of deadlocking.
    ///
    /// # Errors
    /// [`RepoError::Unavailable`] or [`RepoError::Unexpected`] when the query fails.
    pub async fn lock_user(&self, user: UserId) -> Result<(), RepoError> {
        users::Entity::find_by_id(user.as_uuid())
            .lock_exclusive()
            .one(&self.read())
            .await?;
        Ok(())
    }

    /// Whether session `id` of `user` is still live, locking the user's row and then the session's until this
    /// transaction ends (PostgreSQL `FOR UPDATE`; SQLite's write transaction holds the database lock
    /// already): a change made on the strength of this session cannot commit after a concurrent revocation (a
    /// reset, a logout-all) did. User before session, the order every write that touches both takes (a
    /// password change, a reset, a deactivation update the user, then its sessions), so they queue instead of
    /// deadlocking.
    ///
    /// # Errors
    /// [`RepoError::Unavailable`] or [`RepoError::Unexpected`] when the query fails.
    pub async fn lock_live_session(&self, user: UserId, id: SessionId) -> Result<bool, RepoError> {
        let at = self.now();
        users::Entity::find_by_id(user.as_uuid())
            .lock_exclusive()
            .one(&self.read())
            .await?;
        let session = sessions::Entity::find_by_id(id.as_uuid())
            .filter(sessions::Column::UserId.eq(user.as_uuid()))
            .lock_exclusive()
            .one(&self.read())
            .await?;
        Ok(session.is_some_and(|s| s.revoked_at.is_none() && s.expires_at > at))
    }

    /// Rotates a live session's refresh token from `old_hash` to `new_hash` with one compare-and-set, and
    /// records `old_hash` as rotated, in this transaction. The new expiry is `expiry(created_at)` of the
    /// session (the use case caps it at the session's maximum lifetime). `None` when no live session holds
    /// `old_hash` now (unknown, already rotated, revoked or expired), or when the new expiry has passed.
    ///
    /// # Errors
    /// [`RepoError::Unavailable`] or [`RepoError::Unexpected`] when a statement fails.
    pub async fn rotate_refresh(
        &self,
        old_hash: &str,
        new_hash: &str,
        expiry: impl FnOnce(OffsetDateTime) -> OffsetDateTime,
    ) -> Result<Option<RotatedSession>, RepoError> {
        let at = self.now();
        let Some(session) = sessions::Entity::find()
            .filter(sessions::Column::RefreshHash.eq(old_hash))
            .one(&self.read())
            .await?
        else {
            return Ok(None);
        };
        let expires_at = expiry(session.created_at);
        if expires_at <= at {
            return Ok(None);
        }
        // The session's expiry moves (a changed REFRESH_TOKEN_TTL_SECS can move it earlier).
        let write = self
            .write(Effect::Stale(Stale::Session(SessionId::from_uuid(
                session.id,
            ))))
            .await?;
        // The compare-and-set: of concurrent rotations of one token, exactly one matches `old_hash`.
        let updated = sessions::Entity::update_many()
            .col_expr(sessions::Column::RefreshHash, Expr::value(new_hash))
            .col_expr(sessions::Column::LastUsedAt, Expr::value(at))
            .col_expr(sessions::Column::ExpiresAt, Expr::value(expires_at))
            .filter(sessions::Column::Id.eq(session.id))
            .filter(sessions::Column::RefreshHash.eq(old_hash))
            .filter(sessions::Column::RevokedAt.is_null())
            .filter(sessions::Column::ExpiresAt.gt(at))
            .exec(&write)
            .await?;
        if updated.rows_affected != 1 {
            return Ok(None);
        }
        refresh_rotations::ActiveModel {
            refresh_hash: Set(old_hash.to_owned()),
            session_id: Set(session.id),
            rotated_at: Set(at),
        }
        .insert(&write)
        .await?;
        Ok(Some(RotatedSession {
            session_id: SessionId::from_uuid(session.id),
            user_id: UserId::from_uuid(session.user_id),
            expires_at,
        }))
    }
}
