//! Following the api's revocation feed (feature `jwks`): [`RevocationFeed`] keeps the set of sessions that
//! ended, as the api streams them (`GET /api/v1/auth/revocations`, Server-Sent Events), so that a service
//! verifying tokens on its own refuses a logged-out session's tokens within a second, with no call to the api
//! per request.
//!
//! - Each ended session is kept until its `until` (after which none of its tokens verifies anyway), so the
//!   set holds at most the sessions that ended within one access-token lifetime.
//! - After a disconnection (the api restarting, a network cut, a proxy closing the stream) it reconnects with
//!   the last event's id in `Last-Event-ID`, and the api sends what it missed: nothing is lost.
//! - It knows when it may be behind: it is *current* once a stream has sent what it missed (the first comment
//!   line of a stream says so) and for as long as that stream keeps talking (a comment every 5 s). When it has
//!   not been current for longer than [`FeedOptions::max_lag`] (or never was, just after start), the
//!   service's [`OnLag`] choice applies: refuse every token (the default: fail closed), or accept tokens on
//!   their signature alone.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, PoisonError, RwLock, Weak},
    time::{Duration, Instant},
};

use uuid::Uuid;

use crate::remote::RemoteError;

/// What to do while the feed may be behind (see the module).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OnLag {
    /// Refuse every token (`503 unavailable` from the guards): a revoked session is never accepted.
    #[default]
    Refuse,
    /// Accept tokens whose signature verifies, as a service without the feed would: the service stays up
    /// when the api is down, and a session revoked meanwhile works until its tokens expire.
    AcceptStateless,
}

/// How a [`RevocationFeed`] behaves.
#[derive(Debug, Clone, Copy)]
pub struct FeedOptions {
    /// How long the feed may go without being current before [`FeedOptions::on_lag`] applies (default
    /// 15 s: three of the stream's keep-alives).
    pub max_lag: Duration,
    /// What to do then (default [`OnLag::Refuse`]).
    pub on_lag: OnLag,
}

impl Default for FeedOptions {
    fn default() -> Self {
        Self {
            max_lag: Duration::from_secs(15),
            on_lag: OnLag::Refuse,
        }
    }
}

/// What the feed says of a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standing {
    /// Not known to have ended.
    Live,
    /// Ended: its tokens must be refused.
    Ended,
    /// The feed is behind and the service chose [`OnLag::Refuse`]: refuse, and say to retry later.
    Unknown,
}

/// How the feed stands (for health checks and metrics).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FeedStatus {
    /// Whether the feed is current: following a stream that has sent what was missed and keeps talking, or
    /// cut for no longer than [`FeedOptions::max_lag`].
    pub current: bool,
    /// The cursor of the last event received.
    pub last_event_id: Option<i64>,
    /// Sessions held as ended.
    pub ended_sessions: usize,
    /// Streams opened so far (the first one and every reconnection).
    pub connections: u64,
}

/// How long a stream may stay silent before the feed counts as cut (the api comments every 5 s).
const SILENCE: Duration = Duration::from_secs(7);

/// How long a stream may stay silent before it is given up and reopened.
const STALL: Duration = Duration::from_secs(15);

/// How long to wait before reconnecting, at first and at most (doubling in between, from the api's
/// `retry:` advice).
const RECONNECT_FIRST: Duration = Duration::from_secs(1);
const RECONNECT_MOST: Duration = Duration::from_secs(30);

/// How long connecting may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// How long the api may take to answer the stream's request (its head; the stream then stays open).
const ANSWER_TIMEOUT: Duration = Duration::from_secs(10);

/// The longest an ended session is kept, whatever `until` the stream names (the api's are the access-token
/// lifetime and a minute): a bad value cannot grow the set for ever.
const LONGEST_KEEP_SECS: i64 = 24 * 3600;

/// The longest line accepted from the stream: the api's are under 120 bytes.
const MAX_LINE: usize = 4_096;

/// Follows the api's revocation feed (see the module). Cheap to clone (the clones share one stream and one
/// set); the stream ends when the last clone is dropped.
#[derive(Debug, Clone)]
pub struct RevocationFeed {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    url: String,
    options: FeedOptions,
    /// Ended sessions, and the Unix time until which each is kept.
    ended: RwLock<HashMap<Uuid, i64>>,
    progress: Mutex<Progress>,
}

#[derive(Debug, Default)]
struct Progress {
    last_event_id: Option<i64>,
    /// Whether the open stream has sent what was missed (its first comment came).
    caught_up: bool,
    /// When the open stream last said anything.
    last_heard: Option<Instant>,
    /// When the feed stopped being current (a stream ended or went silent), until one catches up again.
    lost_at: Option<Instant>,
    connections: u64,
}

impl Progress {
    fn current(&self, max_lag: Duration) -> bool {
        self.current_at(max_lag, Instant::now())
    }

    fn current_at(&self, max_lag: Duration, now: Instant) -> bool {
        let lost_at = match self.last_heard {
            Some(heard) if self.caught_up => {
                if now.duration_since(heard) <= SILENCE {
                    return true;
                }
                Some(heard + SILENCE)
            }
            _ => self.lost_at,
        };
        // Never caught up since the start: nothing is known yet.
        lost_at.is_some_and(|lost| now.saturating_duration_since(lost) <= max_lag)
    }

    /// The open stream ended or failed.
    fn lost(&mut self) {
        if self.caught_up {
            let now = Instant::now();
            self.lost_at = Some(
                self.last_heard
                    .map_or(now, |heard| (heard + SILENCE).min(now)),
            );
        }
        self.caught_up = false;
    }
}

impl RevocationFeed {
    /// Follows the feed at `feed_url` (the api's `/api/v1/auth/revocations`) with the default
    /// [`FeedOptions`]. Spawns the task that reads it on the current Tokio runtime.
    ///
    /// # Errors
    /// Only if the HTTP client cannot be built (no TLS backend).
    ///
    /// # Panics
    /// Outside a Tokio runtime.
    pub fn follow(feed_url: &str) -> Result<Self, RemoteError> {
        Self::follow_with(feed_url, FeedOptions::default())
    }

    /// Follows the feed at `feed_url` with `options` (see [`RevocationFeed::follow`]).
    ///
    /// # Errors
    /// Only if the HTTP client cannot be built (no TLS backend).
    ///
    /// # Panics
    /// Outside a Tokio runtime.
    pub fn follow_with(feed_url: &str, options: FeedOptions) -> Result<Self, RemoteError> {
        let client = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|source| RemoteError::Request {
                url: feed_url.to_owned(),
                source,
            })?;
        let shared = Arc::new(Shared {
            url: feed_url.to_owned(),
            options,
            ended: RwLock::default(),
            progress: Mutex::default(),
        });
        tokio::spawn(follow(Arc::downgrade(&shared), client));
        Ok(Self { shared })
    }

    /// What the feed says of the session `session_id` now.
    pub fn standing(&self, session_id: Uuid) -> Standing {
        self.standing_at(session_id, Instant::now())
    }

    /// [`RevocationFeed::standing`] as of `now`.
    fn standing_at(&self, session_id: Uuid, now: Instant) -> Standing {
        let shared = &self.shared;
        let ended = shared
            .ended
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&session_id)
            .is_some_and(|until| *until >= unix_now());
        if ended {
            return Standing::Ended;
        }
        if shared.options.on_lag == OnLag::Refuse
            && !shared.progress().current_at(shared.options.max_lag, now)
        {
            return Standing::Unknown;
        }
        Standing::Live
    }

    /// How the feed stands.
    pub fn status(&self) -> FeedStatus {
        let shared = &self.shared;
        let progress = shared.progress();
        FeedStatus {
            current: progress.current(shared.options.max_lag),
            last_event_id: progress.last_event_id,
            ended_sessions: shared
                .ended
                .read()
                .unwrap_or_else(PoisonError::into_inner)
                .len(),
            connections: progress.connections,
        }
    }
}

impl Shared {
    fn progress(&self) -> std::sync::MutexGuard<'_, Progress> {
        self.progress.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// One thing the stream said.
    fn heard(&self, said: Said) {
        let now = unix_now();
        if let Said::Ended { sid, until, .. } = said
            && until >= now
        {
            self.ended
                .write()
                .unwrap_or_else(PoisonError::into_inner)
                .insert(sid, until.min(now.saturating_add(LONGEST_KEEP_SECS)));
        }
        let caught_up = {
            let mut progress = self.progress();
            progress.last_heard = Some(Instant::now());
            match said {
                Said::Ended { cursor, .. } => {
                    progress.last_event_id = Some(cursor);
                    false
                }
                Said::Comment => {
                    progress.caught_up = true;
                    progress.lost_at = None;
                    true
                }
            }
        };
        if caught_up {
            self.forget_expired();
        }
    }

    /// Drops the sessions whose tokens have all expired.
    fn forget_expired(&self) {
        let now = unix_now();
        self.ended
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .retain(|_, until| *until >= now);
    }
}

/// What one block of the stream said.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Said {
    Ended { cursor: i64, sid: Uuid, until: i64 },
    Comment,
}

/// Reads the feed until every [`RevocationFeed`] of `shared` is dropped, reconnecting after each end.
async fn follow(shared: Weak<Shared>, client: reqwest::Client) {
    let mut wait = RECONNECT_FIRST;
    loop {
        let Some(url) = shared.upgrade().map(|s| s.url.clone()) else {
            return;
        };
        let last_event_id = shared.upgrade().and_then(|s| s.progress().last_event_id);
        let mut request = client.get(&url).header("accept", "text/event-stream");
        if let Some(id) = last_event_id {
            request = request.header("last-event-id", id.to_string());
        }
        match tokio::time::timeout(ANSWER_TIMEOUT, request.send()).await {
            Ok(Ok(response)) if response.status().is_success() => {
                // A stream opened: the next failure is a new one, retried soon.
                wait = RECONNECT_FIRST;
                if let Some(s) = shared.upgrade() {
                    s.progress().connections += 1;
                }
                let read = read_stream(&shared, response).await;
                if let Some(s) = shared.upgrade() {
                    s.progress().lost();
                }
                if let Err(why) = read {
                    log::warn!("the revocation feed at {url} stopped: {why}");
                }
            }
            Ok(Ok(response)) => log::warn!(
                "the revocation feed at {url} answered {}; retrying in {wait:?}",
                response.status()
            ),
            Ok(Err(err)) => log::warn!("the revocation feed at {url} cannot be reached: {err}"),
            Err(_) => {
                log::warn!("the revocation feed at {url} did not answer within {ANSWER_TIMEOUT:?}")
            }
        }
        if shared.strong_count() == 0 {
            return;
        }
        tokio::time::sleep(wait).await;
        wait = (wait * 2).min(RECONNECT_MOST);
    }
}

/// Reads one stream until it ends (`Ok`) or fails; returns early once nobody follows the feed.
async fn read_stream(shared: &Weak<Shared>, mut response: reqwest::Response) -> Result<(), String> {
    let mut lines = LineBuffer::default();
    let mut block = Block::default();
    loop {
        let chunk = match tokio::time::timeout(STALL, response.chunk()).await {
            Err(_) => return Err(format!("silent for {STALL:?}")),
            Ok(Err(err)) => return Err(err.to_string()),
            Ok(Ok(None)) => return Ok(()),
            Ok(Ok(Some(chunk))) => chunk,
        };
        let Some(shared) = shared.upgrade() else {
            return Ok(());
        };
        for line in lines.push(&chunk)? {
            if let Some(said) = block.line(&line)? {
                shared.heard(said);
            }
        }
    }
}

/// Splits the bytes of a stream into lines (`\n`, `\r\n` or `\r` ends one).
#[derive(Debug, Default)]
struct LineBuffer {
    partial: Vec<u8>,
    after_cr: bool,
}

impl LineBuffer {
    fn push(&mut self, bytes: &[u8]) -> Result<Vec<String>, String> {
        let mut lines = Vec::new();
        for &byte in bytes {
            match byte {
                b'\n' if self.after_cr => self.after_cr = false,
                b'\n' | b'\r' => {
                    self.after_cr = byte == b'\r';
                    let line = String::from_utf8(std::mem::take(&mut self.partial))
                        .map_err(|_| "a line is not UTF-8".to_owned())?;
                    lines.push(line);
                }
                _ => {
                    self.after_cr = false;
                    if self.partial.len() >= MAX_LINE {
                        return Err(format!("a line is longer than {MAX_LINE} bytes"));
                    }
                    self.partial.push(byte);
                }
            }
        }
        Ok(lines)
    }
}

/// The fields of the event being read (Server-Sent Events: fields until a blank line).
#[derive(Debug, Default)]
struct Block {
    event: Option<String>,
    id: Option<String>,
    data: Option<String>,
    comment: bool,
}

impl Block {
    /// Takes one line; at a blank line, what the block said (if anything this crate understands).
    fn line(&mut self, line: &str) -> Result<Option<Said>, String> {
        if line.is_empty() {
            return std::mem::take(self).finish();
        }
        if line.starts_with(':') {
            self.comment = true;
            return Ok(None);
        }
        let (field, value) = line.split_once(':').unwrap_or((line, ""));
        let value = value.strip_prefix(' ').unwrap_or(value).to_owned();
        match field {
            "event" => self.event = Some(value),
            "id" => self.id = Some(value),
            "data" => self.data = Some(value),
            // `retry` and fields unknown to this crate are ignored, as the SSE standard says.
            _ => {}
        }
        Ok(None)
    }

    fn finish(self) -> Result<Option<Said>, String> {
        match self.event.as_deref() {
            Some("revoked") => {
                let cursor = self
                    .id
                    .as_deref()
                    .and_then(|id| id.parse::<i64>().ok())
                    .ok_or("a revoked event without a numeric id")?;
                let data: RevokedData = serde_json::from_str(self.data.as_deref().unwrap_or(""))
                    .map_err(|err| format!("a revoked event's data is not understood: {err}"))?;
                Ok(Some(Said::Ended {
                    cursor,
                    sid: data.sid,
                    until: data.until,
                }))
            }
            Some(_) => Ok(None),
            None if self.comment => Ok(Some(Said::Comment)),
            None => Ok(None),
        }
    }
}

#[derive(serde::Deserialize)]
struct RevokedData {
    sid: Uuid,
    until: i64,
}

fn unix_now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str) -> Vec<Said> {
        let mut lines = LineBuffer::default();
        let mut block = Block::default();
        let mut said = Vec::new();
        // Byte by byte: a chunk may end anywhere.
        for byte in text.as_bytes() {
            for line in lines.push(std::slice::from_ref(byte)).unwrap() {
                said.extend(block.line(&line).unwrap());
            }
        }
        said
    }

    #[test]
    fn events_and_comments_are_read_across_any_chunking_and_line_ending() {
        let sid = Uuid::new_v4();
        let text = format!(
            "retry: 1000\n\nevent: revoked\r\nid: 7\r\ndata: {{\"sid\":\"{sid}\",\"until\":1800000000}}\r\n\r\n: keep-alive\r\rid: 8\nevent: other\ndata: x\n\n"
        );
        assert_eq!(
            read(&text),
            [
                Said::Ended {
                    cursor: 7,
                    sid,
                    until: 1_800_000_000
                },
                Said::Comment
            ]
        );
    }

    #[test]
    fn a_malformed_event_or_an_overlong_line_is_an_error_not_a_guess() {
        let mut block = Block::default();
        for line in ["event: revoked", "id: seven", "data: {}"] {
            block.line(line).unwrap();
        }
        assert!(block.line("").is_err());
        let mut lines = LineBuffer::default();
        assert!(lines.push(&vec![b'a'; MAX_LINE + 1]).is_err());
    }

    #[test]
    fn an_ended_session_is_kept_until_its_until_and_lag_follows_the_options() {
        let feed = RevocationFeed {
            shared: Arc::new(Shared {
                url: String::new(),
                options: FeedOptions {
                    max_lag: Duration::from_millis(50),
                    on_lag: OnLag::Refuse,
                },
                ended: RwLock::default(),
                progress: Mutex::default(),
            }),
        };
        let (ended, expired, live) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
        assert_eq!(feed.standing(live), Standing::Unknown, "never current yet");
        feed.shared.heard(Said::Comment);
        feed.shared.heard(Said::Ended {
            cursor: 1,
            sid: ended,
            until: unix_now() + 60,
        });
        feed.shared.heard(Said::Ended {
            cursor: 2,
            sid: expired,
            until: unix_now() - 1,
        });
        assert_eq!(feed.standing(ended), Standing::Ended);
        assert_eq!(
            feed.standing(expired),
            Standing::Live,
            "its tokens expired anyway"
        );
        assert_eq!(feed.standing(live), Standing::Live);
        assert_eq!(feed.status().last_event_id, Some(2));
        assert_eq!(feed.status().ended_sessions, 1);

        // The stream ends: current for the lag (50 ms here), then behind.
        feed.shared.progress().lost();
        assert_eq!(feed.standing(live), Standing::Live, "within the lag");
        let later = Instant::now() + Duration::from_millis(80);
        assert_eq!(
            feed.standing_at(live, later),
            Standing::Unknown,
            "behind: fail closed"
        );
        assert_eq!(feed.standing_at(ended, later), Standing::Ended);
    }
}
