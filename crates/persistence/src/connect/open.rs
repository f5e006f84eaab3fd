//! Opening the pool: its options, and the first connection tried again while the database is starting.

use std::{
    sync::{Arc, atomic::AtomicBool},
    time::Duration,
};

use anyhow::Context;
use sea_orm::{
    ConnectOptions as SeaConnectOptions, DatabaseConnection,
    sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous},
};

use super::{
    Database, DatabaseUrl, WAIT_BUCKETS, WriteQueue,
    failure::{STARTUP_CONNECT_RETRY, STARTUP_CONNECT_TIMEOUT, describe_target, diagnose},
    url::create_sqlite_folder,
};
use crate::{Clock, session_cache::SessionCache};

/// How to reach the database.
#[derive(Debug, Clone)]
pub struct ConnectOptions {
    pub max_connections: u32,
    /// How long a query waits for a pooled connection (or, while the server refuses connections, for one
    /// to open) before giving up. It bounds how long a request waits when the database has just gone away,
    /// before [`Database::watch_availability`] notices; keep it under a second.
    pub acquire_timeout: Duration,
    /// SQLite: how long a writer waits for its turn and for the file's write lock.
    pub sqlite_write_timeout: Duration,
    /// How long a cached session check may be used (zero: every check asks the database). See
    /// [`Database::find_session_user`] and [`Database::watch_sessions`].
    pub session_cache_max_age: Duration,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        Self {
            max_connections: 20,
            acquire_timeout: Duration::from_millis(500),
            sqlite_write_timeout: Duration::from_secs(5),
            session_cache_max_age: Duration::from_secs(1),
        }
    }
}

impl Database {
    /// Connects to `url` (`sqlite://…` or `postgres://…`). For SQLite the file and its folder are created if
    /// missing, and every connection uses WAL, foreign keys, `synchronous=NORMAL` and a busy timeout so that
    /// concurrent writers wait for each other instead of failing.
    ///
    /// # Errors
    /// If the SQLite folder cannot be created, or the server cannot be reached.
    pub async fn connect(url: &DatabaseUrl, options: &ConnectOptions) -> anyhow::Result<Self> {
        let url = url.expose();
        let is_sqlite = url.starts_with("sqlite:");
        if is_sqlite {
            create_sqlite_folder(url)?;
        }
        let conn = first_connection(url, pool_options(url, is_sqlite, options)).await?;
        Ok(Self {
            conn,
            sessions: Arc::new(SessionCache::new(options.session_cache_max_age, !is_sqlite)),
            pending: None,
            writers: is_sqlite.then(|| WriteQueue {
                turn: Arc::default(),
                timeout: options.sqlite_write_timeout,
            }),
            available: Arc::new(AtomicBool::new(true)),
            acquire_timeout: options.acquire_timeout,
            runtime_pools: Arc::default(),
            begin_waits: prometheus::Histogram::with_opts(
                prometheus::HistogramOpts::new(
                    "securecrud_db_begin_wait_seconds",
                    "Time a transaction waited to start: for a pooled connection (and on SQLite for the write turn)",
                )
                .buckets(WAIT_BUCKETS.to_vec()),
            )
            .context("the wait histogram's options are invalid")?,
            clock: Clock::default(),
            _turn: None,
        })
    }
}

/// The pool's options: at most `options.max_connections`, SQLite's pragmas on every connection, a
/// PostgreSQL connection pinged when it sat idle.
fn pool_options(url: &str, is_sqlite: bool, options: &ConnectOptions) -> SeaConnectOptions {
    let mut sea = SeaConnectOptions::new(url.to_owned());
    sea.max_connections(options.max_connections)
        .min_connections(1)
        .acquire_timeout(options.acquire_timeout)
        .connect_timeout(options.acquire_timeout)
        .sqlx_logging(false);
    if is_sqlite {
        // A SQLite connection is a file handle in this process, never a stale socket: pinging it before
        // every statement would only add a round trip to its worker thread.
        sea.test_before_acquire(false);
    } else {
        // A PostgreSQL connection that sat idle may have been cut (a restart, a proxy's idle timeout), so
        // it is pinged first; one in steady use is not (that round trip cost the task list 13%).
        sea.test_before_acquire_if_idle_for(Duration::from_secs(1));
    }
    let busy_timeout = options.sqlite_write_timeout;
    sea.map_sqlx_sqlite_opts(move |opts| {
        opts.create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(busy_timeout)
            // What is deleted or overwritten is zeroed in the file, not left in free space to be carved
            // out of it or of a page-by-page backup (an erased account's details, a sent message).
            .pragma("secure_delete", "ON")
    });
    sea
}

/// The pool, once its first connection opens. The first connection may take longer than a request may wait (a
/// busy server, instances starting together, a database still starting): it is tried again until
/// `STARTUP_CONNECT_TIMEOUT`. A pool that cannot connect says only that it timed out: the cause (refused,
/// authentication, TLS, no such database) comes from one direct connection, and a cause that waiting cannot
/// cure fails at once.
async fn first_connection(url: &str, sea: SeaConnectOptions) -> anyhow::Result<DatabaseConnection> {
    let target = describe_target(url);
    let deadline = std::time::Instant::now() + STARTUP_CONNECT_TIMEOUT;
    let mut warned = false;
    loop {
        match sea_orm::Database::connect(sea.clone()).await {
            Ok(conn) => return Ok(conn),
            Err(err) => {
                let left = deadline.saturating_duration_since(std::time::Instant::now());
                let (cause, transient) = diagnose(url, err, left).await;
                if !transient || std::time::Instant::now() >= deadline {
                    anyhow::bail!("could not connect to the database at {target}: {cause}");
                }
                if !warned {
                    log::warn!(
                        "the database at {target} does not answer ({cause}); trying again for up to {} s",
                        STARTUP_CONNECT_TIMEOUT.as_secs()
                    );
                    warned = true;
                }
                tokio::time::sleep(STARTUP_CONNECT_RETRY).await;
            }
        }
    }
}
