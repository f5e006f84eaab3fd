//! Classification of database errors.

use std::ops::Deref;

use sea_orm::{DbErr, RuntimeErr, SqlErr, sqlx};
use securecrud_domain::ConflictField;

#[derive(Debug, thiserror::Error)]
pub enum RepoError {
    /// A unique index refused the write.
    #[error("{0:?} is already taken")]
    Conflict(ConflictField),
    /// The database cannot be reached or is too busy to answer in time.
    #[error("the database is unavailable")]
    Unavailable(#[source] DbErr),
    /// Anything else: a bug, corrupt data, a failed migration.
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

impl From<DbErr> for RepoError {
    fn from(err: DbErr) -> Self {
        if let Some(SqlErr::UniqueConstraintViolation(message)) = err.sql_err() {
            // PostgreSQL names the index (`idx_users_email`), SQLite the column (`users.email`).
            let field = if message.contains("email") {
                ConflictField::Email
            } else {
                ConflictField::Username
            };
            return Self::Conflict(field);
        }
        if is_unavailable(&err) {
            return Self::Unavailable(err);
        }
        Self::Unexpected(anyhow::Error::new(err).context("database query failed"))
    }
}

/// Whether `err` means "the database cannot serve us now" rather than "this query is wrong".
fn is_unavailable(err: &DbErr) -> bool {
    match err {
        DbErr::ConnectionAcquire(_) | DbErr::Conn(_) => true,
        DbErr::Exec(RuntimeErr::SqlxError(e)) | DbErr::Query(RuntimeErr::SqlxError(e)) => {
            match e.deref() {
                sqlx::Error::Io(_)
                | sqlx::Error::PoolTimedOut
                | sqlx::Error::PoolClosed
                | sqlx::Error::WorkerCrashed => true,
                // SQLITE_BUSY (5) / SQLITE_LOCKED (6) after busy_timeout; PostgreSQL admin shutdown (57P01…),
                // connection failures (08…), and a transaction chosen as a deadlock victim or a serialization
                // failure (40P01, 40001): transient, the client may retry.
                sqlx::Error::Database(db) => db.code().is_some_and(|code| {
                    matches!(code.as_ref(), "5" | "6" | "517" | "262" | "40P01" | "40001")
                        || code.starts_with("57P")
                        || code.starts_with("08")
                }),
                _ => false,
            }
        }
        _ => false,
    }
}
