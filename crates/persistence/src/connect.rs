//! The database handle: the pool, its transactions, and the write path every change takes (see `access`).

use std::{
    sync::{Arc, Mutex, PoisonError, atomic::AtomicBool},
    time::Duration,
};

use tokio::sync::OwnedMutexGuard;

use anyhow::Context;
use sea_orm::{
    ConnAcquireErr, ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbErr,
    SqliteTransactionMode, TransactionOptions, TransactionTrait,
};

use crate::{
    Clock, RepoError,
    session_cache::{SessionCache, Stale},
};

mod access;
mod availability;
mod failure;
mod migrate;
mod open;
mod url;

pub(crate) use access::Effect;
pub use migrate::MigrationStatus;
pub use open::ConnectOptions;
pub use url::DatabaseUrl;

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

impl Database {
    /// PostgreSQL: the main pool itself (the session-change listener opens connections of its own from it).
    pub(crate) fn postgres_pool(&self) -> &sea_orm::sqlx::PgPool {
        self.conn.get_postgres_connection_pool()
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
