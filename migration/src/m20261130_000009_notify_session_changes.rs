//! PostgreSQL only: every change that can end a session or alter what a session check returns (a user row
//! updated or deleted; a session revoked, shortened or deleted while live; either table truncated) sends a notification on
//! [`SESSION_CHANGES_CHANNEL`](crate::SESSION_CHANGES_CHANNEL) when its transaction commits, with the payload
//! `u:<user id>`, `s:<session id>` or `*` (everything). Instances that cache session checks listen to it (the persistence crate's
//! session cache), so a revocation made anywhere (another instance, the command line, plain SQL) reaches them.
//!
//! On SQLite there is no other process to tell: `up` and `down` do nothing.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DbBackend;

#[derive(Debug, DeriveMigrationName)]
pub struct Migration;

const UP: &str = r"
CREATE FUNCTION securecrud_notify_user_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('{channel}', 'u:' || OLD.id::text);
    RETURN NULL;
END $$;

CREATE FUNCTION securecrud_notify_session_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('{channel}', 's:' || OLD.id::text);
    RETURN NULL;
END $$;

CREATE TRIGGER securecrud_users_changed
    AFTER UPDATE OR DELETE ON users
    FOR EACH ROW EXECUTE FUNCTION securecrud_notify_user_change();

CREATE TRIGGER securecrud_sessions_changed
    AFTER UPDATE ON sessions
    FOR EACH ROW
    WHEN (OLD.revoked_at IS DISTINCT FROM NEW.revoked_at
          OR NEW.expires_at < OLD.expires_at
          OR OLD.user_id IS DISTINCT FROM NEW.user_id)
    EXECUTE FUNCTION securecrud_notify_session_change();

CREATE FUNCTION securecrud_notify_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('{channel}', '*');
    RETURN NULL;
END $$;

CREATE TRIGGER securecrud_users_truncated
    AFTER TRUNCATE ON users
    FOR EACH STATEMENT EXECUTE FUNCTION securecrud_notify_truncate();

CREATE TRIGGER securecrud_sessions_truncated
    AFTER TRUNCATE ON sessions
    FOR EACH STATEMENT EXECUTE FUNCTION securecrud_notify_truncate();

CREATE TRIGGER securecrud_sessions_deleted
    AFTER DELETE ON sessions
    FOR EACH ROW
    WHEN (OLD.revoked_at IS NULL)
    EXECUTE FUNCTION securecrud_notify_session_change();
";

const DOWN: &str = r"
DROP TRIGGER IF EXISTS securecrud_sessions_truncated ON sessions;
DROP TRIGGER IF EXISTS securecrud_users_truncated ON users;
DROP TRIGGER IF EXISTS securecrud_sessions_deleted ON sessions;
DROP TRIGGER IF EXISTS securecrud_sessions_changed ON sessions;
DROP TRIGGER IF EXISTS securecrud_users_changed ON users;
DROP FUNCTION IF EXISTS securecrud_notify_truncate();
DROP FUNCTION IF EXISTS securecrud_notify_session_change();
DROP FUNCTION IF EXISTS securecrud_notify_user_change();
";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() != DbBackend::Postgres {
            return Ok(());
        }
        manager
            .get_connection()
            .execute_unprepared(&UP.replace("{channel}", crate::SESSION_CHANGES_CHANNEL))
            .await?;
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
