//! Classification of database errors.

use std::ops::Deref;

use sea_orm::{DbErr, RuntimeErr, SqlErr, sqlx};
use securecrud_domain::ConflictField;
use securecrud_migration::UniqueIndex;

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
    /// Every database error but the unavailable kind is unexpected, a unique violation included: a write that
    /// can collide on a unique index the caller can act on classifies it itself, with [`unique_conflict`].
    fn from(err: DbErr) -> Self {
        if is_unavailable(&err) {
            return Self::Unavailable(err);
        }
        Self::Unexpected(anyhow::Error::new(err).context("database query failed"))
    }
}

/// The conflict `err` means if it is a violation of one of `indexes` (each paired with the field a client
/// is told about), else the error as [`RepoError::from`] classifies it. PostgreSQL names the violated
/// constraint; SQLite names its table and columns (`UNIQUE constraint failed: users.email`).
pub(crate) fn unique_conflict(err: DbErr, indexes: &[(UniqueIndex, ConflictField)]) -> RepoError {
    if let Some(SqlErr::UniqueConstraintViolation(message)) = err.sql_err() {
        let constraint = constraint_name(&err);
        let found = indexes.iter().find(|(index, _)| {
            constraint.as_deref() == Some(index.name) || names_columns(&message, index)
        });
        if let Some((_, field)) = found {
            return RepoError::Conflict(*field);
        }
    }
    RepoError::from(err)
}

/// The constraint the database reported, where it reports one (PostgreSQL).
fn constraint_name(err: &DbErr) -> Option<String> {
    match err {
        DbErr::Exec(RuntimeErr::SqlxError(e)) | DbErr::Query(RuntimeErr::SqlxError(e)) => {
            match e.deref() {
                sqlx::Error::Database(db) => db.constraint().map(str::to_owned),
                _ => None,
            }
        }
        _ => None,
    }
}

/// Whether SQLite's message (`UNIQUE constraint failed: users.email`) lists exactly `index`'s columns.
fn names_columns(message: &str, index: &UniqueIndex) -> bool {
    let Some(list) = message.split("UNIQUE constraint failed: ").nth(1) else {
        return false;
    };
    let named: Vec<&str> = list.split(',').map(str::trim).collect();
    named.len() == index.columns.len()
        && index
            .columns
            .iter()
            .all(|column| named.contains(&format!("{}.{column}", index.table).as_str()))
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

#[cfg(test)]
mod tests {
    use securecrud_migration::{USERS_EMAIL_UNIQUE, USERS_USERNAME_UNIQUE};

    use super::*;

    #[test]
    fn sqlite_messages_name_the_index_by_its_exact_columns() {
        let email = "UNIQUE constraint failed: users.email";
        assert!(names_columns(email, &USERS_EMAIL_UNIQUE));
        assert!(!names_columns(email, &USERS_USERNAME_UNIQUE));
        assert!(!names_columns(
            "UNIQUE constraint failed: sessions.refresh_hash",
            &USERS_EMAIL_UNIQUE
        ));
        assert!(!names_columns(
            "UNIQUE constraint failed: outbox.email",
            &USERS_EMAIL_UNIQUE
        ));
        assert!(!names_columns("something else", &USERS_EMAIL_UNIQUE));
    }
}
