//! Brute-force protection: the per-IP limit of the auth endpoints (a fixed-window counter in the database,
//! shared by every instance), login lockout durations, and the sweep of state that is no longer needed.

use std::{
    collections::HashMap,
    net::IpAddr,
    sync::{Mutex, PoisonError},
};

use anyhow::Context;
use securecrud_domain::{AuditKind, UserId};
use securecrud_persistence::AttemptClaim;
use serde_json::json;
use time::{Duration, OffsetDateTime, format_description::well_known::Rfc3339};

use crate::{ClientInfo, ServiceError, Services, audit::event};

/// What one sweep deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Swept {
    pub rate_limit_counters: u64,
    pub login_lockouts: u64,
    pub ended_sessions: u64,
    pub mfa_challenges: u64,
    pub webauthn_ceremonies: u64,
    /// Expired OpenID Connect flows and login codes.
    pub oidc_flows: u64,
    pub sent_mail: u64,
    /// Session endings whose access tokens have all expired (the revocation feed has nothing to say of them).
    pub session_endings: u64,
}

/// Password checks claimed from the lockout of some identifiers, before the password is checked (see
/// [`Services::claim_password_check`]).
#[derive(Debug)]
#[must_use = "a failed check must be reported with `password_check_failed`"]
pub(crate) struct Claim {
    /// (identifier, the attempt's number in its quota, earlier locks).
    claimed: Vec<(String, u32, u32)>,
}

impl Claim {
    pub(crate) fn identifiers(&self) -> Vec<String> {
        self.claimed.iter().map(|(key, _, _)| key.clone()).collect()
    }
}

/// The most clients the in-memory limiter tracks in one minute (a few MB at most): distinct IPv6 /64s are
/// cheap to come by, so the map must not grow with them.
const MEMORY_LIMITER_MAX_CLIENTS: usize = 50_000;

/// The general per-IP limit of this instance, counted in memory per minute: the map is emptied when a new
/// minute starts, and holds at most [`MEMORY_LIMITER_MAX_CLIENTS`] addresses.
#[derive(Debug, Default)]
pub(crate) struct MemoryLimiter {
    state: Mutex<(i64, HashMap<String, u32>)>,
}

impl MemoryLimiter {
    /// Counts one request from `ip` in the minute of `at` (Unix time).
    ///
    /// # Errors
    /// [`ServiceError::RateLimited`] past `limit` requests this minute.
    fn hit(&self, ip: IpAddr, limit: u32, at: i64) -> Result<(), ServiceError> {
        let minute = at - at.rem_euclid(60);
        let count = {
            let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
            if state.0 != minute {
                *state = (minute, HashMap::new());
            }
            let key = limit_key(ip);
            if state.1.len() >= MEMORY_LIMITER_MAX_CLIENTS && !state.1.contains_key(&key) {
                // Full for this minute (a flood of distinct addresses): an untracked client is let
                // through rather than every new client refused; the map empties at the next minute.
                return Ok(());
            }
            let count = state.1.entry(key).or_insert(0);
            *count = count.saturating_add(1);
            *count
        };
        if count > limit {
            return Err(ServiceError::RateLimited {
                retry_after_secs: retry_after(minute + 60 - at),
            });
        }
        Ok(())
    }
}

impl Services {
    /// Claims one password check from the lockout of each of `identifiers` (lower-cased logins), before any
    /// bcrypt work. The claim is atomic in the database: of any number of concurrent attempts for one
    /// identifier, at most `LOGIN_MAX_FAILURES` are ever checked against a password, on every instance.
    ///
    /// # Errors
    /// [`ServiceError::RateLimited`] while an identifier is locked, or when its quota is used up (which
    /// locks it, recording `login_locked`).
    pub(crate) async fn claim_password_check(
        &self,
        identifiers: &[String],
        user: Option<UserId>,
        client: &ClientInfo,
    ) -> Result<Claim, ServiceError> {
        let db = &self.db;
        let max = self.inner.protection.login_max_failures;
        let mut claimed = Vec::with_capacity(identifiers.len());
        for identifier in identifiers {
            match db.claim_login_attempt(identifier, max).await? {
                AttemptClaim::Allowed { count, locks } => {
                    claimed.push((identifier.clone(), count, locks));
                }
                AttemptClaim::Locked(until) => {
                    self.release_claim(Claim { claimed }).await;
                    return Err(ServiceError::RateLimited {
                        retry_after_secs: seconds_until(until, self.db.now()),
                    });
                }
                AttemptClaim::OverQuota { locks } => {
                    self.release_claim(Claim { claimed }).await;
                    let until = self
                        .lock_identifier(identifier, locks, user, client)
                        .await?;
                    return Err(ServiceError::RateLimited {
                        retry_after_secs: seconds_until(until, self.db.now()),
                    });
                }
            }
        }
        Ok(Claim { claimed })
    }

    /// Gives back a claim whose password was never checked (hashing at capacity, or another identifier of
    /// the same check was locked). Best effort: a failure is logged, and the attempt stays counted.
    pub(crate) async fn release_claim(&self, claim: Claim) {
        for (identifier, _, _) in claim.claimed {
            if let Err(err) = self.db.release_login_attempt(&identifier).await {
                log::warn!("giving back a login attempt failed: {err:#}");
            }
        }
    }

    /// Records a wrong password for a claim (`login_failed`, with `reason`); an identifier whose quota it
    /// used up is locked. The attempt itself was counted by the claim.
    pub(crate) async fn password_check_failed(
        &self,
        claim: Claim,
        user: Option<UserId>,
        client: &ClientInfo,
        reason: &str,
    ) -> Result<(), ServiceError> {
        self.check_failed(claim, user, client, AuditKind::LoginFailed, reason)
            .await
    }

    /// Records a wrong second factor for a claim (`mfa_failed`, with `reason`), counted and locking like a
    /// wrong password.
    pub(crate) async fn code_check_failed(
        &self,
        claim: Claim,
        user: UserId,
        client: &ClientInfo,
        reason: &str,
    ) -> Result<(), ServiceError> {
        self.check_failed(claim, Some(user), client, AuditKind::MfaFailed, reason)
            .await
    }

    async fn check_failed(
        &self,
        claim: Claim,
        user: Option<UserId>,
        client: &ClientInfo,
        kind: AuditKind,
        reason: &str,
    ) -> Result<(), ServiceError> {
        let max = self.inner.protection.login_max_failures;
        let login = claim
            .claimed
            .first()
            .map(|(key, _, _)| recorded_login(key, user));
        {
            let tx = self.db.begin().await?;
            tx.record_audit(event(
                kind,
                client,
                None,
                user,
                json!({ "login": login, "reason": reason }),
            ))
            .await?;
            tx.commit().await?;
        }
        for (identifier, count, locks) in claim.claimed {
            if count >= max {
                self.lock_identifier(&identifier, locks, user, client)
                    .await?;
            }
        }
        Ok(())
    }

    /// Fails unless every one of `identifiers` is unlocked now: the re-check, after a correct password and
    /// before anything is issued or changed, that no concurrent attempt locked it meanwhile.
    ///
    /// # Errors
    /// [`ServiceError::RateLimited`] when one is locked.
    pub(crate) async fn ensure_unlocked(
        &self,
        tx: &securecrud_persistence::Transaction,
        identifiers: &[String],
    ) -> Result<(), ServiceError> {
        for identifier in identifiers {
            if let Some(until) = tx.login_locked_until_for_update(identifier).await? {
                return Err(ServiceError::RateLimited {
                    retry_after_secs: seconds_until(until, self.db.now()),
                });
            }
        }
        Ok(())
    }

    /// Locks `identifier` (after `locks` earlier locks) unless a concurrent caller did; records
    /// `login_locked` when this call locked it. Returns when the lock ends.
    async fn lock_identifier(
        &self,
        identifier: &str,
        locks: u32,
        user: Option<UserId>,
        client: &ClientInfo,
    ) -> Result<OffsetDateTime, ServiceError> {
        let protection = &self.inner.protection;
        // `LOGIN_LOCKOUT_SECS`, doubling with each earlier lock, at most `LOGIN_LOCKOUT_MAX_SECS`.
        let until =
            self.db.now() + capped_doubling(protection.lockout_base, protection.lockout_max, locks);
        let tx = self.db.begin().await?;
        if !tx
            .lock_login(identifier, protection.login_max_failures, until)
            .await?
        {
            let current = tx.login_locked_until(identifier).await?;
            tx.commit().await?;
            return Ok(current.unwrap_or(until));
        }
        let formatted = until
            .format(&Rfc3339)
            .context("formatting a lock time failed")?;
        let login = recorded_login(identifier, user);
        tx.record_audit(event(
            AuditKind::LoginLocked,
            client,
            None,
            user,
            json!({ "login": login, "locked_until": formatted }),
        ))
        .await?;
        tx.commit().await?;
        self.inner.metrics.lockout();
        log::warn!(
            login:% = login.escape_debug();
            "login identifier locked after repeated failures"
        );
        Ok(until)
    }

    /// Counts one request from `ip` against the general limit of this instance (`RATE_LIMIT_API_PER_MIN`).
    ///
    /// # Errors
    /// [`ServiceError::RateLimited`] when `ip` has used up the current minute.
    pub fn check_api_rate(&self, ip: Option<IpAddr>) -> Result<(), ServiceError> {
        let limit = self.inner.protection.api_rate_limit;
        let Some(ip) = ip.filter(|_| limit > 0) else {
            return Ok(());
        };
        let at = self.db.now().unix_timestamp();
        self.inner.api_limiter.hit(ip, limit, at)
    }

    /// Counts one request from `ip` against the auth endpoints' limit (`RATE_LIMIT_AUTH_PER_MIN` per
    /// `RATE_LIMIT_AUTH_WINDOW_SECS`). One small write per request.
    ///
    /// # Errors
    /// [`ServiceError::RateLimited`] when `ip` has used up the current window.
    pub async fn check_auth_rate(&self, ip: Option<IpAddr>) -> Result<(), ServiceError> {
        let protection = &self.inner.protection;
        let Some(ip) = ip.filter(|_| protection.auth_rate_limit > 0) else {
            return Ok(());
        };
        let window = protection.auth_rate_window.whole_seconds().max(1);
        let at = self.db.now().unix_timestamp();
        let window_start = at - at.rem_euclid(window);
        let count = self
            .db
            .hit_rate_limit(&format!("auth:{}", limit_key(ip)), window_start)
            .await?;
        if count > protection.auth_rate_limit {
            return Err(ServiceError::RateLimited {
                retry_after_secs: retry_after(window_start + window - at),
            });
        }
        Ok(())
    }

    /// Deletes expired rate-limit counters, idle lockout state, long-ended sessions and messages sent more
    /// than `MAIL_KEEP_SENT_SECS` ago. The api runs this every minute.
    ///
    /// # Errors
    /// [`ServiceError::Unavailable`] or [`ServiceError::Unexpected`] when the database fails.
    pub async fn sweep(&self) -> Result<Swept, ServiceError> {
        let window = self
            .inner
            .protection
            .auth_rate_window
            .whole_seconds()
            .max(1);
        let current_window = {
            let at = self.db.now().unix_timestamp();
            at - at.rem_euclid(window)
        };
        let swept = self.db.sweep_protection_state(current_window).await?;
        let sent_mail = self
            .db
            .prune_sent_mail(self.db.now() - self.inner.mail.keep_sent)
            .await?;
        // A minute's margin for instances whose clocks differ a little.
        let session_endings = self
            .db
            .prune_session_endings(self.still_verifying_after() - Duration::minutes(1))
            .await?;
        Ok(Swept {
            rate_limit_counters: swept.rate_limit_counters,
            login_lockouts: swept.login_lockouts,
            ended_sessions: swept.ended_sessions,
            mfa_challenges: swept.mfa_challenges,
            webauthn_ceremonies: swept.webauthn_ceremonies,
            oidc_flows: swept.oidc_flows,
            sent_mail,
            session_endings,
        })
    }
}

/// How a login identifier is recorded in the audit trail and the logs: as typed when it names a known
/// account, else as a short digest, so that a password typed into the login field by mistake is never kept.
fn recorded_login(identifier: &str, user: Option<UserId>) -> String {
    match user {
        Some(_) => identifier.to_owned(),
        None => format!("unknown:{}", &securecrud_auth::hash_token(identifier)[..16]),
    }
}

/// `base` doubled `times` times, at most `max` (overflow included): the back-off of locks and mail retries.
pub(crate) fn capped_doubling(base: Duration, max: Duration, times: u32) -> Duration {
    let factor = 1_i32.checked_shl(times.min(30)).unwrap_or(i32::MAX);
    base.checked_mul(factor).unwrap_or(max).min(max)
}

/// Whole seconds until `until`, at least 1 (for `Retry-After`).
pub(crate) fn seconds_until(until: OffsetDateTime, now: OffsetDateTime) -> u64 {
    retry_after((until - now).as_seconds_f64().ceil() as i64)
}

fn retry_after(seconds: i64) -> u64 {
    u64::try_from(seconds).unwrap_or(0).max(1)
}

/// The limiter key of an address: IPv4 as is, IPv6 by its /64 network (one subscriber's usual allocation, so
/// that rotating through one's own addresses does not reset the count).
pub(crate) fn limit_key(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => {
            let s = v6.segments();
            format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_clients_are_counted_by_their_64_network() {
        let a: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        assert_eq!(limit_key(a), limit_key(b));
        assert_eq!(limit_key(a), "2001:db8:1:2::/64");
        assert_eq!(limit_key("203.0.113.9".parse().unwrap()), "203.0.113.9");
    }

    #[test]
    fn the_memory_limiter_tracks_a_bounded_number_of_clients() {
        let limiter = MemoryLimiter::default();
        for i in 0..(MEMORY_LIMITER_MAX_CLIENTS as u128 + 1_000) {
            let ip = IpAddr::V6(std::net::Ipv6Addr::from(i << 64));
            limiter.hit(ip, 5, 1_800_000_000).unwrap();
        }
        let state = limiter.state.lock().unwrap();
        assert_eq!(state.1.len(), MEMORY_LIMITER_MAX_CLIENTS);
    }

    #[test]
    fn the_memory_limiter_counts_per_minute_of_the_time_it_is_given() {
        let limiter = MemoryLimiter::default();
        let ip: IpAddr = "203.0.113.9".parse().unwrap();
        let minute = 1_800_000_000; // a multiple of 60: the start of a minute
        for _ in 0..2 {
            limiter.hit(ip, 2, minute + 10).unwrap();
        }
        let Err(ServiceError::RateLimited { retry_after_secs }) = limiter.hit(ip, 2, minute + 59)
        else {
            panic!("the third request of a minute is over a limit of 2");
        };
        assert_eq!(retry_after_secs, 1);
        limiter.hit(ip, 2, minute + 60).unwrap();
    }

    #[test]
    fn locks_double_up_to_the_maximum() {
        let lock = |n| capped_doubling(Duration::minutes(1), Duration::minutes(15), n);
        assert_eq!(lock(0), Duration::minutes(1));
        assert_eq!(lock(1), Duration::minutes(2));
        assert_eq!(lock(3), Duration::minutes(8));
        assert_eq!(lock(4), Duration::minutes(15));
        assert_eq!(lock(40), Duration::minutes(15));
    }

    #[test]
    fn retry_after_is_at_least_one_second() {
        assert_eq!(retry_after(0), 1);
        assert_eq!(retry_after(-5), 1);
        assert_eq!(retry_after(42), 42);
    }
}
