//! Bulk writes for seeding: batches of users and tasks in few statements, and wiping all account data.

use sea_orm::{EntityTrait, PaginatorTrait};
use securecrud_domain::{ImportedTask, UserId};

use crate::{
    Conn, Database, NewUserRecord, RepoError, Transaction,
    connect::Effect,
    entity::{
        audit_events, login_lockouts, rate_limits, refresh_rotations, sessions, tasks, users,
    },
    error::unique_conflict,
    session_cache::Stale,
    tasks::new_task_model,
    users::{USER_UNIQUES, new_user_model},
};

/// Rows per `INSERT` (well under SQLite's and PostgreSQL's bound-parameter limits).
const ROWS_PER_INSERT: usize = 1000;

impl<C: Conn> Database<C> {
    /// How many users there are.
    ///
    /// # Errors
    /// [`RepoError::Unavailable`] or [`RepoError::Unexpected`] when the query fails.
    pub async fn count_users(&self) -> Result<u64, RepoError> {
        Ok(users::Entity::find().count(&self.read()).await?)
    }
}

impl Transaction {
    /// Deletes every task, session and user, and the audit trail and protection state that named them, in this
    /// transaction.
    ///
    /// # Errors
    /// [`RepoError::Unavailable`] or [`RepoError::Unexpected`] when a statement fails.
    pub async fn wipe_account_data(&self) -> Result<(), RepoError> {
        let txn = &self.write(Effect::Stale(Stale::Everything)).await?;
        tasks::Entity::delete_many().exec(txn).await?;
        refresh_rotations::Entity::delete_many().exec(txn).await?;
        sessions::Entity::delete_many().exec(txn).await?;
        users::Entity::delete_many().exec(txn).await?;
        audit_events::Entity::delete_many().exec(txn).await?;
        login_lockouts::Entity::delete_many().exec(txn).await?;
        rate_limits::Entity::delete_many().exec(txn).await?;
        Ok(())
    }

    /// Inserts users in batches, in this transaction; returns their new ids in order.
    ///
    /// # Errors
    /// [`RepoError::Conflict`] if a username or email is taken; the whole batch is then rolled back.
    pub async fn insert_users(
        &self,
        records: Vec<NewUserRecord>,
    ) -> Result<Vec<UserId>, RepoError> {
        let at = self.now();
        let ids: Vec<UserId> = records.iter().map(|_| UserId::new()).collect();
        let mut models = records
            .into_iter()
            .zip(&ids)
            .map(|(new, id)| new_user_model(*id, new, at));
        // New accounts: no session check has read them.
        let txn = &self.write(Effect::Unseen).await?;
        loop {
            let chunk: Vec<users::ActiveModel> = models.by_ref().take(ROWS_PER_INSERT).collect();
            if chunk.is_empty() {
                break;
            }
            users::Entity::insert_many(chunk)
                .exec(txn)
                .await
                .map_err(|err| unique_conflict(err, &USER_UNIQUES))?;
        }
        Ok(ids)
    }

    /// Inserts tasks in batches, in this transaction.
    ///
    /// # Errors
    /// [`RepoError::Unavailable`] or [`RepoError::Unexpected`] when a statement fails (nothing is kept).
    pub async fn insert_tasks(&self, imported: Vec<ImportedTask>) -> Result<(), RepoError> {
        let mut models = imported
            .into_iter()
            .map(|t| new_task_model(t.owner, t.task, t.created_at, t.updated_at));
        let txn = &self.write(Effect::Elsewhere).await?;
        loop {
            let chunk: Vec<tasks::ActiveModel> = models.by_ref().take(ROWS_PER_INSERT).collect();
            if chunk.is_empty() {
                break;
            }
            tasks::Entity::insert_many(chunk).exec(txn).await?;
        }
        Ok(())
    }
}
