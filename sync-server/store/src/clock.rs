//! Where transaction time comes from. Passed in, so tests can make histories at chosen instants.

use std::sync::Mutex;

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

/// A clock that starts at an instant and advances by a fixed step on every reading (tests).
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
        let mut next = self.next.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let now = *next;
        *next = now.checked_add(self.step).unwrap_or(now);
        now
    }
}
