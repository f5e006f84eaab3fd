//! `session_endings`: one row for every session that ended while it was live, written by triggers in the
//! transaction that ended it, whatever ended it: the api (logout, logout-all, a password change or reset,
//! refresh-token reuse, deactivation, an admin's revoke, a second-factor reset, the account's deletion), the
//! command line, or plain SQL. The revocation feed (`GET /api/v1/auth/revocations`) streams these rows in
//! the order of `cursor`.
//!
//! - A session is revoked (`revoked_at` set where it was empty): `ended_at` is its `revoked_at`.
//! - A live session is deleted (its user deleted; foreign keys cascade): `ended_at` is the database's now.
//!   Sessions past their `expires_at` are not endings: no access token outlives its session's expiry.
//!
//! `cursor` is the feed's order, and a subscriber resumes after the last one it saw, so a row must never
//! appear with a cursor lower than one already visible. `id` cannot be it on PostgreSQL: transactions take
//! ids in one order and commit in another. So the rows are written with no cursor, and the api's sequencer
//! gives them one (`nextval` of `session_ending_cursor`) in a transaction that holds an advisory lock:
//! sequencers run one at a time, each after the previous one committed, so cursors become visible in
//! increasing order. On SQLite, where one transaction writes at a time and ids never go back
//! (`AUTOINCREMENT`), the sequencer uses the id.

use sea_orm_migration::{prelude::*, schema::*, sea_orm::DbBackend};

#[derive(Debug, DeriveMigrationName)]
pub struct Migration;

const POSTGRES_UP: &str = r"
CREATE SEQUENCE session_ending_cursor;

CREATE FUNCTION securecrud_record_session_revoked() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO session_endings (session_id, ended_at) VALUES (NEW.id, NEW.revoked_at);
    RETURN NULL;
END $$;

CREATE FUNCTION securecrud_record_session_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO session_endings (session_id, ended_at) VALUES (OLD.id, now());
    RETURN NULL;
END $$;

CREATE TRIGGER securecrud_session_revoked
    AFTER UPDATE OF revoked_at ON sessions
    FOR EACH ROW
    WHEN (OLD.revoked_at IS NULL AND NEW.revoked_at IS NOT NULL)
    EXECUTE FUNCTION securecrud_record_session_revoked();

CREATE TRIGGER securecrud_live_session_deleted
    AFTER DELETE ON sessions
    FOR EACH ROW
    WHEN (OLD.revoked_at IS NULL AND OLD.expires_at > now())
    EXECUTE FUNCTION securecrud_record_session_deleted();
";

const POSTGRES_DOWN: &str = r"
DROP TRIGGER IF EXISTS securecrud_live_session_deleted ON sessions;
DROP TRIGGER IF EXISTS securecrud_session_revoked ON sessions;
DROP FUNCTION IF EXISTS securecrud_record_session_deleted();
DROP FUNCTION IF EXISTS securecrud_record_session_revoked();
DROP SEQUENCE IF EXISTS session_ending_cursor;
";

/// Timestamps are stored as RFC 3339 text on SQLite (`…T…Z`), which compares in time order.
const SQLITE_UP: &[&str] = &[
    r"
CREATE TRIGGER securecrud_session_revoked
    AFTER UPDATE OF revoked_at ON sessions
    FOR EACH ROW
    WHEN OLD.revoked_at IS NULL AND NEW.revoked_at IS NOT NULL
BEGIN
    INSERT INTO session_endings (session_id, ended_at) VALUES (NEW.id, NEW.revoked_at);
END",
    r"
CREATE TRIGGER securecrud_live_session_deleted
    AFTER DELETE ON sessions
    FOR EACH ROW
    WHEN OLD.revoked_at IS NULL AND OLD.expires_at > strftime('%Y-%m-%dT%H:%M:%fZ', 'now')
BEGIN
    INSERT INTO session_endings (session_id, ended_at)
        VALUES (OLD.id, strftime('%Y-%m-%dT%H:%M:%fZ', 'now'));
END",
];

const SQLITE_DOWN: &[&str] = &[
    "DROP TRIGGER IF EXISTS securecrud_live_session_deleted",
    "DROP TRIGGER IF EXISTS securecrud_session_revoked",
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(SessionEndings::Table)
                    .col(big_pk_auto(SessionEndings::Id))
                    .col(uuid(SessionEndings::SessionId))
                    .col(timestamp_with_time_zone(SessionEndings::EndedAt))
                    .col(big_integer_null(SessionEndings::Cursor))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_session_endings_cursor")
                    .table(SessionEndings::Table)
                    .col(SessionEndings::Cursor)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_session_endings_ended_at")
                    .table(SessionEndings::Table)
                    .col(SessionEndings::EndedAt)
                    .to_owned(),
            )
            .await?;
        let db = manager.get_connection();
        if manager.get_database_backend() == DbBackend::Postgres {
            db.execute_unprepared(POSTGRES_UP).await?;
        } else {
            for statement in SQLITE_UP {
                db.execute_unprepared(statement).await?;
            }
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        if manager.get_database_backend() == DbBackend::Postgres {
            db.execute_unprepared(POSTGRES_DOWN).await?;
        } else {
            for statement in SQLITE_DOWN {
                db.execute_unprepared(statement).await?;
            }
        }
        manager
            .drop_table(Table::drop().table(SessionEndings::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum SessionEndings {
    Table,
    Id,
    SessionId,
    EndedAt,
    Cursor,
}
