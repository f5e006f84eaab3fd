//! Brute-force protection state: login lockouts per identifier and fixed-window rate-limit counters. Both live
//! in the database so that every api instance sees the same state.

use sea_orm::{
    ActiveValue::Set,
    ColumnTrait, EntityTrait, ExprTrait, QueryFilter, QuerySelect,
    sea_query::{CaseStatement, Expr, OnConflict},
};
use time::{Duration, OffsetDateTime};

use crate::{
    Conn, Database, RepoError,
    connect::Effect,
    entity::{
        login_lockouts, mfa_challenges, oidc_flows, oidc_login_codes, rate_limits, sessions,
        webauthn_ceremonies,
    },
};

/// How long a login identifier's failure count is remembered without a new failure.
const LOGIN_FAILURE_MEMORY: Duration = Duration::days(1);
/// How long ended (revoked or expired) sessions are kept before the sweeper deletes them.
const ENDED_SESSION_RETENTION: Duration = Duration::days(1);

/// Lockout rows without a running lock at `at`.
fn unlocked_at(at: OffsetDateTime) -> sea_orm::sea_query::SimpleExpr {
    login_lockouts::Column::LockedUntil
        .is_null()
        .or(login_lockouts::Column::LockedUntil.lte(at))
}

/// The answer to [`Database::claim_login_attempt`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptClaim {
    /// The password may be checked; this is attempt `count` of the quota, after `locks` earlier locks.
    Allowed { count: u32, locks: u32 },
    /// Locked until then: no password is checked.
    Locked(OffsetDateTime),
    /// The quota is used up by attempts still in flight or failed: no password is checked, and the
    /// identifier is to be locked (after `locks` earlier locks).
    OverQuota { locks: u32 },
}

/// What [`Database::sweep_protection_state`] deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Swept {
    pub rate_limit_counters: u64,
    pub login_lockouts: u64,
    pub ended_sessions: u64,
    /// Expired `mfa_token`s (used or not).
    pub mfa_challenges: u64,
    /// Expired WebAuthn ceremonies (finished or not).
    pub webauthn_ceremonies: u64,
    /// Expired OpenID Connect flows and login codes (finished or not).
    pub oidc_flows: u64,
}

impl<C: Conn> Database<C> {
    /// Until when `identifier` (a normalised login) is locked, if it is locked now.
    ///
    /// # Errors
    /// [`RepoError::Unavailable`] or [`RepoError::Unexpected`] when the query fails.
    pub async fn login_locked_until(
        &self,
        identifier: &str,
    ) -> Result<Option<OffsetDateTime>, RepoError> {
        let at = self.now();
        Ok(login_lockouts::Entity::find_by_id(identifier.to_owned())
            .filter(login_lockouts::Column::LockedUntil.gt(at))
            .one(&self.read())
            .await?
            .and_then(|row| row.locked_until))
    }

    /// Claims one password check for `identifier`, **before** the password is checked, in one atomic
    /// upsert: unless the identifier is locked, its count goes up by one. Of any number of concurrent claims
    /// at most `max_failures` see [`AttemptClaim::Allowed`]; the others are over the quota, and the first of
    /// them locks the identifier (see [`Database::lock_login`]). A success clears the count
    /// ([`Database::clear_login_failures`]); a failure leaves it counted.
    ///
    /// # Errors
    /// [`RepoError::Unavailable`] or [`RepoError::Unexpected`] when the statement fails.
    pub async fn claim_login_attempt(
        &self,
        identifier: &str,
        max_failures: u32,
    ) -> Result<AttemptClaim, RepoError> {
        let write = self.write(Effect::Elsewhere).await?;
        use login_lockouts::Column;
        let at = self.now();
        let locked = Expr::col((login_lockouts::Entity, Column::LockedUntil)).gt(at);
        let failures = CaseStatement::new()
            .case(
                locked,
                Expr::col((login_lockouts::Entity, Column::Failures)),
            )
            .finally(Expr::col((login_lockouts::Entity, Column::Failures)).add(1));
        let row = login_lockouts::Entity::insert(login_lockouts::ActiveModel {
            identifier: Set(identifier.to_owned()),
            failures: Set(1),
            locks: Set(0),
            locked_until: Set(None),
            updated_at: Set(at),
        })
        .on_conflict(
            OnConflict::column(Column::Identifier)
                .value(Column::Failures, failures)
                .value(Column::UpdatedAt, at)
                .to_owned(),
        )
        .exec_with_returning(&write)
        .await?;
        if let Some(until) = row.locked_until.filter(|until| *until > at) {
            return Ok(AttemptClaim::Locked(until));
        }
        let count = u32::try_from(row.failures).unwrap_or(u32::MAX);
        let locks = u32::try_from(row.locks).unwrap_or(0);
        Ok(if count > max_failures {
            AttemptClaim::OverQuota { locks }
        } else {
            AttemptClaim::Allowed { count, locks }
        })
    }

    /// Locks `identifier` until `until` if it has used up its `max_failures` and is not locked yet; its count
    /// starts again from zero and its number of locks goes up. Returns whether this call locked it (of
    /// concurrent callers, exactly one does).
    ///
    /// # Errors
    /// [`RepoError::Unavailable`] or [`RepoError::Unexpected`] when the statement fails.
    pub async fn lock_login(
        &self,
        identifier: &str,
        max_failures: u32,
        until: OffsetDateTime,
    ) -> Result<bool, RepoError> {
        let write = self.write(Effect::Elsewhere).await?;
        use login_lockouts::Column;
        let at = self.now();
        let locked = login_lockouts::Entity::update_many()
            .col_expr(Column::Failures, Expr::value(0))
            .col_expr(Column::Locks, Expr::col(Column::Locks).add(1))
            .col_expr(Column::LockedUntil, Expr::value(until))
            .col_expr(Column::UpdatedAt, Expr::value(at))
            .filter(Column::Identifier.eq(identifier))
            .filter(Column::Failures.gte(max_failures))
            .filter(unlocked_at(at))
            .exec(&write)
            .await?;
        Ok(locked.rows_affected == 1)
    }

    /// Gives back a claim whose password was never checked (hashing was at capacity): the count goes down by
    /// one, unless the identifier has been locked meanwhile.
    ///
    /// # Errors
    /// [`RepoError::Unavailable`] or [`RepoError::Unexpected`] when the statement fails.
    pub async fn release_login_attempt(&self, identifier: &str) -> Result<(), RepoError> {
        let write = self.write(Effect::Elsewhere).await?;
        use login_lockouts::Column;
        let at = self.now();
        login_lockouts::Entity::update_many()
            .col_expr(Column::Failures, Expr::col(Column::Failures).sub(1))
            .filter(Column::Identifier.eq(identifier))
            .filter(Column::Failures.gt(0))
            .filter(unlocked_at(at))
            .exec(&write)
            .await?;
        Ok(())
    }

    /// Until when `identifier` is locked, if it is, holding its row until this transaction ends (PostgreSQL
    /// `FOR UPDATE`), so that a lock cannot land between this check and what the caller does next.
    ///
    /// # Errors
    /// [`RepoError::Unavailable`] or [`RepoError::Unexpected`] when the query fails.
    pub async fn login_locked_until_for_update(
        &self,
        identifier: &str,
    ) -> Result<Option<OffsetDateTime>, RepoError> {
        let at = self.now();
        Ok(login_lockouts::Entity::find_by_id(identifier.to_owned())
            .lock_exclusive()
            .one(&self.read())
            .await?
            .and_then(|row| row.locked_until)
            .filter(|until| *until > at))
    }

    /// Forgets the failures and locks of these identifiers (a successful login, an admin unlock). Returns
    /// how many had any.
    ///
    /// # Errors
    /// [`RepoError::Unavailable`] or [`RepoError::Unexpected`] when the delete fails.
    pub async fn clear_login_failures(&self, identifiers: &[String]) -> Result<u64, RepoError> {
        let write = self.write(Effect::Elsewhere).await?;
        let result = login_lockouts::Entity::delete_many()
            .filter(login_lockouts::Column::Identifier.is_in(identifiers.iter().cloned()))
            .exec(&write)
            .await?;
        Ok(result.rows_affected)
    }

    /// Counts one request against `key` in the fixed window that started at `window_start` (Unix seconds) and
    /// returns the count of that window, this request included. One upsert: a counter of an older window
    /// starts again from one.
    ///
    /// # Errors
    /// [`RepoError::Unavailable`] or [`RepoError::Unexpected`] when the statement fails.
    pub async fn hit_rate_limit(&self, key: &str, window_start: i64) -> Result<u32, RepoError> {
        let write = self.write(Effect::Elsewhere).await?;
        use rate_limits::Column;
        let same_window = Expr::col((rate_limits::Entity, Column::WindowStart)).eq(window_start);
        let count = CaseStatement::new()
            .case(
                same_window,
                Expr::col((rate_limits::Entity, Column::Count)).add(1),
            )
            .finally(1);
        let row = rate_limits::Entity::insert(rate_limits::ActiveModel {
            key: Set(key.to_owned()),
            window_start: Set(window_start),
            count: Set(1),
        })
        .on_conflict(
            OnConflict::column(Column::Key)
                .value(Column::Count, count)
                .value(Column::WindowStart, window_start)
                .to_owned(),
        )
        .exec_with_returning(&write)
        .await?;
        Ok(u32::try_from(row.count).unwrap_or(u32::MAX))
    }

    /// Deletes what protection no longer needs: rate-limit counters of windows that started before
    /// `windows_before` (Unix seconds), lockout rows without a running lock and idle for
    /// [`LOGIN_FAILURE_MEMORY`], and sessions that ended more than [`ENDED_SESSION_RETENTION`] ago (their
    /// rotated refresh hashes go with them).
    ///
    /// # Errors
    /// [`RepoError::Unavailable`] or [`RepoError::Unexpected`] when a delete fails.
    pub async fn sweep_protection_state(&self, windows_before: i64) -> Result<Swept, RepoError> {
        // The sessions it deletes ended a day ago or more (expired, or revoked and marked stale then): no
        // cached check accepts them.
        let write = self.write(Effect::Unseen).await?;
        let at = self.now();
        let rate_limit_counters = rate_limits::Entity::delete_many()
            .filter(rate_limits::Column::WindowStart.lt(windows_before))
            .exec(&write)
            .await?
            .rows_affected;
        let login_lockouts = login_lockouts::Entity::delete_many()
            .filter(login_lockouts::Column::UpdatedAt.lt(at - LOGIN_FAILURE_MEMORY))
            .filter(
                login_lockouts::Column::LockedUntil
                    .is_null()
                    .or(login_lockouts::Column::LockedUntil.lt(at)),
            )
            .exec(&write)
            .await?
            .rows_affected;
        let cutoff = at - ENDED_SESSION_RETENTION;
        let ended_sessions = sessions::Entity::delete_many()
            .filter(
                sessions::Column::ExpiresAt
                    .lt(cutoff)
                    .or(sessions::Column::RevokedAt.lt(cutoff)),
            )
            .exec(&write)
            .await?
            .rows_affected;
        let mfa_challenges = mfa_challenges::Entity::delete_many()
            .filter(mfa_challenges::Column::ExpiresAt.lt(at))
            .exec(&write)
            .await?
            .rows_affected;
        let webauthn_ceremonies = webauthn_ceremonies::Entity::delete_many()
            .filter(webauthn_ceremonies::Column::ExpiresAt.lt(at))
            .exec(&write)
            .await?
            .rows_affected;
        let oidc_flows = oidc_flows::Entity::delete_many()
            .filter(oidc_flows::Column::ExpiresAt.lt(at))
            .exec(&write)
            .await?
            .rows_affected
            + oidc_login_codes::Entity::delete_many()
                .filter(oidc_login_codes::Column::ExpiresAt.lt(at))
                .exec(&write)
                .await?
                .rows_affected;
        Ok(Swept {
            rate_limit_counters,
            login_lockouts,
            ended_sessions,
            mfa_challenges,
            webauthn_ceremonies,
            oidc_flows,
        })
    }
}
