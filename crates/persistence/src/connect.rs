//! Opening the database and running migrations.

use std::{
    sync::{
        Arc, Mutex, PoisonError,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use tokio::sync::OwnedMutexGuard;

use anyhow::Context;
use sea_orm::{
    ConnAcquireErr, ConnectOptions as SeaConnectOptions, ConnectionTrait, DatabaseConnection,
    DatabaseTransaction, DbErr, SqliteTransactionMode, TransactionOptions, TransactionTrait,
    sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous},
};
use securecrud_migration::{Migrator, MigratorTrait};

use crate::{
    Clock, RepoError,
    session_cache::{SessionCache, Stale},
};

mod access;
mod failure;
mod url;

pub(crate) use access::Effect;
use failure::{STARTUP_CONNECT_RETRY, STARTUP_CONNECT_TIMEOUT, describe_target, diagnose};
pub use url::DatabaseUrl;
use url::create_sqlite_folder;

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

/// The repository over a connection pool to SQLite or PostgreSQL (cheap to clone: clones share the pool), or,
/// as [`Transaction`], over one open transaction: every repository method works on both, so a use case can
/// make several changes (and the audit event recording them) atomically.
#[derive(Debug, Clone)]
pub struct Database<C = DatabaseConnection> {
    /// Reached only through [`Database::read`] and [`Database::write`] (see `access`).
    conn: C,
    /// This instance's cache of session checks, shared by the pool and its transactions.
    pub(crate) sessions: Arc<SessionCache>,
    /// In a transaction: what its writes made stale in the cache, applied when it ends (committed, rolled
    /// back, or dropped mid-commit by a cancelled request: an extra invalidation is harmless, a missed one
    /// is not).
    pending: Option<Arc<PendingStale>>,
    /// SQLite, on the pool: the queue writers take turns in (see `Database::write_turn`).
    writers: Option<WriteQueue>,
    /// Whether the database answered its last probe (see [`Database::watch_availability`]).
    available: Arc<AtomicBool>,
    /// How long a query waits for a pooled connection.
    acquire_timeout: Duration,
    /// PostgreSQL: the pools of the server's worker runtimes (see [`Database::for_this_runtime`]), counted in
    /// [`Database::pool_status`].
    runtime_pools: Arc<Mutex<Vec<sea_orm::sqlx::PgPool>>>,
    /// How long starting a transaction waited (for a pooled connection, and on SQLite for the write turn);
    /// registered in the api's metrics (see [`Database::begin_waits`]).
    begin_waits: prometheus::Histogram,
    /// The time its rows are written and compared with, shared by every pool and transaction of it.
    clock: Clock,
    /// SQLite, in a transaction: its turn, held until it commits or is dropped (declared after `conn`, so
    /// dropped after it).
    _turn: Option<Arc<OwnedMutexGuard<()>>>,
}

/// SQLite allows one writer at a time, and a writer that finds the database locked polls for it, sleeping
/// longer after each try (1, 2, 5, 10, … up to 100 ms): with dozens of writers at once, those sleeps, not the
/// work, made the slowest requests slow (a refresh's p99 was 0.5 s at 64 connections). So this process's
/// writers queue here first, in arrival order, and each is woken the moment the one before it is done. The
/// price is throughput at saturation (the hand-off to the connection's thread is now inside the queue):
/// measured in docs/BENCHMARKS.md, with the variants tried. (Other processes on the same file still meet
/// SQLite's busy timeout.)
#[derive(Debug, Clone)]
struct WriteQueue {
    turn: Arc<tokio::sync::Mutex<()>>,
    timeout: Duration,
}

/// The repository inside one transaction, from [`Database::begin`]. Dropping it without
/// [`Transaction::commit`] rolls everything back.
pub type Transaction = Database<DatabaseTransaction>;

/// What repository methods run on: the pool or a transaction.
pub trait Conn: ConnectionTrait + TransactionTrait + Send + Sync {}

impl<T: ConnectionTrait + TransactionTrait + Send + Sync> Conn for T {}

impl Transaction {
    /// Makes every change of this transaction permanent.
    ///
    /// # Errors
    /// [`RepoError::Unavailable`] or [`RepoError::Unexpected`] when the commit fails (nothing was changed,
    /// unless the connection was lost during the commit: then it is unknown).
    pub async fn commit(self) -> Result<(), RepoError> {
        // What this transaction made stale is applied when `self.pending` drops, after the commit (or the
        // failed commit: a lost connection may still have committed).
        Ok(self.conn.commit().await?)
    }
}

/// What a transaction's writes made stale in the session cache, applied when the transaction is dropped.
#[derive(Debug)]
pub(crate) struct PendingStale {
    sessions: Arc<SessionCache>,
    stale: Mutex<Vec<Stale>>,
}

impl Drop for PendingStale {
    fn drop(&mut self) {
        let stale = std::mem::take(&mut *self.stale.lock().unwrap_or_else(PoisonError::into_inner));
        for stale in stale {
            self.sessions.stale(stale);
        }
    }
}

/// Marks what it holds stale in the session cache when dropped: part of a write's `Writer` (see `access`), so
/// that the write's success, failure or cancellation all invalidate.
#[derive(Debug)]
pub(crate) struct StaleOnDrop<'a, C> {
    db: &'a Database<C>,
    stale: Option<Stale>,
}

impl<C> StaleOnDrop<'_, C> {
    /// Narrows (or, with `None`, cancels) what is marked once the write's outcome is known.
    pub(crate) fn set(&mut self, stale: Option<Stale>) {
        self.stale = stale;
    }
}

impl<C> Drop for StaleOnDrop<'_, C> {
    fn drop(&mut self) {
        if let Some(stale) = self.stale.take() {
            self.db.made_stale(stale);
        }
    }
}

impl<C> Database<C> {
    /// Now, as this database's clock reads it (the time every row is written and compared with).
    pub fn now(&self) -> time::OffsetDateTime {
        self.clock.now()
    }

    /// The clock this database's rows are written and compared with.
    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    /// Waits for this writer's turn on SQLite (nothing on PostgreSQL, or inside a transaction, which holds
    /// its turn from [`Database::begin`] on). Every write on the pool takes one before its statement.
    ///
    /// # Errors
    /// [`RepoError::Unavailable`] when the turn does not come within the pool's acquire timeout.
    async fn write_turn(&self) -> Result<Option<OwnedMutexGuard<()>>, RepoError> {
        let Some(writers) = &self.writers else {
            return Ok(None);
        };
        tokio::time::timeout(writers.timeout, Arc::clone(&writers.turn).lock_owned())
            .await
            .map(Some)
            .map_err(|_| RepoError::Unavailable(DbErr::ConnectionAcquire(ConnAcquireErr::Timeout)))
    }

    /// SQLite or PostgreSQL.
    pub(crate) fn backend(&self) -> sea_orm::DbBackend
    where
        C: ConnectionTrait,
    {
        self.conn.get_database_backend()
    }

    /// Whether this is a transaction (whose reads may see its own uncommitted writes).
    pub(crate) fn in_transaction(&self) -> bool {
        self.pending.is_some()
    }

    /// Records that a write made `stale` out of date in the session cache: at once on the pool, when the
    /// transaction ends in a transaction (a fill between the write and the commit would otherwise keep the
    /// old state).
    pub(crate) fn made_stale(&self, stale: Stale) {
        match &self.pending {
            Some(pending) => pending
                .stale
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(stale),
            None => self.sessions.stale(stale),
        }
    }
}

/// One migration and whether it has been applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrationStatus {
    pub name: String,
    pub applied: bool,
}

impl Database {
    /// PostgreSQL: the main pool itself (the session-change listener opens connections of its own from it).
    pub(crate) fn postgres_pool(&self) -> &sea_orm::sqlx::PgPool {
        self.conn.get_postgres_connection_pool()
    }

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
        // The first connection may take longer than a request may wait (a busy server, instances starting
        // together, a database still starting): it is tried again until STARTUP_CONNECT_TIMEOUT. A pool
        // that cannot connect says only that it timed out: the cause (refused, authentication, TLS, no such
        // database) comes from one direct connection, and a cause that waiting cannot cure fails at once.
        let target = describe_target(url);
        let deadline = std::time::Instant::now() + STARTUP_CONNECT_TIMEOUT;
        let mut warned = false;
        let conn = loop {
            match sea_orm::Database::connect(sea.clone()).await {
                Ok(conn) => break conn,
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
        };
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

    /// A database over `conn` sharing this one's caches, flags, metrics and worker pools: a transaction
    /// (with what it will make stale and, on SQLite, its write turn) or a worker runtime's pool.
    fn sharing_with<D>(
        &self,
        conn: D,
        pending: Option<Arc<PendingStale>>,
        turn: Option<Arc<OwnedMutexGuard<()>>>,
    ) -> Database<D> {
        Database {
            conn,
            sessions: Arc::clone(&self.sessions),
            pending,
            writers: None,
            available: Arc::clone(&self.available),
            acquire_timeout: self.acquire_timeout,
            runtime_pools: Arc::clone(&self.runtime_pools),
            begin_waits: self.begin_waits.clone(),
            clock: self.clock.clone(),
            _turn: turn,
        }
    }

    /// This database for one of the server's worker runtimes: on PostgreSQL with a pool of its own (at most
    /// `max_connections`, opened lazily, so in that runtime), sharing everything else (the session cache,
    /// the availability flag, the metrics). Each actix worker runs its own async runtime, and a PostgreSQL
    /// connection belongs to the runtime that opened it: during a graceful stop the workers end one by
    /// one, and a connection opened by a worker that has ended fails every request still using it on
    /// another ("A Tokio 1.x context was found, but it is being shutdown"). With a pool per runtime, a
    /// worker only ever uses connections that live exactly as long as it does. SQLite connections are
    /// threads of their own: a plain clone.
    pub fn for_this_runtime(&self, max_connections: u32) -> Self {
        if self.conn.get_database_backend() != sea_orm::DbBackend::Postgres || self.in_transaction()
        {
            return self.clone();
        }
        let main = self.conn.get_postgres_connection_pool();
        let pool = sea_orm::sqlx::postgres::PgPoolOptions::new()
            .max_connections(max_connections.max(1))
            .min_connections(0)
            .acquire_timeout(self.acquire_timeout)
            // As the main pool: a connection idle for a second may have been cut, so it is pinged first.
            .test_before_acquire(false)
            .before_acquire(|conn, meta| {
                Box::pin(async move {
                    if meta.idle_for >= Duration::from_secs(1) {
                        sea_orm::sqlx::Connection::ping(conn).await?;
                    }
                    Ok(true)
                })
            })
            .connect_lazy_with((*main.connect_options()).clone());
        self.runtime_pools
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(pool.clone());
        self.sharing_with(
            sea_orm::SqlxPostgresConnector::from_sqlx_postgres_pool(pool),
            None,
            None,
        )
    }

    /// The histogram of how long transactions waited to start, for the api's metrics registry.
    pub fn begin_waits(&self) -> prometheus::Histogram {
        self.begin_waits.clone()
    }

    /// The connections now, of the main pool and every worker runtime's pool: open, idle, and the most
    /// they may open.
    pub fn pool_status(&self) -> PoolStatus {
        match self.conn.get_database_backend() {
            sea_orm::DbBackend::Postgres => {
                let main = self.conn.get_postgres_connection_pool();
                let pools = self
                    .runtime_pools
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner);
                std::iter::once(main).chain(pools.iter()).fold(
                    PoolStatus::default(),
                    |total, pool| PoolStatus {
                        open: total.open + pool.size(),
                        idle: total.idle + u32::try_from(pool.num_idle()).unwrap_or(u32::MAX),
                        max: total.max + pool.options().get_max_connections(),
                    },
                )
            }
            _ => {
                let pool = self.conn.get_sqlite_connection_pool();
                PoolStatus {
                    open: pool.size(),
                    idle: u32::try_from(pool.num_idle()).unwrap_or(u32::MAX),
                    max: pool.options().get_max_connections(),
                }
            }
        }
    }

    /// Whether the database answered the last probe of [`Database::watch_availability`] (always `true` on
    /// SQLite, and until the first failed probe). While it is `false`, the api answers `503` at once instead
    /// of letting every request wait for a connection that cannot open.
    pub fn is_available(&self) -> bool {
        self.available.load(Ordering::Relaxed)
    }

    /// PostgreSQL: every [`PROBE_EVERY`], asks the server for `SELECT 1` on a connection of its own (a busy
    /// pool is not an outage) and records whether it answers, logging each change; runs until dropped. The
    /// database counts as down after two probes in a row got no answer within [`PROBE_TIMEOUT`] (a refused
    /// or dropped connection fails at once: an outage is noticed within about half a second), and up again
    /// at its first answer (within [`PROBE_EVERY`] plus one connection of its return). An error the server
    /// sends (too many connections) is an answer. SQLite: returns at once (a file does not go away).
    pub async fn watch_availability(&self) {
        use sea_orm::sqlx::{Connection, postgres::PgConnection};
        if self.conn.get_database_backend() != sea_orm::DbBackend::Postgres {
            return;
        }
        let options = (*self.conn.get_postgres_connection_pool().connect_options()).clone();
        let mut probe: Option<PgConnection> = None;
        let mut failures = 0_u32;
        let mut interval = tokio::time::interval(PROBE_EVERY);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            interval.tick().await;
            // One connection of its own, opened directly (not through a pool, which would retry a refused
            // connection until its timeout), kept between probes and opened again after any failure.
            let answered = tokio::time::timeout(PROBE_TIMEOUT, async {
                let conn = match probe.as_mut() {
                    Some(conn) => conn,
                    None => probe.insert(PgConnection::connect_with(&options).await?),
                };
                sea_orm::sqlx::query("SELECT 1")
                    .execute(conn)
                    .await
                    .map(|_| ())
            })
            .await
            .unwrap_or(Err(sea_orm::sqlx::Error::PoolTimedOut));
            let failure = match answered {
                Ok(()) => None,
                Err(err) => {
                    probe = None;
                    probe_failure(err)
                }
            };
            failures = match failure {
                None => 0,
                Some(_) => failures.saturating_add(1),
            };
            // Up at the first answer; down after two failures in a row (one slow answer on a busy machine
            // must not turn a healthy instance away).
            let up = match failures {
                0 => true,
                1 => self.available.load(Ordering::Relaxed),
                _ => false,
            };
            if self.available.swap(up, Ordering::Relaxed) != up {
                if up {
                    log::info!("the database answers again; serving requests");
                } else {
                    let cause = failure.unwrap_or_default();
                    log::error!(
                        "the database does not answer ({cause}); answering 503 until it does"
                    );
                }
            }
        }
    }

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

    /// Starts a write transaction. On SQLite it waits for its turn among this process's writers, then takes the
    /// write lock at once (`BEGIN IMMEDIATE`), so a transaction that reads before it writes cannot fail with
    /// "database is locked" when another writer commits in between.
    ///
    /// # Errors
    /// [`RepoError::Unavailable`] when no connection or lock can be had in time.
    pub async fn begin(&self) -> Result<Transaction, RepoError> {
        let started = std::time::Instant::now();
        let turn = self.write_turn().await?;
        let conn = self
            .conn
            .begin_with_options(TransactionOptions {
                sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
                ..TransactionOptions::default()
            })
            .await?;
        self.begin_waits.observe(started.elapsed().as_secs_f64());
        let pending = Arc::new(PendingStale {
            sessions: Arc::clone(&self.sessions),
            stale: Mutex::default(),
        });
        Ok(self.sharing_with(conn, Some(pending), turn.map(Arc::new)))
    }

    /// One round trip to the database.
    ///
    /// # Errors
    /// [`RepoError::Unavailable`] when it does not answer.
    pub async fn ping(&self) -> Result<(), RepoError> {
        self.conn
            .execute_unprepared("SELECT 1")
            .await
            .map(|_| ())
            .map_err(RepoError::from)
    }

    /// Closes the pool and the worker runtimes' pools: every clone of this `Database` fails with
    /// [`RepoError::Unavailable`] from now on.
    ///
    /// # Errors
    /// If closing the pool fails.
    pub async fn close(&self) -> anyhow::Result<()> {
        let runtime_pools = self
            .runtime_pools
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        for pool in runtime_pools {
            pool.close().await;
        }
        self.conn
            .close_by_ref()
            .await
            .context("closing the database pool failed")
    }
}

/// The pools' connections at one moment (see [`Database::pool_status`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PoolStatus {
    pub open: u32,
    pub idle: u32,
    pub max: u32,
}

/// Histogram buckets (seconds) for waits that are normally near zero and fail at the acquire timeout.
pub const WAIT_BUCKETS: [f64; 10] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0,
];

/// How often [`Database::watch_availability`] probes the database.
pub const PROBE_EVERY: Duration = Duration::from_millis(250);
/// How long a probe waits to connect and for `SELECT 1`.
const PROBE_TIMEOUT: Duration = Duration::from_secs(1);

/// What a failed probe means: `None` when the server did answer (an error it sent, such as too many
/// connections, 53300: the database is there, this instance's pools may still serve), else why it does
/// not answer. Shutting down or starting up (57P01–57P03) does not count as an answer.
fn probe_failure(err: sea_orm::sqlx::Error) -> Option<String> {
    match &err {
        sea_orm::sqlx::Error::Database(db)
            if !db.code().is_some_and(|code| code.starts_with("57P")) =>
        {
            None
        }
        sea_orm::sqlx::Error::PoolTimedOut => {
            Some(format!("no answer within {} ms", PROBE_TIMEOUT.as_millis()))
        }
        _ => Some(err.to_string()),
    }
}

/// The PostgreSQL advisory lock key that serialises migrations (any constant the database's other users do
/// not take).
const MIGRATION_LOCK: i64 = 0x5EC0_C7D0;
