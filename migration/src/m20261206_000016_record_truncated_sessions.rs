//! PostgreSQL only: `TRUNCATE sessions` (or `TRUNCATE users CASCADE`, which takes the sessions with it) fires no
//! row trigger, so the endings of `m20261206_000015_record_session_endings` would miss every session it
//! removes. A statement trigger before the truncation records each live session as ended now.
//!
//! SQLite has no `TRUNCATE`: a `DELETE` without `WHERE` fires the row triggers. `up` and `down` do nothing there.

use sea_orm_migration::{prelude::*, sea_orm::DbBackend};

#[derive(Debug, DeriveMigrationName)]
pub struct Migration;

const UP: &str = r"
CREATE FUNCTION securecrud_record_sessions_truncated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO session_endings (session_id, ended_at)
        SELECT id, now() FROM sessions WHERE revoked_at IS NULL AND expires_at > now();
    RETURN NULL;
END $$;

CREATE TRIGGER securecrud_sessions_truncating
    BEFORE TRUNCATE ON sessions
    FOR EACH STATEMENT EXECUTE FUNCTION securecrud_record_sessions_truncated();
";

const DOWN: &str = r"
DROP TRIGGER IF EXISTS securecrud_sessions_truncating ON sessions;
DROP FUNCTION IF EXISTS securecrud_record_sessions_truncated();
";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() != DbBackend::Postgres {
            return Ok(());
        }
        manager.get_connection().execute_unprepared(UP).await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() != DbBackend::Postgres {
            return Ok(());
        }
        manager.get_connection().execute_unprepared(DOWN).await?;
        Ok(())
    }
}
