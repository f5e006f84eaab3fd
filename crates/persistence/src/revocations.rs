//! The session endings the revocation feed streams: written by the database's triggers in the transaction
//! that ended each session (see the migration `m20261206_000015_record_session_endings`), given their feed
//! order here ([`Database::sequence_session_endings`]), read in that order, and pruned once no access token
//! of theirs can verify.

use sea_orm::{
    ColumnTrait, ConnectionTrait, DbBackend, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
    sea_query::Expr,
};
use securecrud_domain::SessionId;
use time::OffsetDateTime;

use crate::{Database, RepoError, connect::Effect, entity::session_endings};

/// The advisory lock sequencers hold on PostgreSQL, so that one runs at a time.
const SEQUENCER_LOCK: i64 = 0x5EC0_5E9A;

/// A session that ended while live, in the feed's order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionEnding {
    /// The feed's order: increasing, never reused, and never visible after a greater one.
    pub cursor: i64,
    pub session_id: SessionId,
    pub ended_at: OffsetDateTime,
}

impl Database {
    /// Gives the endings recorded since the last call their cursors. Each call sees every ending committed
    /// before it began, and cursors given by one call are all greater than those of any earlier call and
    /// visible only once all of those are (PostgreSQL: an advisory lock held to the commit; SQLite: one
    /// writer at a time). Returns how many were given a cursor.
    ///
    /// # Errors
    /// [`RepoError::Unavailable`] or [`RepoError::Unexpected`] when a query fails.
    pub async fn sequence_session_endings(&self) -> Result<u64, RepoError> {
        let waiting = session_endings::Entity::find()
            .select_only()
            .column(session_endings::Column::Id)
            .filter(session_endings::Column::Cursor.is_null())
            .limit(1)
            .into_tuple::<i64>()
            .one(&self.read())
            .await?;
        if waiting.is_none() {
            return Ok(0);
        }
        let next = match self.backend() {
            DbBackend::Postgres => Expr::cust("nextval('session_ending_cursor')"),
            _ => Expr::col(session_endings::Column::Id),
        };
        let tx = self.begin().await?;
        let write = tx.write(Effect::Elsewhere).await?;
        if tx.backend() == DbBackend::Postgres {
            write
                .execute_unprepared(&format!("SELECT pg_advisory_xact_lock({SEQUENCER_LOCK})"))
                .await?;
        }
        let sequenced = session_endings::Entity::update_many()
            .col_expr(session_endings::Column::Cursor, next)
            .filter(session_endings::Column::Cursor.is_null())
            .exec(&write)
            .await?
            .rows_affected;
        drop(write);
        tx.commit().await?;
        Ok(sequenced)
    }

    /// Up to `limit` endings after `cursor`, in order. With `ended_after`, only those that ended after it.
    ///
    /// # Errors
    /// [`RepoError::Unavailable`] or [`RepoError::Unexpected`] when the query fails.
    pub async fn session_endings_after(
        &self,
        cursor: i64,
        ended_after: Option<OffsetDateTime>,
        limit: u64,
    ) -> Result<Vec<SessionEnding>, RepoError> {
        let mut query =
            session_endings::Entity::find().filter(session_endings::Column::Cursor.gt(cursor));
        if let Some(after) = ended_after {
            query = query.filter(session_endings::Column::EndedAt.gt(after));
        }
        Ok(query
            .order_by_asc(session_endings::Column::Cursor)
            .limit(limit)
            .all(&self.read())
            .await?
            .into_iter()
            .filter_map(|row| {
                Some(SessionEnding {
                    cursor: row.cursor?,
                    session_id: SessionId::from_uuid(row.session_id),
                    ended_at: row.ended_at,
                })
            })
            .collect())
    }

    /// The greatest cursor given so far (0 when none is).
    ///
    /// # Errors
    /// [`RepoError::Unavailable`] or [`RepoError::Unexpected`] when the query fails.
    pub async fn latest_session_ending_cursor(&self) -> Result<i64, RepoError> {
        let latest = session_endings::Entity::find()
            .select_only()
            .column_as(session_endings::Column::Cursor.max(), "latest")
            .into_tuple::<Option<i64>>()
            .one(&self.read())
            .await?;
        Ok(latest.flatten().unwrap_or(0))
    }

    /// Deletes the endings before `cutoff` that have a cursor (an ending still waiting for one stays, so
    /// that no subscriber misses it). Returns how many went.
    ///
    /// # Errors
    /// [`RepoError::Unavailable`] or [`RepoError::Unexpected`] when the delete fails.
    pub async fn prune_session_endings(&self, cutoff: OffsetDateTime) -> Result<u64, RepoError> {
        let write = self.write(Effect::Elsewhere).await?;
        Ok(session_endings::Entity::delete_many()
            .filter(session_endings::Column::EndedAt.lt(cutoff))
            .filter(session_endings::Column::Cursor.is_not_null())
            .exec(&write)
            .await?
            .rows_affected)
    }
}
