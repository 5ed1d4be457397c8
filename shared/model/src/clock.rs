//! Where "now" comes from: the one `Clock` seam of shikong. Stores, the auth database and the sync
//! engine take a `&dyn Clock` (or an `Arc<dyn Clock>`) instead of reading the system time, so
//! transaction times, token expiry and login lockout are tested at chosen instants, not by sleeping.
//!
//! This crate defines the seam and never calls it: nothing else in `shikong-model` reads a clock.
//! [`SystemClock`] is what binaries pass in; [`FixedStepClock`] and [`ManualClock`] are for tests.

use std::sync::{Mutex, PoisonError};

use jiff::{SignedDuration, Timestamp};

/// A source of the current instant.
pub trait Clock: Send + Sync + std::fmt::Debug {
    fn now(&self) -> Timestamp;
}

/// The system clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::now()
    }
}

/// A clock that starts at an instant and advances by a fixed step on every reading (tests that
/// want each transaction at its own, predictable instant).
#[derive(Debug)]
pub struct FixedStepClock {
    next: Mutex<Timestamp>,
    step: SignedDuration,
}

impl FixedStepClock {
    pub fn new(start: Timestamp, step: SignedDuration) -> Self {
        FixedStepClock { next: Mutex::new(start), step }
    }
}

impl Clock for FixedStepClock {
    fn now(&self) -> Timestamp {
        let mut next = self.next.lock().unwrap_or_else(PoisonError::into_inner);
        let now = *next;
        *next = now.checked_add(self.step).unwrap_or(now);
        now
    }
}

/// A clock that stands still until moved (tests): `now()` returns the same instant until
/// [`ManualClock::advance`] or [`ManualClock::set`] is called.
#[derive(Debug)]
pub struct ManualClock {
    now: Mutex<Timestamp>,
}

impl ManualClock {
    pub fn new(start: Timestamp) -> Self {
        ManualClock { now: Mutex::new(start) }
    }

    /// Moves the clock forward (or back, with a negative duration).
    pub fn advance(&self, by: SignedDuration) {
        let mut now = self.now.lock().unwrap_or_else(PoisonError::into_inner);
        *now = now.checked_add(by).unwrap_or(*now);
    }

    pub fn set(&self, to: Timestamp) {
        *self.now.lock().unwrap_or_else(PoisonError::into_inner) = to;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        *self.now.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn fixed_step_clock_advances_on_every_reading() {
        let c = FixedStepClock::new(t("2025-01-01T00:00:00Z"), SignedDuration::from_hours(24));
        assert_eq!(c.now(), t("2025-01-01T00:00:00Z"));
        assert_eq!(c.now(), t("2025-01-02T00:00:00Z"));
    }

    #[test]
    fn manual_clock_stands_still_until_moved() {
        let c = ManualClock::new(t("2025-03-01T01:00:00Z"));
        assert_eq!(c.now(), c.now());
        c.advance(SignedDuration::from_mins(15));
        assert_eq!(c.now(), t("2025-03-01T01:15:00Z"));
        c.set(t("2026-01-01T00:00:00Z"));
        assert_eq!(c.now(), t("2026-01-01T00:00:00Z"));
    }

    #[test]
    fn clocks_are_usable_as_trait_objects() {
        let clocks: [&dyn Clock; 3] = [
            &SystemClock,
            &FixedStepClock::new(Timestamp::UNIX_EPOCH, SignedDuration::ZERO),
            &ManualClock::new(Timestamp::UNIX_EPOCH),
        ];
        assert!(clocks.iter().all(|c| c.now() >= Timestamp::UNIX_EPOCH));
    }
}
