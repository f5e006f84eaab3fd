//! The only two ways to the connection, so that no write can skip what every write needs.
//!
//! - [`Database::read`] gives a [`Reader`]: a statement through it that would write fails, naming itself.
//! - [`Database::write`] gives a [`Writer`], and is the only way to one: it waits for this writer's turn on
//!   SQLite (see `WriteQueue`) and, for a write that changes what a cached session check has read, marks it
//!   stale in the session cache when the writer drops, however the write ended. A statement through it that
//!   writes `users` or `sessions` fails unless the write said what it does to the session cache ([`Effect`]).
//!
//! The connection itself is a private field of [`Database`], out of reach of every other module: a new
//! repository method cannot write without going through here. The checks read the statement's SQL as
//! sea-query writes it (`INSERT INTO t`, `UPDATE t`, `DELETE FROM t`, `SELECT …`), in every build: a write
//! that skipped them would fail in the tests, which run every write on both engines.

use sea_orm::{ConnectionTrait, DbBackend, DbErr, ExecResult, QueryResult, Statement};
use tokio::sync::OwnedMutexGuard;

use super::{Database, StaleOnDrop};
use crate::{RepoError, session_cache::Stale};

/// What a write does to the session cache (see [`Database::write`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Effect {
    /// It writes neither `users` nor `sessions` (a statement that does is refused).
    Elsewhere,
    /// It changes `users` or `sessions` in a way a cached session check may have read: `Stale` is marked
    /// out of date when the write ends.
    Stale(Stale),
    /// It writes `users` or `sessions`, but nothing a cached check has read: a new row, a session's
    /// `last_used_at`, a password hash. Said on purpose, where the write is.
    Unseen,
}

/// Reads only (see the module).
pub(crate) struct Reader<'a, C>(&'a C);

/// One write's connection, from [`Database::write`] only (see the module).
pub(crate) struct Writer<'a, C> {
    conn: &'a C,
    touches_sessions: bool,
    /// Dropped before the turn: the cache is marked while no other writer has started.
    stale: StaleOnDrop<'a, C>,
    _turn: Option<OwnedMutexGuard<()>>,
}

impl<C> Database<C> {
    /// The connection, for reads (see the module).
    pub(crate) fn read(&self) -> Reader<'_, C> {
        Reader(&self.conn)
    }

    /// The connection for one write, once it is this writer's turn (see the module). Inside a transaction,
    /// which holds its turn from `begin` on, the marks wait for the transaction's end.
    ///
    /// # Errors
    /// [`RepoError::Unavailable`] when the turn does not come within the pool's acquire timeout.
    pub(crate) async fn write(&self, effect: Effect) -> Result<Writer<'_, C>, RepoError> {
        let turn = self.write_turn().await?;
        let stale = match effect {
            Effect::Stale(stale) => Some(stale),
            Effect::Elsewhere | Effect::Unseen => None,
        };
        Ok(Writer {
            conn: &self.conn,
            touches_sessions: effect != Effect::Elsewhere,
            stale: StaleOnDrop { db: self, stale },
            _turn: turn,
        })
    }
}

impl<C> Writer<'_, C> {
    /// Narrows (or, with `None`, cancels) what is marked stale, once the write's outcome is known.
    pub(crate) fn set_stale(&mut self, stale: Option<Stale>) {
        self.stale.set(stale);
    }
}

/// What a statement does: reads, or writes the table it names (`""` when the statement is neither a plain
/// read nor an `INSERT`/`UPDATE`/`DELETE` of one table).
#[derive(Debug, PartialEq, Eq)]
enum Kind<'a> {
    Read,
    Write(&'a str),
}

fn kind(sql: &str) -> Kind<'_> {
    let sql = sql.trim_start();
    // One statement only: text after a `;` could be anything.
    if sql.trim_end().trim_end_matches(';').contains(';') {
        return Kind::Write("");
    }
    let mut words = sql.split_whitespace();
    // Every statement passes here: the verb is compared in place, not upper-cased into a new string.
    let verb = words.next().unwrap_or_default();
    let is = |word: &str| verb.eq_ignore_ascii_case(word);
    let table = if is("SELECT") {
        return Kind::Read;
    } else if is("UPDATE") {
        words.next()
    } else if is("INSERT") || is("DELETE") {
        words.nth(1)
    } else {
        None
    };
    // `"schema"."table"` names the table by its last part.
    let table = table
        .and_then(|name| name.rsplit('.').next())
        .map_or("", |name| name.trim_matches(|c| c == '"' || c == '`'));
    Kind::Write(table)
}

fn refused(why: &str, statement: &str) -> DbErr {
    let start: String = statement.chars().take(80).collect();
    DbErr::Custom(format!("{why}: {start}"))
}

impl<C: ConnectionTrait> Reader<'_, C> {
    fn check(&self, sql: &str) -> Result<(), DbErr> {
        match kind(sql) {
            Kind::Read => Ok(()),
            Kind::Write(_) => Err(refused(
                "a write through Database::read (use Database::write)",
                sql,
            )),
        }
    }
}

impl<C: ConnectionTrait> Writer<'_, C> {
    fn check(&self, sql: &str) -> Result<(), DbErr> {
        match kind(sql) {
            // A statement whose table cannot be told (`WITH …`, `REPLACE …`, a comment first) may be one.
            Kind::Write(table)
                if !self.touches_sessions
                    && (table.is_empty()
                        || table.eq_ignore_ascii_case("users")
                        || table.eq_ignore_ascii_case("sessions")) =>
            {
                Err(refused(
                    "a write to users or sessions must say what it does to the session cache (Effect)",
                    sql,
                ))
            }
            _ => Ok(()),
        }
    }
}

#[async_trait::async_trait]
impl<C: ConnectionTrait + Send + Sync> ConnectionTrait for Reader<'_, C> {
    fn get_database_backend(&self) -> DbBackend {
        self.0.get_database_backend()
    }

    async fn execute_raw(&self, stmt: Statement) -> Result<ExecResult, DbErr> {
        self.check(&stmt.sql)?;
        self.0.execute_raw(stmt).await
    }

    async fn execute_unprepared(&self, sql: &str) -> Result<ExecResult, DbErr> {
        self.check(sql)?;
        self.0.execute_unprepared(sql).await
    }

    async fn query_one_raw(&self, stmt: Statement) -> Result<Option<QueryResult>, DbErr> {
        self.check(&stmt.sql)?;
        self.0.query_one_raw(stmt).await
    }

    async fn query_all_raw(&self, stmt: Statement) -> Result<Vec<QueryResult>, DbErr> {
        self.check(&stmt.sql)?;
        self.0.query_all_raw(stmt).await
    }
}

#[async_trait::async_trait]
impl<C: ConnectionTrait + Send + Sync> ConnectionTrait for Writer<'_, C> {
    fn get_database_backend(&self) -> DbBackend {
        self.conn.get_database_backend()
    }

    async fn execute_raw(&self, stmt: Statement) -> Result<ExecResult, DbErr> {
        self.check(&stmt.sql)?;
        self.conn.execute_raw(stmt).await
    }

    async fn execute_unprepared(&self, sql: &str) -> Result<ExecResult, DbErr> {
        self.check(sql)?;
        self.conn.execute_unprepared(sql).await
    }

    async fn query_one_raw(&self, stmt: Statement) -> Result<Option<QueryResult>, DbErr> {
        self.check(&stmt.sql)?;
        self.conn.query_one_raw(stmt).await
    }

    async fn query_all_raw(&self, stmt: Statement) -> Result<Vec<QueryResult>, DbErr> {
        self.check(&stmt.sql)?;
        self.conn.query_all_raw(stmt).await
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, sea_query::Expr};

    use super::*;
    use crate::{ConnectOptions, DatabaseUrl, entity::users};

    /// What a new repository method would do wrong, on a real (SQLite) database: each is refused.
    #[tokio::test]
    async fn a_write_that_skips_its_turn_or_the_session_cache_fails() {
        let dir = tempfile::tempdir().unwrap();
        let url = DatabaseUrl::parse(&format!("sqlite://{}/a.db?mode=rwc", dir.path().display()))
            .unwrap();
        let db = Database::connect(&url, &ConnectOptions::default())
            .await
            .unwrap();
        db.migrate_up().await.unwrap();
        let deactivate = || {
            users::Entity::update_many()
                .col_expr(users::Column::IsActive, Expr::value(false))
                .filter(users::Column::Username.eq("nobody"))
        };

        let through_read = deactivate().exec(&db.read()).await.unwrap_err();
        assert!(
            through_read
                .to_string()
                .contains("a write through Database::read"),
            "{through_read}"
        );
        let unsaid = deactivate()
            .exec(&db.write(Effect::Elsewhere).await.unwrap())
            .await
            .unwrap_err();
        assert!(
            unsaid.to_string().contains("must say what it does"),
            "{unsaid}"
        );
        // Said, it goes through, and a read goes through `read`.
        let writer = db.write(Effect::Unseen).await.unwrap();
        deactivate().exec(&writer).await.unwrap();
        drop(writer);
        assert_eq!(
            users::Entity::find().all(&db.read()).await.unwrap().len(),
            0
        );
    }

    #[test]
    fn statements_are_read_as_sea_query_writes_them() {
        assert_eq!(kind(r#"SELECT "id" FROM "users""#), Kind::Read);
        assert_eq!(kind(r#"  select 1"#), Kind::Read);
        assert_eq!(
            kind(r#"UPDATE "sessions" SET "x" = $1"#),
            Kind::Write("sessions")
        );
        assert_eq!(
            kind(r#"INSERT INTO "users" ("id") VALUES ($1) RETURNING "id""#),
            Kind::Write("users")
        );
        assert_eq!(
            kind(r#"DELETE FROM "tasks" WHERE "id" = ?"#),
            Kind::Write("tasks")
        );
        assert_eq!(kind("PRAGMA optimize"), Kind::Write(""));
        assert_eq!(
            kind("WITH x AS (DELETE FROM users) SELECT 1"),
            Kind::Write("")
        );
        assert_eq!(kind("SELECT 1; DELETE FROM users"), Kind::Write(""));
        assert_eq!(kind("SELECT 1;"), Kind::Read);
        assert_eq!(
            kind(r#"UPDATE "public"."Users" SET x = 1"#),
            Kind::Write("Users")
        );
    }
}
