//! What the request middleware records of the request being handled, for the layers below it: its
//! `X-Request-Id` (a task-local, so that an error body, a log line or an audit event can name it without
//! threading it through every call) and, once authenticated, its user (for the access log).

use securecrud_domain::UserId;

tokio::task_local! {
    /// The id of the request being handled; set by the request middleware (`observe`).
    pub(crate) static REQUEST_ID: String;
}

/// The id of the request being handled, if called while handling one.
pub fn current_request_id() -> Option<String> {
    REQUEST_ID.try_with(Clone::clone).ok()
}

/// The authenticated user of a request, recorded by the auth extractor for the access log.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LoggedUser(pub UserId);
