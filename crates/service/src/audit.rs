//! Audit-trail use cases: building events from the caller's context, listing them for admins, pruning.

use securecrud_domain::{AuditFilter, AuditKind, UserId};
use securecrud_persistence::NewAuditEvent;
use serde_json::Value;
use time::Duration;

use crate::{ClientInfo, ServiceError, Services};

/// An event of `kind` done by `actor` to `subject`, from `client`'s address, user agent and request id.
pub(crate) fn event(
    kind: AuditKind,
    client: &ClientInfo,
    actor: Option<UserId>,
    subject: Option<UserId>,
    details: Value,
) -> NewAuditEvent {
    NewAuditEvent {
        kind,
        actor_id: actor,
        subject_id: subject,
        ip: client.ip.map(|ip| ip.to_string()),
        user_agent: client.user_agent.clone(),
        request_id: client.request_id.clone(),
        details,
    }
}

/// An event a user did to their own account (actor and subject are the same).
pub(crate) fn own_event(
    kind: AuditKind,
    client: &ClientInfo,
    user: UserId,
    details: Value,
) -> NewAuditEvent {
    event(kind, client, Some(user), Some(user), details)
}

impl Services {
    /// One page of the audit trail, newest first.
    ///
    /// # Errors
    /// [`ServiceError::Unavailable`] or [`ServiceError::Unexpected`] when the database fails.
    pub async fn audit_events(
        &self,
        filter: &AuditFilter,
    ) -> Result<securecrud_domain::AuditPage, ServiceError> {
        Ok(self.db.list_audit(filter).await?)
    }

    /// Deletes audit events older than `age`. Returns how many.
    ///
    /// # Errors
    /// [`ServiceError::Unavailable`] or [`ServiceError::Unexpected`] when the database fails.
    pub async fn prune_audit(&self, age: Duration) -> Result<u64, ServiceError> {
        Ok(self.db.prune_audit(self.db.now() - age).await?)
    }
}
