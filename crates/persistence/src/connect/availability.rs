//! Whether the database answers: a probe on a connection of its own, so that an outage is answered with
//! `503` at once instead of every request waiting for a connection that cannot open.

use std::{sync::atomic::Ordering, time::Duration};

use super::Database;

impl Database {
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
}

/// How often [`Database::watch_availability`] probes the database.
const PROBE_EVERY: Duration = Duration::from_millis(250);
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
