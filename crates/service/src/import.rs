//! Bulk use cases for seeding: the same validation (callers pass parsed domain types) and the same bcrypt
//! hashing as registration, with passwords hashed in parallel and rows inserted in batches.

use futures_util::{StreamExt, stream};
use securecrud_domain::ImportedTask;
use securecrud_domain::{NewUser, Role, UserId};
use securecrud_persistence::NewUserRecord;

use crate::{ServiceError, Services};

impl Services {
    /// How many users exist.
    ///
    /// # Errors
    /// [`ServiceError::Unavailable`] or [`ServiceError::Unexpected`] when the database fails.
    pub async fn count_users(&self) -> Result<u64, ServiceError> {
        Ok(self.db.count_users().await?)
    }

    /// Deletes all account data: users (with their sessions, tasks and tokens), lockouts, rate-limit
    /// counters and the audit trail (`seed --reset`).
    ///
    /// # Errors
    /// [`ServiceError::Unavailable`] or [`ServiceError::Unexpected`] when the database fails.
    pub async fn wipe_account_data(&self) -> Result<(), ServiceError> {
        let tx = self.db.begin().await?;
        tx.wipe_account_data().await?;
        tx.commit().await?;
        Ok(())
    }

    /// Creates many users at once; returns their ids in order.
    ///
    /// # Errors
    /// [`ServiceError::Conflict`] if any username or email is taken (then none is created).
    pub async fn import_users(
        &self,
        users: Vec<(NewUser, Role)>,
    ) -> Result<Vec<UserId>, ServiceError> {
        let parallel =
            std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get) * 2;
        let records: Vec<Result<NewUserRecord, ServiceError>> = stream::iter(users)
            .map(|(new, role)| async move {
                let password_hash = self.inner.passwords.hash(new.password).await?;
                Ok(NewUserRecord {
                    username: new.username,
                    email: new.email,
                    password_hash: Some(password_hash),
                    role,
                })
            })
            .buffered(parallel)
            .collect()
            .await;
        let records = records.into_iter().collect::<Result<Vec<_>, _>>()?;
        let tx = self.db.begin().await?;
        let ids = tx.insert_users(records).await?;
        tx.commit().await?;
        Ok(ids)
    }

    /// Creates many tasks at once, with their given creation and update times.
    ///
    /// # Errors
    /// [`ServiceError::Unavailable`] or [`ServiceError::Unexpected`] when the database fails.
    pub async fn import_tasks(&self, tasks: Vec<ImportedTask>) -> Result<(), ServiceError> {
        let tx = self.db.begin().await?;
        tx.insert_tasks(tasks).await?;
        tx.commit().await?;
        Ok(())
    }
}
