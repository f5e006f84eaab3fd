//! The per-instance cache of session checks, and how it stays exact.
//!
//! An authenticated request needs to know that its session is live and its user active. Asking the database
//! every time costs a statement per request; this cache answers from memory instead, and is only allowed to
//! when it cannot be wrong about a revocation:
//! - **This instance's own changes** invalidate it synchronously: every repository write that can end a session
//!   or change a user calls [`SessionCache::stale`] (on a [`Transaction`](crate::Transaction), after the commit).
//! - **Other instances' changes** (PostgreSQL) arrive as notifications: a trigger announces every committed
//!   change to users and sessions on `SESSION_CHANGES_CHANNEL`, and [`Database::watch_sessions`] listens.
//!   The cache answers only while the listener is *known* to be receiving: the watcher sends itself a
//!   heartbeat notification every [`HEARTBEAT_EVERY`], and PostgreSQL delivers notifications in commit order, so
//!   having received a heartbeat sent at `t` means every change committed before `t` has been received. The
//!   cache answers for at most [`HEARTBEAT_VALID`] after the last heartbeat's sending; a lost connection (a
//!   notification that may have been missed) empties it at once, and so does the first heartbeat after any gap.
//!   Without a watcher (the command-line tools) a PostgreSQL cache never answers.
//! - **A fill never outlives an invalidation it raced with**: a fill takes a ticket (the invalidation
//!   generation) before its database read and is dropped if any invalidation happened since.
//! - **Every entry is at most `max_age` old** (`SESSION_CACHE_MAX_AGE_MS`): the bound for writers the cache
//!   cannot hear, which on SQLite means another process on the same file (the command-line tools).
//!
//! The cache holds no secret: user ids, profile fields and session ids (never tokens or hashes).

use std::{
    collections::HashMap,
    sync::{Mutex, MutexGuard, PoisonError},
    time::{Duration, Instant},
};

use securecrud_domain::{SessionId, User, UserId};
use time::OffsetDateTime;

use sea_orm::{
    DbBackend,
    sqlx::{
        self, Connection, PgConnection, PgPool,
        postgres::{PgListener, PgPoolOptions},
    },
};
use securecrud_migration::SESSION_CHANGES_CHANNEL;

use crate::{Clock, Database, SessionUser};

/// How often the watcher sends itself a heartbeat notification.
pub(crate) const HEARTBEAT_EVERY: Duration = Duration::from_millis(250);
/// How long after a received heartbeat's sending the cache may answer.
pub(crate) const HEARTBEAT_VALID: Duration = Duration::from_millis(1000);
/// At most this many sessions are cached; a fill beyond it drops the entries past half their max age, or all.
const MAX_ENTRIES: usize = 50_000;

/// What became stale after a write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stale {
    User(UserId),
    Session(SessionId),
    Everything,
}

/// A fill's permission slip: the invalidation generation seen before the database read.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ticket(u64);

#[derive(Debug)]
struct Entry {
    user: User,
    expires_at: OffsetDateTime,
    last_used_at: OffsetDateTime,
    cached_at: Instant,
}

#[derive(Debug, Default)]
struct State {
    entries: HashMap<SessionId, Entry>,
    generation: u64,
    /// Until when the listener is known to have received everything (PostgreSQL); unused on SQLite.
    confirmed_until: Option<Instant>,
}

impl State {
    fn invalidate(&mut self, stale: Stale) {
        self.generation = self.generation.wrapping_add(1);
        match stale {
            Stale::Session(id) => {
                self.entries.remove(&id);
            }
            Stale::User(id) => self.entries.retain(|_, entry| entry.user.id != id),
            Stale::Everything => self.entries.clear(),
        }
    }
}

/// See the module documentation.
pub(crate) struct SessionCache {
    state: Mutex<State>,
    max_age: Duration,
    /// PostgreSQL: answer only while the listener's heartbeats arrive.
    needs_listener: bool,
    /// Woken by every change this instance makes or hears of (see [`SessionCache::changed`]).
    changes: tokio::sync::Notify,
}

impl std::fmt::Debug for SessionCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionCache")
            .field("max_age", &self.max_age)
            .field("needs_listener", &self.needs_listener)
            .field("serving", &self.serving())
            .finish_non_exhaustive()
    }
}

impl SessionCache {
    /// A cache whose entries live at most `max_age` (zero: no cache at all); `needs_listener` for a database
    /// other processes share through notifications (PostgreSQL).
    pub(crate) fn new(max_age: Duration, needs_listener: bool) -> Self {
        Self {
            state: Mutex::new(State::default()),
            max_age,
            needs_listener,
            changes: tokio::sync::Notify::new(),
        }
    }

    /// Whether the cache is on at all (`SESSION_CACHE_MAX_AGE_MS` above zero).
    pub(crate) fn enabled(&self) -> bool {
        !self.max_age.is_zero()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // The state is consistent after any panic (each method leaves it whole), so a poisoned lock is usable.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn serving_at(&self, state: &State, at: Instant) -> bool {
        self.enabled()
            && (!self.needs_listener || state.confirmed_until.is_some_and(|until| at < until))
    }

    /// Whether the cache answers session checks now.
    pub(crate) fn serving(&self) -> bool {
        self.serving_at(&self.lock(), Instant::now())
    }

    /// The cached check of `session_id` for `user_id`, if the cache may answer and has a fresh one.
    pub(crate) fn get(
        &self,
        session_id: SessionId,
        user_id: UserId,
        clock: &Clock,
    ) -> Option<SessionUser> {
        if !self.enabled() {
            return None;
        }
        let at = Instant::now();
        let state = self.lock();
        if !self.serving_at(&state, at) {
            return None;
        }
        let entry = state.entries.get(&session_id)?;
        if entry.user.id != user_id
            || at.duration_since(entry.cached_at) >= self.max_age
            || entry.expires_at <= clock.now()
        {
            return None;
        }
        Some(SessionUser {
            user: entry.user.clone(),
            session_id,
            last_used_at: entry.last_used_at,
            expires_at: entry.expires_at,
        })
    }

    /// Taken before the database read whose result [`SessionCache::fill`] may keep.
    pub(crate) fn ticket(&self) -> Option<Ticket> {
        if !self.enabled() {
            return None;
        }
        let state = self.lock();
        self.serving_at(&state, Instant::now())
            .then_some(Ticket(state.generation))
    }

    /// Keeps a live session's check, unless an invalidation happened since `ticket` was taken.
    pub(crate) fn fill(&self, ticket: Ticket, found: &SessionUser) {
        let at = Instant::now();
        let mut state = self.lock();
        if state.generation != ticket.0 || !self.serving_at(&state, at) {
            return;
        }
        if state.entries.len() >= MAX_ENTRIES {
            let max_age = self.max_age;
            state
                .entries
                .retain(|_, entry| at.duration_since(entry.cached_at) < max_age / 2);
            if state.entries.len() >= MAX_ENTRIES {
                state.entries.clear();
            }
        }
        state.entries.insert(
            found.session_id,
            Entry {
                user: found.user.clone(),
                expires_at: found.expires_at,
                last_used_at: found.last_used_at,
                cached_at: at,
            },
        );
    }

    /// Records that this instance wrote the session's `last_used_at`.
    pub(crate) fn touched(&self, session_id: SessionId, at: OffsetDateTime) {
        if let Some(entry) = self.lock().entries.get_mut(&session_id) {
            entry.last_used_at = at;
        }
    }

    /// Forgets what `stale` names, and refuses fills that read before now.
    pub(crate) fn stale(&self, stale: Stale) {
        self.lock().invalidate(stale);
        self.changes.notify_one();
    }

    /// Returns at the next change of users or sessions this instance makes, or hears of through a
    /// notification (at once when one came since the last call): the revocation feed's cue to look for new
    /// session endings sooner than its next poll. One waiter.
    pub(crate) async fn changed(&self) {
        self.changes.notified().await;
    }

    /// The listener lost its connection: notifications may have been missed.
    pub(crate) fn listener_lost(&self) {
        let mut state = self.lock();
        state.confirmed_until = None;
        state.invalidate(Stale::Everything);
    }

    /// The listener received this instance's heartbeat sent at `sent_at`: everything committed before it has
    /// been received. After a gap (the previous confirmation had lapsed) what is cached may have missed
    /// changes, so it is emptied first.
    pub(crate) fn heartbeat(&self, sent_at: Instant) {
        let at = Instant::now();
        let mut state = self.lock();
        if state.confirmed_until.is_none_or(|until| at >= until) {
            state.invalidate(Stale::Everything);
        }
        let until = sent_at + HEARTBEAT_VALID;
        if state.confirmed_until.is_none_or(|current| until > current) {
            state.confirmed_until = Some(until);
        }
    }

    /// Applies a notification payload of the changes channel (`u:<id>` or `s:<id>`); anything else (`*`
    /// for a truncated table, or unreadable) empties the cache.
    pub(crate) fn notified(&self, payload: &str) {
        let parsed = match payload.split_once(':') {
            Some(("u", id)) => uuid::Uuid::parse_str(id)
                .ok()
                .map(|id| Stale::User(UserId::from_uuid(id))),
            Some(("s", id)) => uuid::Uuid::parse_str(id)
                .ok()
                .map(|id| Stale::Session(SessionId::from_uuid(id))),
            _ => None,
        };
        self.stale(parsed.unwrap_or(Stale::Everything));
    }
}

/// The heartbeats a watcher sent and has not received back: number → when it was sent.
#[derive(Debug, Default)]
struct HeartbeatsSent(Mutex<(u64, HashMap<u64, Instant>)>);

impl HeartbeatsSent {
    /// Numbers a heartbeat about to be sent now.
    fn record(&self) -> u64 {
        let mut sent = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let now = Instant::now();
        // Those never received back (the listener was down) are no use once they would confirm nothing.
        sent.1
            .retain(|_, at| now.duration_since(*at) < HEARTBEAT_VALID);
        sent.0 = sent.0.wrapping_add(1);
        let number = sent.0;
        sent.1.insert(number, now);
        number
    }

    /// When heartbeat `number` was sent, if this watcher sent it and it has not been received before.
    fn take(&self, number: u64) -> Option<Instant> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .1
            .remove(&number)
    }
}

/// How long the watcher waits before listening again after an error.
const LISTEN_RETRY: Duration = Duration::from_millis(250);
/// How long the watcher waits for a connection to listen on.
const LISTEN_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

impl Database {
    /// Whether session checks are answered from this instance's cache now (on PostgreSQL: only while
    /// [`Database::watch_sessions`] runs and its heartbeats arrive).
    pub fn session_cache_serving(&self) -> bool {
        self.sessions.serving()
    }

    /// Empties this instance's session cache, for a change to users or sessions made past this repository
    /// that the cache cannot hear of (on SQLite, e.g. a test arranging a state with SQL).
    pub fn forget_cached_sessions(&self) {
        self.sessions.stale(Stale::Everything);
    }

    /// Returns at the next change of users or sessions made through this instance, or announced by a
    /// PostgreSQL notification while the session cache listens (at once if one came since the last call).
    /// For one waiter: the revocation feed's poller.
    pub async fn session_changed(&self) {
        self.sessions.changed().await;
    }

    /// Keeps this instance's session cache exact on PostgreSQL, where other instances, the command-line tools
    /// and plain SQL change sessions too: listens on the changes channel, forgets what each notification
    /// names, and sends itself a heartbeat every [`HEARTBEAT_EVERY`] so the cache answers only while
    /// notifications are known to arrive (see the module documentation of `session_cache`). Listens on a
    /// connection of its own and sends heartbeats on another (two more than `max_connections`). Heartbeats are
    /// numbered; only a number this watcher sent, at the time it sent it, confirms the listener (anyone who may
    /// `NOTIFY` on the database could otherwise forge a recent one). Runs until the pool is closed
    /// ([`Database::close`]); returns at once on SQLite or with the cache off. Spawn it beside the server.
    pub async fn watch_sessions(&self) {
        if self.backend() != DbBackend::Postgres || !self.sessions.enabled() {
            return;
        }
        let pool = self.postgres_pool().clone();
        let instance = uuid::Uuid::new_v4().simple().to_string();
        let sent = HeartbeatsSent::default();
        tokio::select! {
            () = self.listen_for_changes(&pool, &instance, &sent) => {}
            () = self.send_heartbeats(&pool, &instance, &sent) => {}
        }
        self.sessions.listener_lost();
    }

    async fn listen_for_changes(&self, pool: &PgPool, instance: &str, sent: &HeartbeatsSent) {
        // A connection of its own (not one of the pool's): after a drop, listening again needs a new
        // connection to the server, never a pooled one that may be as stale as the dropped one.
        let own = PgPoolOptions::new()
            .max_connections(1)
            .acquire_timeout(LISTEN_CONNECT_TIMEOUT)
            .connect_lazy_with((*pool.connect_options()).clone());
        let own_heartbeat = format!("ping:{instance}:");
        let mut listener = loop {
            match PgListener::connect_with(&own).await {
                Ok(mut listener) => match listener.listen(SESSION_CHANGES_CHANNEL).await {
                    Ok(()) => break listener,
                    Err(err) => log::warn!("listening for session changes failed: {err}"),
                },
                Err(err) => log::warn!("listening for session changes failed: {err}"),
            }
            tokio::time::sleep(LISTEN_RETRY).await;
        };
        loop {
            match listener.try_recv().await {
                Ok(Some(notification)) => {
                    let payload = notification.payload();
                    if let Some(number) = payload.strip_prefix(&own_heartbeat) {
                        if let Some(at) = number.parse().ok().and_then(|n| sent.take(n)) {
                            self.sessions.heartbeat(at);
                        }
                    } else if !payload.starts_with("ping:") {
                        self.sessions.notified(payload);
                    }
                }
                // The connection dropped (sqlx has listened again on a new one): anything sent in between is
                // lost, so the cache starts over.
                Ok(None) => {
                    log::warn!(
                        "the session-change listener lost its connection; checking sessions in the database until it is back"
                    );
                    self.sessions.listener_lost();
                }
                Err(err) => {
                    log::warn!(
                        "listening for session changes failed: {err}; checking sessions in the database"
                    );
                    self.sessions.listener_lost();
                    tokio::time::sleep(LISTEN_RETRY).await;
                }
            }
        }
    }

    /// Sends a heartbeat every [`HEARTBEAT_EVERY`] on a connection of its own (a busy pool must not delay
    /// it), until the pool is closed.
    async fn send_heartbeats(&self, pool: &PgPool, instance: &str, sent: &HeartbeatsSent) {
        let options = (*pool.connect_options()).clone();
        let mut connection: Option<PgConnection> = None;
        let mut every = tokio::time::interval(HEARTBEAT_EVERY);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            every.tick().await;
            if pool.is_closed() {
                return;
            }
            let sending = match connection.as_mut() {
                Some(sending) => sending,
                None => match PgConnection::connect_with(&options).await {
                    Ok(opened) => connection.insert(opened),
                    Err(err) => {
                        log::debug!("connecting for the session-cache heartbeat failed: {err}");
                        continue;
                    }
                },
            };
            let number = sent.record();
            let ping = sqlx::query("SELECT pg_notify($1, $2)")
                .bind(SESSION_CHANGES_CHANNEL)
                .bind(format!("ping:{instance}:{number}"))
                .execute(&mut *sending)
                .await;
            if let Err(err) = ping {
                log::debug!("sending the session-cache heartbeat failed: {err}");
                connection = None;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use securecrud_domain::{Email, Role, Username};

    use super::*;

    fn found(user: UserId, session: SessionId) -> SessionUser {
        SessionUser {
            user: User {
                id: user,
                username: Username::parse("alice").unwrap_or_else(|_| unreachable!()),
                email: Email::parse("alice@example.com").unwrap_or_else(|_| unreachable!()),
                role: Role::User,
                email_verified: true,
                mfa_enabled: false,
                has_password: true,
                is_active: true,
                created_at: OffsetDateTime::now_utc(),
                updated_at: OffsetDateTime::now_utc(),
            },
            session_id: session,
            last_used_at: OffsetDateTime::now_utc(),
            expires_at: OffsetDateTime::now_utc() + time::Duration::hours(1),
        }
    }

    fn ids() -> (UserId, SessionId) {
        (
            UserId::from_uuid(uuid::Uuid::new_v4()),
            SessionId::from_uuid(uuid::Uuid::new_v4()),
        )
    }

    fn cached(cache: &SessionCache, user: UserId, session: SessionId) {
        let ticket = cache.ticket().unwrap_or_else(|| unreachable!("serving"));
        cache.fill(ticket, &found(user, session));
    }

    #[test]
    fn a_cache_without_a_listener_answers_until_an_invalidation() {
        let cache = SessionCache::new(Duration::from_secs(60), false);
        let (user, session) = ids();
        assert!(cache.get(session, user, &Clock::default()).is_none());
        cached(&cache, user, session);
        assert!(cache.get(session, user, &Clock::default()).is_some());
        assert!(
            cache
                .get(
                    session,
                    UserId::from_uuid(uuid::Uuid::new_v4()),
                    &Clock::default()
                )
                .is_none(),
            "another user's id never matches"
        );
        cache.stale(Stale::Session(session));
        assert!(cache.get(session, user, &Clock::default()).is_none());
        cached(&cache, user, session);
        cache.stale(Stale::User(user));
        assert!(cache.get(session, user, &Clock::default()).is_none());
        cached(&cache, user, session);
        cache.notified(&format!("u:{}", user.as_uuid()));
        assert!(cache.get(session, user, &Clock::default()).is_none());
        cached(&cache, user, session);
        cache.notified("garbage");
        assert!(cache.get(session, user, &Clock::default()).is_none());
    }

    #[test]
    fn a_fill_that_raced_an_invalidation_is_dropped() {
        let cache = SessionCache::new(Duration::from_secs(60), false);
        let (user, session) = ids();
        let ticket = cache.ticket().unwrap_or_else(|| unreachable!("serving"));
        // The revocation commits and invalidates while the fill's read is in flight.
        cache.stale(Stale::Session(session));
        cache.fill(ticket, &found(user, session));
        assert!(cache.get(session, user, &Clock::default()).is_none());
    }

    #[test]
    fn entries_expire_with_their_session_and_their_age() {
        let cache = SessionCache::new(Duration::from_millis(30), false);
        let (user, session) = ids();
        let ticket = cache.ticket().unwrap_or_else(|| unreachable!("serving"));
        let mut ended = found(user, session);
        ended.expires_at = OffsetDateTime::now_utc() - time::Duration::seconds(1);
        cache.fill(ticket, &ended);
        assert!(
            cache.get(session, user, &Clock::default()).is_none(),
            "an expired session"
        );
        cached(&cache, user, session);
        assert!(cache.get(session, user, &Clock::default()).is_some());
        std::thread::sleep(Duration::from_millis(40));
        assert!(
            cache.get(session, user, &Clock::default()).is_none(),
            "older than max_age"
        );
    }

    #[test]
    fn only_a_heartbeat_this_watcher_sent_confirms_and_only_once() {
        let sent = HeartbeatsSent::default();
        let number = sent.record();
        assert!(
            sent.take(number + 1).is_none(),
            "a number never sent (forged)"
        );
        assert!(sent.take(number).is_some());
        assert!(sent.take(number).is_none(), "a replay");
    }

    #[test]
    fn a_zero_max_age_turns_the_cache_off() {
        let cache = SessionCache::new(Duration::ZERO, false);
        assert!(!cache.serving());
        assert!(cache.ticket().is_none());
    }

    #[test]
    fn with_a_listener_it_answers_only_while_heartbeats_arrive() {
        let cache = SessionCache::new(Duration::from_secs(60), true);
        let (user, session) = ids();
        assert!(!cache.serving(), "no heartbeat yet");
        assert!(cache.ticket().is_none());
        cache.heartbeat(Instant::now());
        assert!(cache.serving());
        cached(&cache, user, session);
        assert!(cache.get(session, user, &Clock::default()).is_some());

        // The connection drops: everything cached may have missed a change.
        cache.listener_lost();
        assert!(!cache.serving());
        assert!(cache.get(session, user, &Clock::default()).is_none());
        cache.heartbeat(Instant::now());
        assert!(
            cache.get(session, user, &Clock::default()).is_none(),
            "emptied, not resumed"
        );

        // Heartbeats stop arriving without any error (a stalled connection): the confirmation lapses.
        cached(&cache, user, session);
        let long_ago = Instant::now()
            .checked_sub(HEARTBEAT_VALID * 2)
            .unwrap_or_else(Instant::now);
        let mut state = cache.lock();
        state.confirmed_until = Some(long_ago + HEARTBEAT_VALID);
        drop(state);
        assert!(!cache.serving());
        assert!(cache.get(session, user, &Clock::default()).is_none());
        // The first heartbeat after the gap empties the cache before it answers again.
        cache.heartbeat(Instant::now());
        assert!(cache.serving());
        assert!(cache.get(session, user, &Clock::default()).is_none());
    }
}
