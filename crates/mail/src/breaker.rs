//! A circuit breaker for the mail server: closed (send), open (don't; the server is down) and half-open (one
//! probe after the cool-down). Every state change is logged.

use std::{
    sync::{Mutex, PoisonError},
    time::{Duration, Instant},
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Closed {
        failures: u32,
    },
    Open {
        until: Instant,
    },
    /// The cool-down is over; `probing` while the one probe is out.
    HalfOpen {
        probing: bool,
    },
}

/// Whether a send may go ahead now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// The breaker is closed: send.
    Send,
    /// The cool-down is over: send one message as a probe.
    Probe,
    /// The breaker is open (or a probe is out): wait this long.
    Wait(Duration),
}

#[derive(Debug)]
pub struct CircuitBreaker {
    name: &'static str,
    failure_threshold: u32,
    cooldown: Duration,
    state: Mutex<State>,
}

impl CircuitBreaker {
    /// Opens after `failure_threshold` failures in a row; probes again `cooldown` later.
    pub fn new(name: &'static str, failure_threshold: u32, cooldown: Duration) -> Self {
        Self {
            name,
            failure_threshold: failure_threshold.max(1),
            cooldown,
            state: Mutex::new(State::Closed { failures: 0 }),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Asks to send one message now.
    pub fn admit(&self) -> Admission {
        let mut state = self.state();
        match *state {
            State::Closed { .. } => Admission::Send,
            State::Open { until } => {
                let now = Instant::now();
                if now < until {
                    Admission::Wait(until - now)
                } else {
                    *state = State::HalfOpen { probing: true };
                    log::info!(breaker = self.name; "circuit half-open: probing the server");
                    Admission::Probe
                }
            }
            State::HalfOpen { probing: false } => {
                *state = State::HalfOpen { probing: true };
                Admission::Probe
            }
            State::HalfOpen { probing: true } => Admission::Wait(self.cooldown),
        }
    }

    /// The probe admitted last was not used (nothing to send): the next [`Self::admit`] probes again.
    pub fn probe_skipped(&self) {
        let mut state = self.state();
        if matches!(*state, State::HalfOpen { .. }) {
            *state = State::HalfOpen { probing: false };
        }
    }

    /// Records a successful send.
    pub fn succeeded(&self) {
        let mut state = self.state();
        if !matches!(*state, State::Closed { .. }) {
            log::info!(breaker = self.name; "circuit closed: the server answers again");
        }
        *state = State::Closed { failures: 0 };
    }

    /// Records a failed send.
    pub fn failed(&self) {
        let mut state = self.state();
        match *state {
            State::Closed { failures } if failures + 1 < self.failure_threshold => {
                *state = State::Closed {
                    failures: failures + 1,
                };
            }
            State::Closed { .. } | State::HalfOpen { .. } => {
                *state = State::Open {
                    until: Instant::now() + self.cooldown,
                };
                log::warn!(
                    breaker = self.name, cooldown_secs = self.cooldown.as_secs_f64();
                    "circuit open: the server keeps failing; pausing sends"
                );
            }
            State::Open { .. } => {}
        }
    }

    /// Whether sends are paused now (open, cool-down not over).
    pub fn is_open(&self) -> bool {
        matches!(*self.state(), State::Open { until } if Instant::now() < until)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_after_the_threshold_and_probes_after_the_cooldown() {
        let breaker = CircuitBreaker::new("test", 3, Duration::from_millis(40));
        breaker.failed();
        breaker.failed();
        assert_eq!(
            breaker.admit(),
            Admission::Send,
            "two failures: still closed"
        );
        breaker.failed();
        assert!(breaker.is_open());
        assert!(matches!(breaker.admit(), Admission::Wait(_)));

        std::thread::sleep(Duration::from_millis(45));
        assert_eq!(breaker.admit(), Admission::Probe);
        assert!(
            matches!(breaker.admit(), Admission::Wait(_)),
            "one probe at a time"
        );
        breaker.probe_skipped();
        assert_eq!(
            breaker.admit(),
            Admission::Probe,
            "an unused probe is offered again"
        );
        breaker.failed();
        assert!(breaker.is_open(), "a failed probe opens it again");

        std::thread::sleep(Duration::from_millis(45));
        assert_eq!(breaker.admit(), Admission::Probe);
        breaker.succeeded();
        assert_eq!(breaker.admit(), Admission::Send);
    }

    #[test]
    fn a_success_resets_the_count() {
        let breaker = CircuitBreaker::new("test", 2, Duration::from_secs(60));
        breaker.failed();
        breaker.succeeded();
        breaker.failed();
        assert_eq!(breaker.admit(), Admission::Send);
    }
}
