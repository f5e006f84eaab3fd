//! The two-factor repository: TOTP enrolment, the last accepted time step, recovery codes and the
//! `mfa_token`s of logins waiting for a code. Every "use once" here is one conditional write whose row count
//! says whether this caller won, so concurrent requests cannot both succeed.

use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, EntityTrait, ExprTrait, PaginatorTrait, QueryFilter,
    sea_query::Expr,
};
use securecrud_domain::UserId;
use time::OffsetDateTime;

use crate::{
    Conn, Database, RepoError, Transaction,
    connect::Effect,
    entity::{mfa_challenges, mfa_recovery_codes, user_mfa, users},
    session_cache::Stale,
};

/// A user's TOTP secret as stored: sealed, never in clear.
#[derive(Clone, PartialEq, Eq)]
pub struct StoredTotp {
    /// The sealed secret (see the auth crate's `mfa::SecretSealer`).
    pub secret_sealed: String,
    /// `false` while the enrolment waits for its confirming code.
    pub enabled: bool,
    /// The latest 30-second step whose code was accepted.
    pub last_used_step: Option<i64>,
}

impl std::fmt::Debug for StoredTotp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredTotp")
            .field("enabled", &self.enabled)
            .field("last_used_step", &self.last_used_step)
            .finish_non_exhaustive()
    }
}

/// The outcome of claiming a second-factor attempt (see [`Database::claim_second_factor_attempt`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecondFactorClaim {
    /// The attempt is counted: this many wrong ones in a row, this one included if it turns out wrong.
    Counted(u32),
    /// `max` wrong ones in a row already: no code is compared until an admin resets two-factor.
    Capped,
    /// The user has no two-factor enrolment (nothing to count).
    NotEnrolled,
}

impl Database {
    /// Counts a second-factor attempt for `user` before its code is compared, atomically: of any number of
    /// concurrent attempts at most `max` in a row are ever compared. A wrong code keeps the count; a right
    /// one clears it ([`Database::clear_second_factor_failures`]); an attempt that compared nothing gives it
    /// back ([`Database::release_second_factor_attempt`]).
    ///
    /// # Errors
    /// [`RepoError::Unavailable`] or [`RepoError::Unexpected`] when a statement fails.
    pub async fn claim_second_factor_attempt(
        &self,
        user: UserId,
        max: u32,
    ) -> Result<SecondFactorClaim, RepoError> {
        let counted = {
            let write = self.write(Effect::Elsewhere).await?;
            // The count is read back by the same statement: a separate read would see the increments of
            // concurrent attempts too (and several would think they reached the cap).
            user_mfa::Entity::update_many()
                .col_expr(
                    user_mfa::Column::Failures,
                    Expr::col(user_mfa::Column::Failures).add(1),
                )
                .filter(user_mfa::Column::UserId.eq(user.as_uuid()))
                .filter(user_mfa::Column::Failures.lt(i64::from(max)))
                .exec_with_returning(&write)
                .await?
                .into_iter()
                .next()
        };
        if let Some(row) = counted {
            return Ok(SecondFactorClaim::Counted(
                u32::try_from(row.failures).unwrap_or(u32::MAX),
            ));
        }
        let enrolled = user_mfa::Entity::find_by_id(user.as_uuid())
            .one(&self.read())
            .await?
            .is_some();
        Ok(if enrolled {
            SecondFactorClaim::Capped
        } else {
            SecondFactorClaim::NotEnrolled
        })
    }

    /// Gives back an attempt claimed by [`Database::claim_second_factor_attempt`] that compared no code.
    ///
    /// # Errors
    /// [`RepoError::Unavailable`] or [`RepoError::Unexpected`] when the statement fails.
    pub async fn release_second_factor_attempt(&self, user: UserId) -> Result<(), RepoError> {
        let write = self.write(Effect::Elsewhere).await?;
        user_mfa::Entity::update_many()
            .col_expr(
                user_mfa::Column::Failures,
                Expr::col(user_mfa::Column::Failures).sub(1),
            )
            .filter(user_mfa::Column::UserId.eq(user.as_uuid()))
            .filter(user_mfa::Column::Failures.gt(0))
            .exec(&write)
            .await?;
        Ok(())
    }
}

impl<C: Conn> Database<C> {
    /// Clears the wrong second factors counted for `user` (a second factor verified).
    ///
    /// # Errors
    /// [`RepoError::Unavailable`] or [`RepoError::Unexpected`] when the statement fails.
    pub async fn clear_second_factor_failures(&self, user: UserId) -> Result<(), RepoError> {
        user_mfa::Entity::update_many()
            .col_expr(user_mfa::Column::Failures, Expr::value(0))
            .filter(user_mfa::Column::UserId.eq(user.as_uuid()))
            .exec(&self.write(Effect::Elsewhere).await?)
            .await?;
        Ok(())
    }

    /// The user's TOTP enrolment, pending or enabled.
    ///
    /// # Errors
    /// [`RepoError::Unavailable`] or [`RepoError::Unexpected`] when the query fails.
    pub async fn find_totp(&self, user: UserId) -> Result<Option<StoredTotp>, RepoError> {
        Ok(user_mfa::Entity::find_by_id(user.as_uuid())
            .one(&self.read())
            .await?
            .map(|row| StoredTotp {
                secret_sealed: row.secret_sealed,
                enabled: row.enabled_at.is_some(),
                last_used_step: row.last_used_step,
            }))
    }

    /// The user whose live (unused, unexpired) `mfa_token` has this SHA-256.
    ///
    /// # Errors
    /// [`RepoError::Unavailable`] or [`RepoError::Unexpected`] when the query fails.
    pub async fn find_mfa_challenge(&self, token_hash: &str) -> Result<Option<UserId>, RepoError> {
        Ok(mfa_challenges::Entity::find_by_id(token_hash.to_owned())
            .filter(mfa_challenges::Column::UsedAt.is_null())
            .filter(mfa_challenges::Column::ExpiresAt.gt(self.now()))
            .one(&self.read())
            .await?
            .map(|row| UserId::from_uuid(row.user_id)))
    }

    /// Stores an `mfa_token` (its SHA-256) for `user`, valid until `expires_at`.
    ///
    /// # Errors
    /// [`RepoError::Unavailable`] or [`RepoError::Unexpected`] when the insert fails.
    pub async fn insert_mfa_challenge(
        &self,
        token_hash: String,
        user: UserId,
        expires_at: OffsetDateTime,
    ) -> Result<(), RepoError> {
        let write = self.write(Effect::Elsewhere).await?;
        mfa_challenges::Entity::insert(mfa_challenges::ActiveModel {
            token_hash: Set(token_hash),
            user_id: Set(user.as_uuid()),
            created_at: Set(self.now()),
            expires_at: Set(expires_at),
            used_at: Set(None),
        })
        .exec_without_returning(&write)
        .await?;
        Ok(())
    }

    /// How many unused recovery codes the user has.
    ///
    /// # Errors
    /// [`RepoError::Unavailable`] or [`RepoError::Unexpected`] when the query fails.
    pub async fn unused_recovery_codes(&self, user: UserId) -> Result<u64, RepoError> {
        Ok(mfa_recovery_codes::Entity::find()
            .filter(mfa_recovery_codes::Column::UserId.eq(user.as_uuid()))
            .filter(mfa_recovery_codes::Column::UsedAt.is_null())
            .count(&self.read())
            .await?)
    }
}

impl Transaction {
    /// Starts (or restarts) a TOTP enrolment with a new sealed secret, unless TOTP is already enabled:
    /// `false` then, and nothing changes. A pending enrolment is replaced.
    ///
    /// # Errors
    /// [`RepoError::Unavailable`] or [`RepoError::Unexpected`] when a statement fails.
    pub async fn start_totp_enrolment(
        &self,
        user: UserId,
        secret_sealed: String,
    ) -> Result<bool, RepoError> {
        if self.find_totp(user).await?.is_some_and(|totp| totp.enabled) {
            return Ok(false);
        }
        user_mfa::Entity::delete_by_id(user.as_uuid())
            .exec(&self.write(Effect::Elsewhere).await?)
            .await?;
        user_mfa::Entity::insert(user_mfa::ActiveModel {
            user_id: Set(user.as_uuid()),
            secret_sealed: Set(secret_sealed),
            created_at: Set(self.now()),
            enabled_at: Set(None),
            last_used_step: Set(None),
            failures: Set(0),
        })
        .exec_without_returning(&self.write(Effect::Elsewhere).await?)
        .await?;
        Ok(true)
    }

    /// Enables the pending enrolment whose sealed secret is `secret_sealed` (the one whose code was checked),
    /// recording `step` as used, and marks the user `mfa_enabled`. `false` when that enrolment is no longer
    /// pending (confirmed concurrently, or replaced by a new one).
    ///
    /// # Errors
    /// [`RepoError::Unavailable`] or [`RepoError::Unexpected`] when a statement fails.
    pub async fn enable_totp(
        &self,
        user: UserId,
        secret_sealed: &str,
        step: i64,
    ) -> Result<bool, RepoError> {
        let at = self.now();
        let enabled = user_mfa::Entity::update_many()
            .col_expr(user_mfa::Column::EnabledAt, Expr::value(at))
            .col_expr(user_mfa::Column::LastUsedStep, Expr::value(step))
            .filter(user_mfa::Column::UserId.eq(user.as_uuid()))
            .filter(user_mfa::Column::EnabledAt.is_null())
            .filter(user_mfa::Column::SecretSealed.eq(secret_sealed))
            .exec(&self.write(Effect::Elsewhere).await?)
            .await?
            .rows_affected
            == 1;
        if enabled {
            self.set_mfa_enabled(user, true).await?;
        }
        Ok(enabled)
    }

    /// Records `step` as the latest used step of the user's enabled TOTP, if it is later than the last one:
    /// `false` when it is not (a replayed code, or one used concurrently) or TOTP is not enabled.
    ///
    /// # Errors
    /// [`RepoError::Unavailable`] or [`RepoError::Unexpected`] when the update fails.
    pub async fn use_totp_step(&self, user: UserId, step: i64) -> Result<bool, RepoError> {
        Ok(user_mfa::Entity::update_many()
            .col_expr(user_mfa::Column::LastUsedStep, Expr::value(step))
            .filter(user_mfa::Column::UserId.eq(user.as_uuid()))
            .filter(user_mfa::Column::EnabledAt.is_not_null())
            .filter(
                Condition::any()
                    .add(user_mfa::Column::LastUsedStep.is_null())
                    .add(user_mfa::Column::LastUsedStep.lt(step)),
            )
            .exec(&self.write(Effect::Elsewhere).await?)
            .await?
            .rows_affected
            == 1)
    }

    /// Replaces the user's recovery codes with these hashes.
    ///
    /// # Errors
    /// [`RepoError::Unavailable`] or [`RepoError::Unexpected`] when a statement fails.
    pub async fn replace_recovery_codes(
        &self,
        user: UserId,
        code_hashes: Vec<String>,
    ) -> Result<(), RepoError> {
        mfa_recovery_codes::Entity::delete_many()
            .filter(mfa_recovery_codes::Column::UserId.eq(user.as_uuid()))
            .exec(&self.write(Effect::Elsewhere).await?)
            .await?;
        let at = self.now();
        mfa_recovery_codes::Entity::insert_many(code_hashes.into_iter().map(|hash| {
            mfa_recovery_codes::ActiveModel {
                user_id: Set(user.as_uuid()),
                code_hash: Set(hash),
                created_at: Set(at),
                used_at: Set(None),
                ..Default::default()
            }
        }))
        .exec_without_returning(&self.write(Effect::Elsewhere).await?)
        .await?;
        Ok(())
    }

    /// Uses the unused recovery code with this hash: `false` when there is none (wrong, or already used).
    ///
    /// # Errors
    /// [`RepoError::Unavailable`] or [`RepoError::Unexpected`] when the update fails.
    pub async fn use_recovery_code(
        &self,
        user: UserId,
        code_hash: &str,
    ) -> Result<bool, RepoError> {
        Ok(mfa_recovery_codes::Entity::update_many()
            .col_expr(mfa_recovery_codes::Column::UsedAt, Expr::value(self.now()))
            .filter(mfa_recovery_codes::Column::UserId.eq(user.as_uuid()))
            .filter(mfa_recovery_codes::Column::CodeHash.eq(code_hash))
            .filter(mfa_recovery_codes::Column::UsedAt.is_null())
            .exec(&self.write(Effect::Elsewhere).await?)
            .await?
            .rows_affected
            == 1)
    }

    /// Spends a live `mfa_token`: the user it was for, or `None` when it is unknown, expired or already
    /// spent (by a concurrent verification too).
    ///
    /// # Errors
    /// [`RepoError::Unavailable`] or [`RepoError::Unexpected`] when the update fails.
    pub async fn consume_mfa_challenge(
        &self,
        token_hash: &str,
    ) -> Result<Option<UserId>, RepoError> {
        let at = self.now();
        let spent = mfa_challenges::Entity::update_many()
            .col_expr(mfa_challenges::Column::UsedAt, Expr::value(at))
            .filter(mfa_challenges::Column::TokenHash.eq(token_hash))
            .filter(mfa_challenges::Column::UsedAt.is_null())
            .filter(mfa_challenges::Column::ExpiresAt.gt(at))
            .exec_with_returning(&self.write(Effect::Elsewhere).await?)
            .await?;
        Ok(spent
            .into_iter()
            .next()
            .map(|row| UserId::from_uuid(row.user_id)))
    }

    /// Turns two-factor authentication off for the user: the TOTP secret (pending or enabled), the passkeys,
    /// the recovery codes and the waiting `mfa_token`s are deleted, and the user is no longer `mfa_enabled`.
    /// Returns whether a second factor (an enabled TOTP or a passkey) was there.
    ///
    /// # Errors
    /// [`RepoError::Unavailable`] or [`RepoError::Unexpected`] when a statement fails.
    pub async fn disable_mfa(&self, user: UserId) -> Result<bool, RepoError> {
        let totp_enabled = self.find_totp(user).await?.is_some_and(|totp| totp.enabled);
        let passkeys = self.delete_passkeys(user).await?;
        user_mfa::Entity::delete_by_id(user.as_uuid())
            .exec(&self.write(Effect::Elsewhere).await?)
            .await?;
        mfa_recovery_codes::Entity::delete_many()
            .filter(mfa_recovery_codes::Column::UserId.eq(user.as_uuid()))
            .exec(&self.write(Effect::Elsewhere).await?)
            .await?;
        mfa_challenges::Entity::delete_many()
            .filter(mfa_challenges::Column::UserId.eq(user.as_uuid()))
            .exec(&self.write(Effect::Elsewhere).await?)
            .await?;
        self.set_mfa_enabled(user, false).await?;
        Ok(totp_enabled || passkeys > 0)
    }

    /// Marks the user as needing a second factor at login (a passkey was added).
    ///
    /// # Errors
    /// [`RepoError::Unavailable`] or [`RepoError::Unexpected`] when the update fails.
    pub async fn mark_mfa_enabled(&self, user: UserId) -> Result<(), RepoError> {
        self.set_mfa_enabled(user, true).await
    }

    /// Marks the user as needing (or not) a second factor at login.
    async fn set_mfa_enabled(&self, user: UserId, enabled: bool) -> Result<(), RepoError> {
        users::Entity::update_many()
            .col_expr(users::Column::MfaEnabled, Expr::value(enabled))
            .col_expr(users::Column::UpdatedAt, Expr::value(self.now()))
            .filter(users::Column::Id.eq(user.as_uuid()))
            .exec(&self.write(Effect::Stale(Stale::User(user))).await?)
            .await?;
        Ok(())
    }
}
