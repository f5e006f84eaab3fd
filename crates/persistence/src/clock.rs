//! The time the api runs on.

use std::sync::{
    Arc,
    atomic::{AtomicI64, Ordering},
};

use time::OffsetDateTime;

/// The current UTC time, to the microsecond (PostgreSQL's precision): the system's, unless a test moved
/// this clock forward (feature `test-support`) to reach an expiry without waiting for it. Clones share one
/// clock: an api's pools, transactions and services all read the same time.
#[derive(Debug, Clone, Default)]
pub struct Clock {
    /// How far ahead of the system's clock this one is, in microseconds.
    ahead_us: Arc<AtomicI64>,
}

impl Clock {
    /// Now, as this clock reads it.
    pub fn now(&self) -> OffsetDateTime {
        let system = OffsetDateTime::now_utc();
        let now = system
            .checked_add(time::Duration::microseconds(
                self.ahead_us.load(Ordering::Relaxed),
            ))
            .unwrap_or(system);
        now.replace_nanosecond(now.nanosecond() / 1_000 * 1_000)
            .unwrap_or(now)
    }

    /// Now as Unix time in seconds (0 before 1970).
    pub fn unix_now(&self) -> u64 {
        u64::try_from(self.now().unix_timestamp()).unwrap_or(0)
    }

    /// Moves this clock (and every clone of it) forward by `by`.
    #[cfg(feature = "test-support")]
    pub fn advance(&self, by: std::time::Duration) {
        let by = i64::try_from(by.as_micros()).unwrap_or(i64::MAX);
        self.ahead_us.fetch_add(by, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::Clock;

    #[test]
    fn the_clock_reads_the_system_time_to_the_microsecond() {
        let before = time::OffsetDateTime::now_utc() - time::Duration::microseconds(1);
        let now = Clock::default().now();
        assert!(now >= before && now <= time::OffsetDateTime::now_utc());
        assert_eq!(now.nanosecond() % 1_000, 0);
    }
}
