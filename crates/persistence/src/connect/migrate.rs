//! Running and reporting the migrations.

use anyhow::Context;
use sea_orm::ConnectionTrait;
use securecrud_migration::{Migrator, MigratorTrait};

use super::Database;
use crate::RepoError;

/// One migration and whether it has been applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrationStatus {
    pub name: String,
    pub applied: bool,
}

impl Database {
    /// Applies every pending migration.
    ///
    /// # Errors
    /// If a migration fails; it is rolled back where the engine allows.
    pub async fn migrate_up(&self) -> anyhow::Result<()> {
        // In one write transaction on one connection (`BEGIN IMMEDIATE` on SQLite): every migration or none,
        // and the check at start-up costs one connection (each step on the pool opened a new one: on
        // PostgreSQL a TLS handshake each). Instances starting at once migrate one after another (SQLite's
        // write lock; on PostgreSQL an advisory lock, as reading the applied migrations does not block): the
        // first applies what is pending, the others then find nothing to do.
        let txn = self
            .begin()
            .await
            .context("starting the migration transaction failed")?;
        if self.conn.get_database_backend() == sea_orm::DbBackend::Postgres {
            txn.conn
                .execute_unprepared(&format!("SELECT pg_advisory_xact_lock({MIGRATION_LOCK})"))
                .await
                .context("waiting for the migration lock failed")?;
        }
        Migrator::up(&txn.conn, None)
            .await
            .context("applying migrations failed")?;
        txn.commit()
            .await
            .context("committing the migrations failed")
    }

    /// Reverts the last `steps` applied migrations.
    ///
    /// # Errors
    /// If a `down` migration fails.
    pub async fn migrate_down(&self, steps: u32) -> anyhow::Result<()> {
        Migrator::down(&self.conn, Some(steps))
            .await
            .context("reverting migrations failed")
    }

    /// Every known migration, oldest first, and whether it is applied. Read from the migrations table
    /// itself (never created here: a database no migration ran on has every migration pending), so that a
    /// migration applied by a newer version of the api, which this one does not know, is not an error: a
    /// rolling upgrade runs old and new instances on the new schema for a while.
    ///
    /// # Errors
    /// If the database does not answer.
    pub async fn migration_status(&self) -> anyhow::Result<Vec<MigrationStatus>> {
        let backend = self.conn.get_database_backend();
        let applied: Vec<String> = match self
            .conn
            .query_all_raw(sea_orm::Statement::from_string(
                backend,
                "SELECT version FROM seaql_migrations",
            ))
            .await
        {
            Ok(rows) => rows
                .iter()
                .map(|row| row.try_get::<String>("", "version"))
                .collect::<Result<_, _>>()
                .context("reading applied migrations failed")?,
            Err(err) => match RepoError::from(err) {
                RepoError::Unavailable(err) => {
                    return Err(err).context("reading applied migrations failed");
                }
                // No migrations table yet: nothing is applied.
                _ => Vec::new(),
            },
        };
        Ok(Migrator::migrations()
            .iter()
            .map(|m| MigrationStatus {
                name: m.name().to_owned(),
                applied: applied.iter().any(|a| a == m.name()),
            })
            .collect())
    }
}

/// The PostgreSQL advisory lock key that serialises migrations (any constant the database's other users do
/// not take).
const MIGRATION_LOCK: i64 = 0x5EC0_C7D0;
