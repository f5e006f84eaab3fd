//! Wire types of account protection: sessions and the audit trail.

use paperclip::actix::Apiv2Schema;
use securecrud_domain::{
    AuditEvent, AuditFilter, AuditKind, AuditPage, Invalid, Session, ValidationErrors,
};
use serde::{Deserialize, Serialize};
use time::{OffsetDateTime, format_description::well_known::Rfc3339};
use uuid::Uuid;

use super::Timestamp;
use crate::schema::{Cursor, DateTime, Limit, Optional, OrNull, Text, UuidText};

/// One live session of the current user.
#[derive(Debug, Serialize, Apiv2Schema)]
pub struct SessionResponse {
    pub id: Uuid,
    pub created_at: Timestamp,
    pub last_used_at: Timestamp,
    /// When its refresh token stops working unless it is used (each refresh extends it).
    pub expires_at: Timestamp,
    /// The client address at login (behind trusted proxies, the one they reported).
    pub ip: OrNull<String>,
    pub user_agent: OrNull<String>,
    /// Whether this is the session of the access token making the request.
    pub current: bool,
}

impl From<(Session, bool)> for SessionResponse {
    fn from((session, current): (Session, bool)) -> Self {
        Self {
            id: session.id.as_uuid(),
            created_at: Timestamp(session.created_at),
            last_used_at: Timestamp(session.last_used_at),
            expires_at: Timestamp(session.expires_at),
            ip: session.ip.into(),
            user_agent: session.user_agent.into(),
            current,
        }
    }
}

/// The current user's live sessions, most recently used first.
#[derive(Debug, Serialize, Apiv2Schema)]
pub struct SessionListResponse {
    pub items: Vec<SessionResponse>,
}

/// One audit event.
#[derive(Debug, Serialize, Apiv2Schema)]
pub struct AuditEventResponse {
    pub id: i64,
    pub at: Timestamp,
    /// The event type, e.g. `login_failed` (see the API contract for the list).
    #[serde(rename = "type")]
    pub kind: String,
    /// Who did it; null for the system, the CLI or an anonymous client (a failed login).
    pub actor_id: OrNull<Uuid>,
    /// Whose account it concerns.
    pub subject_id: OrNull<Uuid>,
    pub ip: OrNull<String>,
    pub user_agent: OrNull<String>,
    /// The `X-Request-Id` of the request that caused it.
    pub request_id: OrNull<String>,
    /// Event-specific facts (never a password or token).
    pub details: serde_json::Value,
}

impl From<AuditEvent> for AuditEventResponse {
    fn from(event: AuditEvent) -> Self {
        Self {
            id: event.id,
            at: Timestamp(event.at),
            kind: event.kind.as_str().to_owned(),
            actor_id: event.actor_id.map(|id| id.as_uuid()).into(),
            subject_id: event.subject_id.map(|id| id.as_uuid()).into(),
            ip: event.ip.into(),
            user_agent: event.user_agent.into(),
            request_id: event.request_id.into(),
            details: event.details,
        }
    }
}

/// One page of the audit trail, newest first.
#[derive(Debug, Serialize, Apiv2Schema)]
pub struct AuditPageResponse {
    pub items: Vec<AuditEventResponse>,
    /// Pass as `cursor` for the next (older) page; null on the last page.
    pub next_cursor: OrNull<String>,
}

impl From<AuditPage> for AuditPageResponse {
    fn from(page: AuditPage) -> Self {
        Self {
            items: page.items.into_iter().map(Into::into).collect(),
            next_cursor: page.next_cursor.map(|id| id.to_string()).into(),
        }
    }
}

/// Query parameters of `GET /api/v1/admin/audit`.
#[derive(Debug, Default, Deserialize, Apiv2Schema)]
#[serde(default)]
pub struct AuditListParams {
    /// Events where this user (UUID) is the actor or the subject.
    pub user_id: Optional<Text<UuidText>>,
    /// One event type.
    #[serde(rename = "type")]
    pub kind: Optional<Text<AuditKind>>,
    /// RFC 3339; events at or after it.
    pub since: Optional<Text<DateTime>>,
    /// RFC 3339; events before it.
    pub until: Optional<Text<DateTime>>,
    /// 1–100, default 20.
    pub limit: Optional<Text<Limit>>,
    /// The `next_cursor` of the previous page.
    pub cursor: Optional<Text<Cursor>>,
}

impl TryFrom<AuditListParams> for AuditFilter {
    type Error = ValidationErrors;

    fn try_from(params: AuditListParams) -> Result<Self, Self::Error> {
        let mut errors = ValidationErrors::default();
        // In UTC with a checked conversion, years 1 to 9999: `9999-12-31T23:59:59-01:00` and
        // `0000-01-01T00:00:00+01:00` are valid RFC 3339 but outside what both databases store alike.
        let timestamp = |raw: &str| {
            OffsetDateTime::parse(raw, &Rfc3339)
                .ok()
                .and_then(|at| at.checked_to_offset(time::UtcOffset::UTC))
                .filter(|at| at.year() >= 1)
                .ok_or_else(|| {
                    Invalid::new("must be an RFC 3339 timestamp like 2026-11-23T10:00:00Z")
                })
        };
        let filter = AuditFilter {
            user_id: params
                .user_id
                .as_deref()
                .and_then(|raw| errors.check("user_id", super::parse_user_id(raw))),
            kind: params
                .kind
                .as_deref()
                .and_then(|raw| errors.check("type", raw.parse::<AuditKind>())),
            since: params
                .since
                .as_deref()
                .and_then(|raw| errors.check("since", timestamp(raw))),
            until: params
                .until
                .as_deref()
                .and_then(|raw| errors.check("until", timestamp(raw))),
            before: params.cursor.as_deref().and_then(|raw| {
                errors.check(
                    "cursor",
                    raw.parse::<i64>()
                        .ok()
                        .filter(|id| *id > 0)
                        .ok_or_else(|| Invalid::new("is not a cursor this server gave out")),
                )
            }),
            limit: super::paging(&mut errors, &params.limit, &Optional::default()).limit(),
        };
        errors.finish(|| Some(filter))
    }
}
