//! The instance's Prometheus metrics: one registry per [`crate::Services`] (so two apps in one process, as in
//! the tests, never mix their figures), rendered in the text format by [`crate::Services::render_metrics`].
//!
//! Counters and histograms move as things happen; the gauges of the outbox, the mail breaker and the
//! database pool are read when scraped. Labels are bounded sets (route templates, never raw paths).

use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};
use securecrud_persistence::{PoolStatus, WAIT_BUCKETS};

use crate::{LoginOutcome, ServiceError};

/// Latency buckets (seconds) of HTTP requests: from a cached check to a bcrypt at cost 12 and a timeout.
const REQUEST_BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

/// What one instance counts. Cheap to clone (every metric is an `Arc`).
#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    requests: HistogramVec,
    logins: IntCounterVec,
    lockouts: IntCounter,
    refresh_reuse: IntCounter,
    password_wait: Histogram,
    password_rejected: IntCounter,
    mail_pending: IntGauge,
    mail_dead: IntGauge,
    mail_breaker_open: IntGauge,
    db_up: IntGauge,
    db_connections: IntGaugeVec,
    db_max_connections: IntGauge,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

/// Every value of the `outcome` label of `securecrud_logins_total`.
const LOGIN_OUTCOMES: [&str; 8] = [
    "succeeded",
    "mfa_required",
    "invalid_credentials",
    "locked",
    "deactivated",
    "unverified",
    "unavailable",
    "error",
];

/// How a login (`/auth/login` or the token endpoint's password grant) ended, as counted.
pub(crate) fn login_outcome(result: &Result<LoginOutcome, ServiceError>) -> &'static str {
    match result {
        Ok(LoginOutcome::Tokens(_)) => "succeeded",
        Ok(LoginOutcome::MfaRequired(_)) => "mfa_required",
        Err(ServiceError::InvalidCredentials) => "invalid_credentials",
        Err(ServiceError::RateLimited { .. }) => "locked",
        Err(ServiceError::AccountDisabled) => "deactivated",
        Err(ServiceError::EmailNotVerified) => "unverified",
        Err(ServiceError::Busy { .. } | ServiceError::Unavailable(_)) => "unavailable",
        Err(_) => "error",
    }
}

impl Metrics {
    /// A registry with every family, and `begin_waits` (the database's transaction-start histogram).
    ///
    /// # Errors
    /// If a family's options are invalid (a bug, found by every test).
    pub(crate) fn new(begin_waits: Histogram) -> prometheus::Result<Self> {
        let registry = Registry::new();
        let logins = registered(&registry, IntCounterVec::new(LOGINS.opts(), &["outcome"])?)?;
        // Every outcome from zero, so that a rate of failures exists before the first one.
        for outcome in LOGIN_OUTCOMES {
            logins.with_label_values(&[outcome]);
        }
        registry.register(Box::new(begin_waits))?;
        let requests = HistogramOpts::from(REQUESTS.opts()).buckets(REQUEST_BUCKETS.to_vec());
        let password_wait = HistogramOpts::from(PASSWORD_WAIT.opts())
            .buckets(WAIT_BUCKETS.iter().copied().chain([2.5, 5.0]).collect());
        Ok(Self {
            requests: registered(
                &registry,
                HistogramVec::new(requests, &["route", "method", "status"])?,
            )?,
            logins,
            lockouts: counter(&registry, LOCKOUTS)?,
            refresh_reuse: counter(&registry, REFRESH_REUSE)?,
            password_wait: registered(&registry, Histogram::with_opts(password_wait)?)?,
            password_rejected: counter(&registry, PASSWORD_REJECTED)?,
            mail_pending: gauge(&registry, MAIL_PENDING)?,
            mail_dead: gauge(&registry, MAIL_DEAD)?,
            mail_breaker_open: gauge(&registry, MAIL_BREAKER_OPEN)?,
            db_up: gauge(&registry, DB_UP)?,
            db_connections: registered(
                &registry,
                IntGaugeVec::new(DB_CONNECTIONS.opts(), &["state"])?,
            )?,
            db_max_connections: gauge(&registry, DB_MAX_CONNECTIONS)?,
            registry,
        })
    }

    /// One HTTP request: its route template (`/api/v1/tasks/{id}`, or `unmatched`), method, status and
    /// duration.
    pub fn observe_request(&self, route: &str, method: &str, status: u16, seconds: f64) {
        let status = status.to_string();
        self.requests
            .with_label_values(&[route, method, status.as_str()])
            .observe(seconds);
    }

    pub(crate) fn login(&self, outcome: &str) {
        self.logins.with_label_values(&[outcome]).inc();
    }

    pub(crate) fn lockout(&self) {
        self.lockouts.inc();
    }

    pub(crate) fn refresh_reuse(&self) {
        self.refresh_reuse.inc();
    }

    pub(crate) fn password_wait(&self) -> &Histogram {
        &self.password_wait
    }

    pub(crate) fn password_rejected(&self) -> &IntCounter {
        &self.password_rejected
    }

    /// Sets the gauges read at scrape time and renders every family in the text format.
    pub(crate) fn render(
        &self,
        outbox: Option<(u64, u64)>,
        breaker_open: bool,
        db_up: bool,
        pool: PoolStatus,
    ) -> String {
        if let Some((pending, dead)) = outbox {
            self.mail_pending
                .set(i64::try_from(pending).unwrap_or(i64::MAX));
            self.mail_dead.set(i64::try_from(dead).unwrap_or(i64::MAX));
        }
        self.mail_breaker_open.set(i64::from(breaker_open));
        self.db_up.set(i64::from(db_up));
        let idle = i64::from(pool.idle);
        self.db_connections.with_label_values(&["idle"]).set(idle);
        self.db_connections
            .with_label_values(&["in_use"])
            .set(i64::from(pool.open) - idle);
        self.db_max_connections.set(i64::from(pool.max));
        let mut text = Vec::new();
        if let Err(err) = TextEncoder::new().encode(&self.registry.gather(), &mut text) {
            log::error!("rendering the metrics failed: {err}");
        }
        String::from_utf8(text).unwrap_or_default()
    }
}

/// `metric`, registered in `registry` (which keeps a clone).
fn registered<M: prometheus::core::Collector + Clone + 'static>(
    registry: &Registry,
    metric: M,
) -> prometheus::Result<M> {
    registry.register(Box::new(metric.clone()))?;
    Ok(metric)
}

/// A counter registered in `registry`.
fn counter(registry: &Registry, family: Family) -> prometheus::Result<IntCounter> {
    registered(registry, IntCounter::with_opts(family.opts())?)
}

/// A gauge registered in `registry`.
fn gauge(registry: &Registry, family: Family) -> prometheus::Result<IntGauge> {
    registered(registry, IntGauge::with_opts(family.opts())?)
}

/// A metric family's name and help text.
#[derive(Clone, Copy)]
struct Family(&'static str, &'static str);

impl Family {
    fn opts(self) -> Opts {
        Opts::new(self.0, self.1)
    }
}

const REQUESTS: Family = Family(
    "securecrud_http_request_duration_seconds",
    "HTTP requests by route template, method and status, and how long they took",
);
const LOGINS: Family = Family(
    "securecrud_logins_total",
    "Password logins (login and the token endpoint's password grant) by outcome",
);
const LOCKOUTS: Family = Family(
    "securecrud_login_lockouts_total",
    "Login identifiers locked after repeated failures",
);
const REFRESH_REUSE: Family = Family(
    "securecrud_refresh_reuse_detected_total",
    "Refresh tokens presented again after rotation (their sessions were ended)",
);
const PASSWORD_WAIT: Family = Family(
    "securecrud_password_queue_wait_seconds",
    "Time a request waited for its turn at password hashing",
);
const PASSWORD_REJECTED: Family = Family(
    "securecrud_password_queue_rejected_total",
    "Requests answered 503 because password hashing was at capacity",
);
const MAIL_PENDING: Family = Family(
    "securecrud_mail_outbox_pending",
    "Messages in the outbox waiting to be sent (due or retrying)",
);
const MAIL_DEAD: Family = Family(
    "securecrud_mail_outbox_dead",
    "Messages given up after the last attempt (kept until pruned)",
);
const MAIL_BREAKER_OPEN: Family = Family(
    "securecrud_mail_breaker_open",
    "1 while this instance's mail circuit breaker is open (sending paused)",
);
const DB_UP: Family = Family(
    "securecrud_db_up",
    "1 while the database answers this instance's probe, 0 while requests are answered 503",
);
const DB_CONNECTIONS: Family = Family(
    "securecrud_db_pool_connections",
    "Open connections of this instance's pools (requests' and background work's), by state",
);
const DB_MAX_CONNECTIONS: Family = Family(
    "securecrud_db_pool_max_connections",
    "The most connections this instance's pools may open (see DB_MAX_CONNECTIONS)",
);
