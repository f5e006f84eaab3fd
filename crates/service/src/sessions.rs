//! Session use cases: authenticate a request, refresh with rotation, logout, logout everywhere.
//!
//! Refresh rotation: the successor of a refresh token is `HMAC(successor key, token)`, so it is the same
//! however often it is computed and nothing secret is stored. A refresh swaps the session's token hash from the
//! presented token to its successor with one compare-and-set and records the old hash as rotated. A token
//! found among the rotated ones is a repeat: within `REFRESH_GRACE_SECS` of its rotation, and while its
//! successor is still the session's current token, it gets that same successor again (concurrent tabs);
//! otherwise it is a replay and the whole session is revoked.

use crate::error::CredentialKind;
use anyhow::Context;
use securecrud_auth::{TokenError, hash_token};
use securecrud_domain::{AuditKind, Role, SessionId, User, UserId};
use serde_json::json;
use time::{Duration, OffsetDateTime};

use crate::{
    ClientInfo, ServiceError, Services, TokenPair,
    audit::{event, own_event},
};

/// How stale `last_used_at` may get before an authenticated request refreshes it (one write a minute at
/// most per session, not one per request).
const TOUCH_AFTER: Duration = Duration::seconds(60);

/// The user and session behind an authenticated request.
#[derive(Debug, Clone)]
pub struct CurrentSession {
    pub user: User,
    pub session_id: SessionId,
}

impl Services {
    /// The user and session behind a bearer access token, checked against the database in one query: the
    /// token must be valid, its session live and its user active. The role comes from the database.
    ///
    /// # Errors
    /// [`ServiceError::TokenExpired`] or [`ServiceError::InvalidToken`].
    pub async fn authenticate(&self, access_token: &str) -> Result<CurrentSession, ServiceError> {
        let claims = match self.inner.jwt.verify(access_token) {
            // Signed with a key another instance has just installed (a rotation): look again, rarely.
            Err(TokenError::UnknownKey) if self.refresh_for_unknown_key(access_token).await => {
                self.inner.jwt.verify(access_token)
            }
            verified => verified,
        }
        .map_err(|err| match err {
            TokenError::Expired => ServiceError::TokenExpired,
            TokenError::Invalid | TokenError::UnknownKey => {
                ServiceError::InvalidToken(CredentialKind::Access)
            }
        })?;
        let found = self
            .db
            .find_session_user(
                SessionId::from_uuid(claims.sid),
                UserId::from_uuid(claims.sub),
            )
            .await?
            .ok_or(ServiceError::InvalidToken(CredentialKind::Access))?;
        if self.db.now() - found.last_used_at > TOUCH_AFTER
            && let Err(err) = self.db.touch_session(found.session_id).await
        {
            log::warn!("recording a session's last use failed: {err:#}");
        }
        Ok(CurrentSession {
            user: found.user,
            session_id: found.session_id,
        })
    }

    /// The user and session of a browser session's refresh token (its cookie), for the forward-auth check:
    /// the session must be live and its user active. Nothing is rotated or written.
    ///
    /// # Errors
    /// [`ServiceError::InvalidToken`].
    pub async fn authenticate_refresh(
        &self,
        refresh_token: &str,
    ) -> Result<CurrentSession, ServiceError> {
        let found = self
            .db
            .find_session_by_refresh(&hash_token(refresh_token))
            .await?
            .ok_or(ServiceError::InvalidToken(CredentialKind::Refresh))?;
        Ok(CurrentSession {
            user: found.user,
            session_id: found.session_id,
        })
    }

    /// Exchanges a refresh token for a new token pair, rotating the refresh token.
    ///
    /// # Errors
    /// [`ServiceError::InvalidToken`] for an unknown, expired or revoked token, and for a replayed one (whose
    /// session this revokes).
    pub async fn refresh(
        &self,
        refresh_token: &str,
        client: &ClientInfo,
    ) -> Result<TokenPair, ServiceError> {
        let db = &self.db;
        let old_hash = hash_token(refresh_token);
        let [maker, ..] = self.inner.successors.as_slice() else {
            return Err(anyhow::anyhow!("no refresh successor key").into());
        };
        let successor = maker.successor(refresh_token);
        let new_hash = hash_token(&successor);
        let tx = db.begin().await?;
        if let Some(rotated) = tx
            .rotate_refresh(&old_hash, &new_hash, |created_at| {
                self.refresh_expiry(created_at)
            })
            .await?
        {
            tx.record_audit(own_event(
                AuditKind::TokenRefreshed,
                client,
                rotated.user_id,
                json!({ "session_id": rotated.session_id.to_string() }),
            ))
            .await?;
            tx.commit().await?;
            return self
                .pair_for(
                    rotated.session_id,
                    rotated.user_id,
                    successor,
                    rotated.expires_at,
                )
                .await;
        }
        drop(tx);
        self.refresh_again(refresh_token, &old_hash, client).await
    }

    /// A refresh token that is not its session's current one: presented again within `REFRESH_GRACE_SECS`
    /// of its rotation, it gets the same successor (a client retrying a lost answer); otherwise it is a
    /// replay, and its session is revoked.
    async fn refresh_again(
        &self,
        refresh_token: &str,
        old_hash: &str,
        client: &ClientInfo,
    ) -> Result<TokenPair, ServiceError> {
        let Some(past) = self.db.find_past_refresh(old_hash).await? else {
            return Err(ServiceError::InvalidToken(CredentialKind::Refresh));
        };
        if !past.live {
            return Err(ServiceError::InvalidToken(CredentialKind::Refresh));
        }
        let within_grace = self.db.now() - past.rotated_at <= self.inner.refresh_grace;
        let repeated = self
            .inner
            .successors
            .iter()
            .map(|key| key.successor(refresh_token))
            .find(|candidate| hash_token(candidate) == past.current_hash);
        if within_grace && let Some(successor) = repeated {
            return self
                .pair_for(past.session_id, past.user_id, successor, past.expires_at)
                .await;
        }
        let tx = self.db.begin().await?;
        let detected = tx.revoke_session(past.session_id).await?;
        if detected {
            tx.record_audit(event(
                AuditKind::RefreshReuseDetected,
                client,
                None,
                Some(past.user_id),
                json!({ "session_id": past.session_id.to_string() }),
            ))
            .await?;
        }
        tx.commit().await?;
        if detected {
            self.inner.metrics.refresh_reuse();
        }
        log::warn!(
            user_id:% = past.user_id, session_id:% = past.session_id;
            "refresh token reuse detected: session revoked"
        );
        Err(ServiceError::InvalidToken(CredentialKind::Refresh))
    }

    /// When a refresh token issued now expires in a session that started at `created_at`: after
    /// `REFRESH_TOKEN_TTL_SECS`, but never past `created_at + SESSION_MAX_LIFETIME_SECS`.
    pub(crate) fn refresh_expiry(&self, created_at: OffsetDateTime) -> OffsetDateTime {
        (self.db.now() + self.inner.refresh_ttl).min(created_at + self.inner.session_max_lifetime)
    }

    /// A token pair for a session whose refresh token is now `refresh_token` (expiring at `expires_at`), if
    /// its user is still active.
    async fn pair_for(
        &self,
        session_id: SessionId,
        user_id: UserId,
        refresh_token: String,
        expires_at: OffsetDateTime,
    ) -> Result<TokenPair, ServiceError> {
        let user = self.db.find_user(user_id).await?;
        let Some(user) = user.filter(|u| u.is_active) else {
            self.db.revoke_session(session_id).await?;
            return Err(ServiceError::InvalidToken(CredentialKind::Refresh));
        };
        self.token_pair(&user, session_id, refresh_token, expires_at)
    }

    /// A new access token for `user` in `session`, paired with the session's refresh token (which expires at
    /// `expires_at`).
    pub(crate) fn token_pair(
        &self,
        user: &User,
        session: SessionId,
        refresh_token: String,
        expires_at: OffsetDateTime,
    ) -> Result<TokenPair, ServiceError> {
        let access = self
            .inner
            .jwt
            .issue_until(
                user.id.as_uuid(),
                session.as_uuid(),
                token_role(user.role),
                Some(expires_at),
            )
            .context("signing an access token failed")?;
        Ok(TokenPair {
            access_token: access.token,
            expires_in: access.expires_in.whole_seconds(),
            refresh_token,
            refresh_expires_in: whole_seconds_until(expires_at, self.db.now()),
        })
    }

    /// Ends the session of a refresh token (current or just rotated). Unknown tokens are accepted silently,
    /// as RFC 7009 asks of revocation endpoints: logging out twice is not an error.
    ///
    /// # Errors
    /// [`ServiceError::Unavailable`] or [`ServiceError::Unexpected`] when the database fails.
    pub async fn logout(
        &self,
        refresh_token: &str,
        client: &ClientInfo,
    ) -> Result<(), ServiceError> {
        let db = &self.db;
        let hash = hash_token(refresh_token);
        let tx = db.begin().await?;
        let ended = match tx.revoke_session_by_refresh(&hash).await? {
            Some(session) => Some((session.session_id, session.user_id)),
            None => match tx.find_past_refresh(&hash).await? {
                Some(past) if tx.revoke_session(past.session_id).await? => {
                    Some((past.session_id, past.user_id))
                }
                _ => None,
            },
        };
        if let Some((session_id, user_id)) = ended {
            tx.record_audit(own_event(
                AuditKind::Logout,
                client,
                user_id,
                json!({ "session_id": session_id.to_string() }),
            ))
            .await?;
            tx.commit().await?;
        }
        Ok(())
    }

    /// Revokes a token (RFC 7009): a valid access token or a refresh token (current or just rotated) ends its
    /// session, which stops every token of it at once. Anything else (an unknown, expired or already revoked
    /// token) is accepted silently, as the RFC asks: the caller learns nothing about the token.
    ///
    /// # Errors
    /// [`ServiceError::Unavailable`] or [`ServiceError::Unexpected`] when the database fails.
    pub async fn revoke(&self, token: &str, client: &ClientInfo) -> Result<(), ServiceError> {
        let verified = match self.inner.jwt.verify(token) {
            Err(TokenError::UnknownKey) if self.refresh_for_unknown_key(token).await => {
                self.inner.jwt.verify(token)
            }
            verified => verified,
        };
        let Ok(claims) = verified else {
            // Not a live access token: a refresh token, or nothing this server issued.
            return self.logout(token, client).await;
        };
        let (user_id, session_id) = (
            UserId::from_uuid(claims.sub),
            SessionId::from_uuid(claims.sid),
        );
        let tx = self.db.begin().await?;
        if tx.revoke_user_session(user_id, session_id).await? {
            tx.record_audit(own_event(
                AuditKind::Logout,
                client,
                user_id,
                json!({ "session_id": session_id.to_string(), "token": "access_token" }),
            ))
            .await?;
            tx.commit().await?;
        }
        Ok(())
    }

    /// Ends every session of the current user, this one included.
    ///
    /// # Errors
    /// [`ServiceError::Unavailable`] or [`ServiceError::Unexpected`] when the database fails.
    pub async fn logout_all(
        &self,
        current: &CurrentSession,
        client: &ClientInfo,
    ) -> Result<(), ServiceError> {
        let tx = self.db.begin().await?;
        let ended = tx.revoke_user_sessions(current.user.id, None).await?;
        tx.record_audit(own_event(
            AuditKind::LogoutAll,
            client,
            current.user.id,
            json!({ "sessions_ended": ended }),
        ))
        .await?;
        tx.commit().await?;
        log::info!(user_id:% = current.user.id, sessions = ended; "logged out everywhere");
        Ok(())
    }

    /// The current user's live sessions, most recently used first, each with whether it is this one.
    ///
    /// # Errors
    /// [`ServiceError::Unavailable`] or [`ServiceError::Unexpected`] when the database fails.
    pub async fn sessions(
        &self,
        current: &CurrentSession,
    ) -> Result<Vec<(securecrud_domain::Session, bool)>, ServiceError> {
        Ok(self
            .db
            .live_sessions(current.user.id)
            .await?
            .into_iter()
            .map(|session| {
                let is_current = session.id == current.session_id;
                (session, is_current)
            })
            .collect())
    }

    /// Ends one of the current user's sessions; its tokens stop working at once.
    ///
    /// # Errors
    /// [`ServiceError::NotFound`] when the user has no such live session (another user's included).
    pub async fn revoke_session(
        &self,
        current: &CurrentSession,
        session_id: SessionId,
        client: &ClientInfo,
    ) -> Result<(), ServiceError> {
        let tx = self.db.begin().await?;
        if !tx.revoke_user_session(current.user.id, session_id).await? {
            return Err(ServiceError::NotFound);
        }
        tx.record_audit(own_event(
            AuditKind::SessionRevoked,
            client,
            current.user.id,
            json!({ "session_id": session_id.to_string() }),
        ))
        .await?;
        tx.commit().await?;
        Ok(())
    }
}

/// Seconds from now until `at`, rounded (the few microseconds since `at` was computed do not show).
pub(crate) fn whole_seconds_until(at: OffsetDateTime, now: OffsetDateTime) -> i64 {
    let seconds = (at - now).as_seconds_f64().round();
    if seconds <= 0.0 { 0 } else { seconds as i64 }
}

/// The `role` claim of an account's access tokens (the auth crate keeps its own copy of the vocabulary, so
/// that it stands alone).
const fn token_role(role: Role) -> securecrud_auth::Role {
    match role {
        Role::User => securecrud_auth::Role::User,
        Role::Admin => securecrud_auth::Role::Admin,
    }
}
