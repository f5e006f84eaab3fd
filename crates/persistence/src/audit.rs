//! The audit trail: recording events (inside the caller's transaction) and listing them newest first with a
//! keyset cursor.

use anyhow::Context;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, Condition, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect,
};
use securecrud_domain::{AuditEvent, AuditFilter, AuditKind, AuditPage, UserId};
use time::OffsetDateTime;

use crate::{Conn, Database, RepoError, connect::Effect, entity::audit_events};

/// An event to record. Build it in the use case; [`Database::record_audit`] stamps the time.
#[derive(Debug, Clone)]
pub struct NewAuditEvent {
    pub kind: AuditKind,
    pub actor_id: Option<UserId>,
    pub subject_id: Option<UserId>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub request_id: Option<String>,
    /// A JSON object of event-specific facts; never a password or token.
    pub details: serde_json::Value,
}

impl<C: Conn> Database<C> {
    /// Records an event. Call it on the [`crate::Transaction`] that makes the change it records, so that
    /// both land or neither does.
    ///
    /// # Errors
    /// [`RepoError::Unavailable`] or [`RepoError::Unexpected`] when the insert fails.
    pub async fn record_audit(&self, event: NewAuditEvent) -> Result<(), RepoError> {
        let write = self.write(Effect::Elsewhere).await?;
        audit_events::ActiveModel {
            at: Set(self.now()),
            kind: Set(event.kind.as_str().to_owned()),
            actor_id: Set(event.actor_id.map(|id| id.as_uuid())),
            subject_id: Set(event.subject_id.map(|id| id.as_uuid())),
            ip: Set(event.ip),
            user_agent: Set(event.user_agent),
            request_id: Set(event.request_id),
            details: Set(event.details.to_string()),
            ..Default::default()
        }
        .insert(&write)
        .await?;
        Ok(())
    }

    /// Events matching `filter`, newest first (by id), at most `filter.limit`, with the cursor of the next
    /// page. Keyset pagination: events added while a client pages never shift, repeat or hide older ones.
    ///
    /// # Errors
    /// [`RepoError::Unavailable`] or [`RepoError::Unexpected`] when the query fails.
    pub async fn list_audit(&self, filter: &AuditFilter) -> Result<AuditPage, RepoError> {
        use audit_events::Column;
        let mut condition = Condition::all();
        if let Some(user) = filter.user_id {
            condition = condition.add(
                Condition::any()
                    .add(Column::ActorId.eq(user.as_uuid()))
                    .add(Column::SubjectId.eq(user.as_uuid())),
            );
        }
        if let Some(kind) = filter.kind {
            condition = condition.add(Column::Kind.eq(kind.as_str()));
        }
        if let Some(since) = filter.since {
            condition = condition.add(Column::At.gte(since));
        }
        if let Some(until) = filter.until {
            condition = condition.add(Column::At.lt(until));
        }
        if let Some(before) = filter.before {
            condition = condition.add(Column::Id.lt(before));
        }
        let mut rows = audit_events::Entity::find()
            .filter(condition)
            .order_by_desc(Column::Id)
            .limit(filter.limit + 1)
            .all(&self.read())
            .await?;
        let more = rows.len() as u64 > filter.limit;
        rows.truncate(usize::try_from(filter.limit).unwrap_or(usize::MAX));
        let next_cursor = if more {
            rows.last().map(|row| row.id)
        } else {
            None
        };
        let items = rows.into_iter().map(to_event).collect::<Result<_, _>>()?;
        Ok(AuditPage { items, next_cursor })
    }

    /// Deletes events recorded before `before`. Returns how many.
    ///
    /// # Errors
    /// [`RepoError::Unavailable`] or [`RepoError::Unexpected`] when the delete fails.
    pub async fn prune_audit(&self, before: OffsetDateTime) -> Result<u64, RepoError> {
        let write = self.write(Effect::Elsewhere).await?;
        Ok(audit_events::Entity::delete_many()
            .filter(audit_events::Column::At.lt(before))
            .exec(&write)
            .await?
            .rows_affected)
    }
}

fn to_event(row: audit_events::Model) -> Result<AuditEvent, RepoError> {
    let context = || format!("audit event {} holds invalid data", row.id);
    Ok(AuditEvent {
        id: row.id,
        at: row.at,
        kind: row
            .kind
            .parse()
            .map_err(|e: securecrud_domain::Invalid| anyhow::anyhow!(e.0))
            .with_context(context)?,
        actor_id: row.actor_id.map(UserId::from_uuid),
        subject_id: row.subject_id.map(UserId::from_uuid),
        ip: row.ip,
        user_agent: row.user_agent,
        request_id: row.request_id,
        details: serde_json::from_str(&row.details).with_context(context)?,
    })
}
