//! Sessions, as their user may see them.

use time::OffsetDateTime;

use crate::SessionId;

/// One session of a user: when it started, was last used and expires, and where it was opened. Never holds
/// a token or its hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub id: SessionId,
    pub created_at: OffsetDateTime,
    pub last_used_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}
