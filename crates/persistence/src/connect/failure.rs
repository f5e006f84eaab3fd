//! Why the first connection at start-up failed, said without credentials: where the URL points, the cause
//! from one direct connection, and whether waiting can cure it.

use std::time::Duration;

use sea_orm::DbErr;

use super::url::sqlite_path;

/// How long start-up keeps trying to open the first connection.
pub(super) const STARTUP_CONNECT_TIMEOUT: Duration = Duration::from_secs(15);
/// The pause between those tries.
pub(super) const STARTUP_CONNECT_RETRY: Duration = Duration::from_millis(250);

/// Where a database URL points, without its user or password: `host:port/database` for PostgreSQL, the
/// file for SQLite.
pub(super) fn describe_target(url: &str) -> String {
    if url.starts_with("sqlite:") {
        return format!("sqlite:{}", sqlite_path(url));
    }
    match url::Url::parse(url) {
        Ok(parsed) => {
            // A `host` parameter (a Unix socket folder, or a host) wins over the URL's host.
            let host = parsed
                .query_pairs()
                .find(|(key, _)| key == "host")
                .map(|(_, value)| value.into_owned())
                .or_else(|| parsed.host_str().map(str::to_owned))
                .unwrap_or_else(|| "localhost".to_owned());
            format!("{host}:{}{}", parsed.port().unwrap_or(5432), parsed.path())
        }
        Err(_) => "DATABASE_URL".to_owned(),
    }
}

/// Why a connect failed, and whether trying again may help. A pool reports only that it timed out while
/// the server refused it: then one direct connection (given at most `left`, the time start-up has left)
/// says what really happens.
pub(super) async fn diagnose(url: &str, err: DbErr, left: Duration) -> (String, bool) {
    use sea_orm::{RuntimeErr, sqlx::Error};
    let pool_timed_out = match &err {
        DbErr::ConnectionAcquire(_) => true,
        DbErr::Conn(RuntimeErr::SqlxError(inner)) => matches!(&**inner, Error::PoolTimedOut),
        _ => false,
    };
    if pool_timed_out && !url.starts_with("sqlite:") {
        use sea_orm::sqlx::{Connection, postgres::PgConnectOptions, postgres::PgConnection};
        let direct = match url.parse::<PgConnectOptions>() {
            Ok(options) => tokio::time::timeout(
                left.max(Duration::from_millis(100)),
                PgConnection::connect_with(&options),
            )
            .await
            .unwrap_or(Err(Error::PoolTimedOut)),
            Err(parse) => Err(parse),
        };
        return match direct {
            Ok(conn) => {
                let _ = conn.close().await;
                (err.to_string(), true)
            }
            Err(Error::PoolTimedOut) => ("no answer".to_owned(), true),
            Err(direct) => {
                let transient = is_transient_sqlx(&direct);
                (direct.to_string(), transient)
            }
        };
    }
    let transient = is_transient(&err);
    (err.to_string(), transient)
}

/// Whether a failed connect may succeed if tried again (the server is starting, busy or briefly down), as
/// opposed to a wrong URL, password or database name.
pub(super) fn is_transient(err: &DbErr) -> bool {
    use sea_orm::RuntimeErr;
    match err {
        DbErr::ConnectionAcquire(_) => true,
        DbErr::Conn(RuntimeErr::SqlxError(err)) => is_transient_sqlx(err),
        _ => false,
    }
}

/// [`is_transient`] for the database library's own error.
fn is_transient_sqlx(err: &sea_orm::sqlx::Error) -> bool {
    use sea_orm::sqlx::{Error, sqlite::SqliteError};
    match err {
        Error::Io(_) | Error::PoolTimedOut => true,
        // SQLite: the file is locked (5, SQLITE_BUSY, and its extended codes; 6, SQLITE_LOCKED) by
        // another instance creating it, switching it to WAL or migrating it: opening a connection then
        // can fail at once, without waiting out the busy timeout.
        Error::Database(db) if db.try_downcast_ref::<SqliteError>().is_some() => db
            .code()
            .and_then(|code| code.parse::<i32>().ok())
            .is_some_and(|code| matches!(code & 0xff, 5 | 6)),
        // PostgreSQL: 57P03, the server is starting up or shutting down; 53300, too many connections.
        Error::Database(db) => db
            .code()
            .is_some_and(|code| matches!(code.as_ref(), "57P03" | "53300")),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::describe_target;

    #[test]
    fn a_database_is_named_by_where_it_is_never_by_its_credentials() {
        assert_eq!(
            describe_target("postgres://app:hunter2@db.internal:6432/securecrud"),
            "db.internal:6432/securecrud"
        );
        assert_eq!(
            describe_target("postgresql:///securecrud?host=/run/postgresql"),
            "/run/postgresql:5432/securecrud"
        );
        assert_eq!(
            describe_target("sqlite://data/securecrud.db?mode=rwc"),
            "sqlite:data/securecrud.db"
        );
    }
}
