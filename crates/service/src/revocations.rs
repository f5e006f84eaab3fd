//! The revocation feed (`GET /api/v1/auth/revocations`): every session that ends, streamed to services that
//! verify access tokens themselves, so that they can refuse a revoked session's tokens without asking the api.
//!
//! - The endings are rows the database's triggers write in the transaction that ended each session (see the
//!   persistence crate's `revocations`), so nothing that ends a session can skip the feed.
//! - One poller per instance ([`Services::follow_session_endings`]) gives new rows their cursors and
//!   publishes them to this instance's streams. It looks when this instance changes a session or hears of a
//!   change (a PostgreSQL notification), and every [`FEED_POLL`] besides, so an ending made anywhere reaches
//!   every instance's subscribers well within a second.
//! - A stream ([`Services::revocation_stream`]) first reads from the database what its subscriber has not
//!   seen (after its cursor, or every ending whose tokens could still verify), then follows the poller. A
//!   subscriber that falls behind (a slow reader) reads from the database again, from its cursor: what an
//!   instance holds for its streams is bounded, however many endings come and however slowly one reads.

use std::{
    collections::{HashMap, VecDeque},
    net::IpAddr,
    sync::{Arc, Mutex, PoisonError},
    time::Duration,
};

use futures_util::Stream;
use securecrud_auth::jwt::LEEWAY_SECS;
use securecrud_domain::SessionId;
use securecrud_persistence::{RepoError, SessionEnding};
use time::OffsetDateTime;
use tokio::sync::{broadcast, watch};

use crate::{ServiceError, Services, protection::limit_key};

/// How often the poller looks for new endings when nothing told it of a change.
pub const FEED_POLL: Duration = Duration::from_millis(250);

/// The least time between two looks of the poller, however often it is told of changes.
const FEED_COALESCE: Duration = Duration::from_millis(20);

/// How often a stream sends a comment line, whether or not anything ended (the contract asks for one at
/// least every 15 s): proxies and clients see the connection is alive, and the api sees a subscriber that
/// went away, whose stream (and its place among its client's streams) ends at the second write after
/// (actix serves half-closed connections, so a closed connection shows only when written to).
pub const FEED_KEEPALIVE: Duration = Duration::from_secs(5);

/// How long the poller may go without a successful look before the streams stop saying they are up to date:
/// each ends at its next keep-alive instead (its subscriber reconnects, to another instance behind a proxy,
/// and its lag clock runs meanwhile).
const POLLER_STALE: Duration = Duration::from_secs(3);

/// Margin added to every `until`: instances' clocks differ a little, and a token signed just as its session
/// was revoked elsewhere can carry an `exp` slightly after the ending plus the lifetime.
const UNTIL_MARGIN_SECS: i64 = 60;

/// Endings read from the database at once, by the poller and by a stream catching up.
const PAGE: u64 = 500;

/// Batches of endings the poller keeps for streams that have not taken them yet; a stream further behind
/// reads from the database instead.
const BACKLOG: usize = 64;

/// What a stream sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FeedItem {
    /// A session ended: `until` is the Unix time after which none of its access tokens verifies anyway.
    Revoked {
        cursor: i64,
        session_id: SessionId,
        until: i64,
    },
    /// Nothing to say: a comment line.
    KeepAlive,
}

/// One look of the poller: the endings after cursor `after`, in order. A stream that has sent less than
/// `after` missed some (it started while the poller had not looked yet, or fell behind) and reads them from
/// the database.
#[derive(Debug, Clone)]
struct Published {
    after: i64,
    endings: Arc<[SessionEnding]>,
}

/// This instance's half of the feed: the poller's channel to the streams, and the open streams per client.
#[derive(Debug)]
pub(crate) struct Feed {
    published: broadcast::Sender<Published>,
    /// When the poller last looked at the database successfully: a stream says it is up to date only while
    /// this is recent.
    last_look: Mutex<Option<std::time::Instant>>,
    streams: Mutex<HashMap<String, u32>>,
    max_streams_per_ip: u32,
    /// `true` once the graceful stop begins: every stream ends, so that none holds the stop up.
    draining: watch::Sender<bool>,
}

impl Feed {
    pub(crate) fn new(max_streams_per_ip: u32) -> Self {
        Self {
            published: broadcast::channel(BACKLOG).0,
            last_look: Mutex::default(),
            streams: Mutex::default(),
            max_streams_per_ip,
            draining: watch::channel(false).0,
        }
    }

    pub(crate) fn begin_draining(&self) {
        self.draining.send_replace(true);
    }

    /// Whether the poller looked at the database within [`POLLER_STALE`].
    fn poller_healthy(&self) -> bool {
        self.last_look
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_some_and(|at| at.elapsed() <= POLLER_STALE)
    }
}

/// One open stream of a client, given back when the stream is dropped.
#[derive(Debug)]
struct StreamSlot {
    services: Services,
    key: Option<String>,
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        let Some(key) = self.key.take() else {
            return;
        };
        let mut streams = self
            .services
            .inner
            .feed
            .streams
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(open) = streams.get_mut(&key) {
            *open -= 1;
            if *open == 0 {
                streams.remove(&key);
            }
        }
    }
}

impl Services {
    /// Opens a stream of session endings for the client at `ip`: after `since` (a cursor the client saw),
    /// or, without one, every ending whose access tokens could still verify. A cursor beyond any given
    /// (from another database, or one restored from a backup) is treated as none: the client gets every
    /// ending that matters rather than waiting for cursors to catch up with its own.
    ///
    /// # Errors
    /// [`ServiceError::RateLimited`] when the client has `REVOCATION_FEED_MAX_STREAMS_PER_IP` streams
    /// open on this instance; [`ServiceError::Unavailable`] when the database does not answer.
    pub async fn revocation_stream(
        &self,
        since: Option<i64>,
        ip: Option<IpAddr>,
    ) -> Result<impl Stream<Item = FeedItem> + use<>, ServiceError> {
        let slot = self.take_stream_slot(ip)?;
        // Subscribed before the first read: an ending published meanwhile is either read or received.
        let published = self.inner.feed.published.subscribe();
        // Every ending committed before this stream began gets its cursor now, not at the poller's next look:
        // the stream's first comment then says the subscriber has all of them.
        self.db.sequence_session_endings().await?;
        let latest = self.db.latest_session_ending_cursor().await?;
        let (after, ended_after) = match since {
            Some(cursor) if cursor <= latest => (cursor, None),
            _ => (0, Some(self.still_verifying_after())),
        };
        let mut keepalive = tokio::time::interval(FEED_KEEPALIVE);
        keepalive.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let follow = Follow {
            services: self.clone(),
            published,
            greeted: false,
            sent_up_to: after,
            ended_after,
            started_at_cursor: latest,
            read_once: false,
            catching_up: true,
            pending: VecDeque::new(),
            keepalive,
            draining: self.inner.feed.draining.subscribe(),
            _slot: slot,
        };
        Ok(futures_util::stream::unfold(follow, |mut follow| async {
            let item = follow.next().await?;
            Some((item, follow))
        }))
    }

    fn take_stream_slot(&self, ip: Option<IpAddr>) -> Result<StreamSlot, ServiceError> {
        let feed = &self.inner.feed;
        let key = ip.map(limit_key);
        if let Some(key) = &key {
            let mut streams = feed.streams.lock().unwrap_or_else(PoisonError::into_inner);
            let open = streams.entry(key.clone()).or_insert(0);
            if *open >= feed.max_streams_per_ip {
                return Err(ServiceError::RateLimited {
                    retry_after_secs: FEED_KEEPALIVE.as_secs(),
                });
            }
            *open += 1;
        }
        Ok(StreamSlot {
            services: self.clone(),
            key,
        })
    }

    /// Endings before this time have no access token that still verifies.
    pub(crate) fn still_verifying_after(&self) -> OffsetDateTime {
        self.db.now() - self.inner.jwt.ttl() - time::Duration::seconds(leeway_secs() + 1)
    }

    /// The Unix time after which no access token of a session that ended at `ended_at` verifies: tokens
    /// issued up to then expire within the access-token lifetime, verifiers allow [`LEEWAY_SECS`], and
    /// [`UNTIL_MARGIN_SECS`] covers clocks that differ.
    fn verifies_until(&self, ended_at: OffsetDateTime) -> i64 {
        let ended = ended_at.unix_timestamp() + i64::from(ended_at.nanosecond() > 0);
        ended + self.inner.jwt.ttl().whole_seconds() + leeway_secs() + UNTIL_MARGIN_SECS
    }

    /// Gives new session endings their cursors and publishes them to this instance's streams, until
    /// dropped: at every change this instance makes or hears of, and every [`FEED_POLL`]. The api runs one
    /// in the background.
    pub async fn follow_session_endings(&self) {
        let mut last = loop {
            match self.db.latest_session_ending_cursor().await {
                Ok(latest) => break latest,
                Err(err) => {
                    log::warn!("the revocation feed cannot read where it stands: {err}");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        };
        loop {
            tokio::select! {
                () = self.db.session_changed() => {}
                () = tokio::time::sleep(FEED_POLL) => {}
            }
            if let Err(err) = self.publish_new_endings(&mut last).await {
                log::warn!("the revocation feed could not read new session endings: {err}");
            }
            // A burst of changes (a refresh load rotates sessions hundreds of times a second) is one
            // look, not one each.
            tokio::time::sleep(FEED_COALESCE).await;
        }
    }

    async fn publish_new_endings(&self, last: &mut i64) -> Result<(), RepoError> {
        self.db.sequence_session_endings().await?;
        loop {
            let batch = self.db.session_endings_after(*last, None, PAGE).await?;
            let Some(newest) = batch.last() else {
                break;
            };
            let after = std::mem::replace(last, newest.cursor);
            let full = batch.len() as u64 == PAGE;
            // No stream open: nobody to tell.
            let _ = self.inner.feed.published.send(Published {
                after,
                endings: Arc::from(batch),
            });
            if !full {
                break;
            }
        }
        *self
            .inner
            .feed
            .last_look
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(std::time::Instant::now());
        Ok(())
    }
}

fn leeway_secs() -> i64 {
    i64::try_from(LEEWAY_SECS).unwrap_or(i64::MAX)
}

/// One stream's state (see [`Services::revocation_stream`]).
struct Follow {
    services: Services,
    published: broadcast::Receiver<Published>,
    /// Whether the first comment (which says the subscriber is up to date) was sent.
    greeted: bool,
    /// The cursor of the last ending sent (or the subscriber's own to start with).
    sent_up_to: i64,
    /// Without a cursor to start from: only endings after this, until the first reading is done.
    ended_after: Option<OffsetDateTime>,
    /// The greatest cursor when the stream started.
    started_at_cursor: i64,
    /// Whether the first reading from the database is done.
    read_once: bool,
    /// Reading from the database (at the start, and after falling behind the poller).
    catching_up: bool,
    pending: VecDeque<SessionEnding>,
    keepalive: tokio::time::Interval,
    draining: watch::Receiver<bool>,
    _slot: StreamSlot,
}

impl Follow {
    /// The next item, or `None` when the stream ends (the api is stopping, or the database failed: the
    /// subscriber reconnects with its cursor and loses nothing).
    async fn next(&mut self) -> Option<FeedItem> {
        loop {
            if *self.draining.borrow() {
                return None;
            }
            if let Some(ending) = self.pending.pop_front() {
                self.sent_up_to = self.sent_up_to.max(ending.cursor);
                return Some(FeedItem::Revoked {
                    cursor: ending.cursor,
                    session_id: ending.session_id,
                    until: self.services.verifies_until(ending.ended_at),
                });
            }
            if self.catching_up {
                let read = self
                    .services
                    .db
                    .session_endings_after(self.sent_up_to, self.ended_after, PAGE)
                    .await;
                match read {
                    Ok(page) => {
                        self.catching_up = page.len() as u64 == PAGE;
                        if !self.catching_up && !self.read_once {
                            // The first reading is done: every ending up to the stream's start was
                            // considered, and what follows is sent whenever it ended (catching up after
                            // falling behind must not drop an ending for its time).
                            self.read_once = true;
                            self.ended_after = None;
                            self.sent_up_to = self.sent_up_to.max(self.started_at_cursor);
                        }
                        self.pending.extend(page);
                    }
                    Err(err) => {
                        log::warn!("a revocation feed stream ends: reading endings failed: {err}");
                        return None;
                    }
                }
                continue;
            }
            tokio::select! {
                changed = self.draining.changed() => {
                    if changed.is_err() {
                        return None;
                    }
                }
                received = self.published.recv() => match received {
                    // What this stream sent reaches the batch's start: the batch continues it.
                    Ok(batch) if batch.after <= self.sent_up_to => {
                        let sent = self.sent_up_to;
                        self.pending.extend(batch.endings.iter().filter(|e| e.cursor > sent));
                    }
                    // A gap: endings the poller published before this stream subscribed (or while it
                    // lagged). Read from the database.
                    Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => self.catching_up = true,
                    Err(broadcast::error::RecvError::Closed) => return None,
                },
                _ = self.keepalive.tick() => {
                    // The first comment stands on this stream's own reading; later ones only while the
                    // poller is looking, or the subscriber would believe itself current while endings made
                    // through other instances go unseen.
                    if self.greeted && !self.services.inner.feed.poller_healthy() {
                        log::warn!("a revocation feed stream ends: this instance's poller is not looking");
                        return None;
                    }
                    self.greeted = true;
                    return Some(FeedItem::KeepAlive);
                }
            }
        }
    }
}
