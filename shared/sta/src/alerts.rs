//! Sensor alert rules and the incident state machine (告警规则与事件状态机, issue 18), without I/O.
//!
//! Why here: a rule speaks of SensorThings entities (a Datastream, or every Datastream of a
//! Sensor or an ObservedProperty) and of readings (time, number); deciding when an incident opens
//! and closes is pure and must be testable fast and by properties, while the server only stores
//! rules and incidents and opens/closes cases. No clock: every time comes in.
//!
//! A rule has a [`Scope`] (which datastreams), a [`Condition`] and two minimum durations that
//! bound flapping. Conditions:
//! - `Above { threshold, clear }`: breach when a value is > `threshold`, recovered when ≤ `clear`
//!   (`clear` ≤ `threshold`; values in between — the hysteresis band — change nothing while an
//!   incident is open, and open nothing while none is).
//! - `Below { threshold, clear }`: the mirror (breach < `threshold`, recovered ≥ `clear`).
//! - `Rate { per_minute, clear_per_minute, window_minutes }`: the change from the oldest reading
//!   of the last `window_minutes` to the newest, per minute; breach when |rate| > `per_minute`,
//!   recovered when ≤ `clear_per_minute`. Undecided until the window spans at least a minute.
//! - `Silence { minutes }`: no reading for that long (judged by [`silence`] on a periodic tick,
//!   from the newest stored reading); any reading ends it.
//!
//! [`Tracker`] is the state of one (rule, datastream): `Normal → Pending → Alerting →
//! Recovering → Normal`. With `min_breach_seconds` the breach must last that long (every reading
//! in between breaching) before the incident opens; with `min_recover_seconds` recovery must last
//! that long before it closes. **Invariant:** transitions alternate `Open`, `Close`, `Open` …: one
//! ongoing breach is one incident. **Out-of-order and duplicate readings:** a reading not newer
//! than the newest one the tracker judged is ignored (counted, never judged), so the outcome
//! depends only on the order readings arrive in, and re-sending readings changes nothing.

use std::collections::VecDeque;

use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

/// Longest rule name, characters.
pub const MAX_NAME: usize = 100;
/// Longest rate window and silence, minutes (7 days).
pub const MAX_MINUTES: u32 = 7 * 24 * 60;
/// Longest minimum duration, seconds (1 day).
pub const MAX_HOLD_SECONDS: u32 = 86_400;
/// Readings a rate window keeps at most (older ones leave first).
pub const MAX_WINDOW_READINGS: usize = 1_024;

/// Which datastreams a rule watches: one, or a class of sensor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    Datastream(i64),
    /// Every Datastream of this ObservedProperty (all water levels).
    ObservedProperty(i64),
    /// Every Datastream of this Sensor (all datastreams of one sensor model).
    Sensor(i64),
}

/// What a datastream is, for [`Scope::matches`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DatastreamInfo {
    pub id: i64,
    pub sensor: Option<i64>,
    pub observed_property: Option<i64>,
}

impl Scope {
    pub fn matches(&self, ds: &DatastreamInfo) -> bool {
        match *self {
            Scope::Datastream(d) => ds.id == d,
            Scope::ObservedProperty(p) => ds.observed_property == Some(p),
            Scope::Sensor(s) => ds.sensor == Some(s),
        }
    }
}

/// When a datastream is in breach.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Condition {
    Above { threshold: f64, clear: f64 },
    Below { threshold: f64, clear: f64 },
    Rate { per_minute: f64, clear_per_minute: f64, window_minutes: u32 },
    Silence { minutes: u32 },
}

/// A rule as the evaluator runs it.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    pub scope: Scope,
    pub condition: Condition,
    pub min_breach_seconds: u32,
    pub min_recover_seconds: u32,
}

/// Why a rule is refused: the member at fault and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct RuleError {
    pub field: &'static str,
    pub message: String,
}

fn bad(field: &'static str, message: impl Into<String>) -> RuleError {
    RuleError { field, message: message.into() }
}

/// Checks a rule's name and bounds (a refused rule is never stored).
pub fn validate(name: &str, rule: &Rule) -> Result<(), RuleError> {
    let n = name.trim().chars().count();
    if n == 0 || name.chars().count() > MAX_NAME {
        return Err(bad("name", format!("a name of 1 to {MAX_NAME} characters")));
    }
    let finite = |f: &'static str, v: f64| if v.is_finite() { Ok(()) } else { Err(bad(f, "not a finite number")) };
    match rule.condition {
        Condition::Above { threshold, clear } => {
            finite("condition.threshold", threshold)?;
            finite("condition.clear", clear)?;
            if clear > threshold {
                return Err(bad(
                    "condition.clear",
                    "for `above`, clear must be ≤ threshold (recovery below the limit)",
                ));
            }
        }
        Condition::Below { threshold, clear } => {
            finite("condition.threshold", threshold)?;
            finite("condition.clear", clear)?;
            if clear < threshold {
                return Err(bad(
                    "condition.clear",
                    "for `below`, clear must be ≥ threshold (recovery above the limit)",
                ));
            }
        }
        Condition::Rate { per_minute, clear_per_minute, window_minutes } => {
            finite("condition.per_minute", per_minute)?;
            finite("condition.clear_per_minute", clear_per_minute)?;
            if per_minute <= 0.0 {
                return Err(bad("condition.per_minute", "a rate above 0"));
            }
            if !(0.0..=per_minute).contains(&clear_per_minute) {
                return Err(bad("condition.clear_per_minute", "between 0 and per_minute"));
            }
            if !(1..=MAX_MINUTES).contains(&window_minutes) {
                return Err(bad("condition.window_minutes", format!("1 to {MAX_MINUTES} minutes")));
            }
        }
        Condition::Silence { minutes } => {
            if !(1..=MAX_MINUTES).contains(&minutes) {
                return Err(bad("condition.minutes", format!("1 to {MAX_MINUTES} minutes")));
            }
        }
    }
    if rule.min_breach_seconds > MAX_HOLD_SECONDS {
        return Err(bad("min_breach_seconds", format!("at most {MAX_HOLD_SECONDS}")));
    }
    if rule.min_recover_seconds > MAX_HOLD_SECONDS {
        return Err(bad("min_recover_seconds", format!("at most {MAX_HOLD_SECONDS}")));
    }
    Ok(())
}

/// How one reading stands against a condition.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Level {
    /// In breach; `measured` is what was compared (the value or the rate), `limit` the threshold.
    Breach { measured: f64, limit: f64 },
    /// Recovered (on the far side of `clear`).
    Clear,
    /// Neither (hysteresis band, or a rate window too short to judge): nothing changes.
    Band,
}

/// What the server does.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Transition {
    /// Open an incident (one case). `since`: when the breach began; `at`: the reading that made
    /// it last long enough.
    Open { since: Timestamp, at: Timestamp, value: f64, measured: f64, limit: f64 },
    /// Close the open incident.
    Close { at: Timestamp, value: f64 },
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Phase {
    Normal,
    Pending { since: Timestamp },
    Alerting,
    Recovering { since: Timestamp },
}

/// The state of one (rule, datastream).
#[derive(Debug, Clone)]
pub struct Tracker {
    phase: Phase,
    /// The newest reading judged (readings not newer are ignored).
    newest: Option<Timestamp>,
    /// Recent readings for rate rules (oldest first).
    window: VecDeque<(Timestamp, f64)>,
    /// Readings ignored as late or duplicate.
    pub ignored: u64,
}

impl Default for Tracker {
    fn default() -> Self {
        Tracker::new(false)
    }
}

impl Tracker {
    /// A tracker with an incident open or not (as the server's storage says).
    pub fn new(open: bool) -> Tracker {
        Tracker {
            phase: if open { Phase::Alerting } else { Phase::Normal },
            newest: None,
            window: VecDeque::new(),
            ignored: 0,
        }
    }

    /// Is an incident open (alerting or recovering)?
    pub fn is_open(&self) -> bool {
        matches!(self.phase, Phase::Alerting | Phase::Recovering { .. })
    }

    /// Sets the open state from storage (another process opened or closed the incident).
    pub fn sync_open(&mut self, open: bool) {
        if open != self.is_open() {
            self.phase = if open { Phase::Alerting } else { Phase::Normal };
        }
    }

    /// The newest reading time judged.
    pub fn newest(&self) -> Option<Timestamp> {
        self.newest
    }

    /// Judges one reading; `None` when nothing changes (or the reading is late or a duplicate).
    pub fn observe(&mut self, rule: &Rule, t: Timestamp, value: f64) -> Option<Transition> {
        if self.newest.is_some_and(|n| t <= n) || !value.is_finite() {
            self.ignored += 1;
            return None;
        }
        self.newest = Some(t);
        let level = match rule.condition {
            Condition::Above { threshold, clear } => level_of(value > threshold, value <= clear, value, threshold),
            Condition::Below { threshold, clear } => level_of(value < threshold, value >= clear, value, threshold),
            Condition::Rate { per_minute, clear_per_minute, window_minutes } => {
                self.rate_level(t, value, per_minute, clear_per_minute, window_minutes)
            }
            // A reading ends a silence at once.
            Condition::Silence { .. } => Level::Clear,
        };
        self.step(rule, t, value, level)
    }

    fn rate_level(&mut self, t: Timestamp, value: f64, limit: f64, clear: f64, window_minutes: u32) -> Level {
        let window = SignedDuration::from_secs(i64::from(window_minutes) * 60);
        self.window.push_back((t, value));
        while self.window.front().is_some_and(|(ft, _)| t.duration_since(*ft) > window)
            || self.window.len() > MAX_WINDOW_READINGS
        {
            self.window.pop_front();
        }
        let Some(&(t0, v0)) = self.window.front() else { return Level::Band };
        let span = t.duration_since(t0).as_secs_f64();
        if span < 60.0 {
            return Level::Band;
        }
        let rate = (value - v0) / (span / 60.0);
        level_of(rate.abs() > limit, rate.abs() <= clear, rate, limit)
    }

    /// The state machine proper (also used by [`silence`]).
    fn step(&mut self, rule: &Rule, t: Timestamp, value: f64, level: Level) -> Option<Transition> {
        let min_breach = SignedDuration::from_secs(i64::from(rule.min_breach_seconds));
        let min_recover = SignedDuration::from_secs(i64::from(rule.min_recover_seconds));
        let open =
            |since: Timestamp, measured: f64, limit: f64| Transition::Open { since, at: t, value, measured, limit };
        match (self.phase, level) {
            (Phase::Normal, Level::Breach { measured, limit }) => {
                if min_breach.is_zero() {
                    self.phase = Phase::Alerting;
                    Some(open(t, measured, limit))
                } else {
                    self.phase = Phase::Pending { since: t };
                    None
                }
            }
            (Phase::Pending { since }, Level::Breach { measured, limit }) => {
                if t.duration_since(since) >= min_breach {
                    self.phase = Phase::Alerting;
                    Some(open(since, measured, limit))
                } else {
                    None
                }
            }
            (Phase::Pending { .. }, _) => {
                self.phase = Phase::Normal;
                None
            }
            (Phase::Alerting, Level::Clear) => {
                if min_recover.is_zero() {
                    self.phase = Phase::Normal;
                    Some(Transition::Close { at: t, value })
                } else {
                    self.phase = Phase::Recovering { since: t };
                    None
                }
            }
            (Phase::Recovering { since }, Level::Clear) => {
                if t.duration_since(since) >= min_recover {
                    self.phase = Phase::Normal;
                    Some(Transition::Close { at: t, value })
                } else {
                    None
                }
            }
            (Phase::Recovering { .. }, _) => {
                self.phase = Phase::Alerting;
                None
            }
            (Phase::Normal, _) | (Phase::Alerting, _) => None,
        }
    }
}

fn level_of(breach: bool, clear: bool, measured: f64, limit: f64) -> Level {
    if breach {
        Level::Breach { measured, limit }
    } else if clear {
        Level::Clear
    } else {
        Level::Band
    }
}

/// A silence rule on a tick: `newest` is the newest stored reading of the datastream (any
/// process's), `watched_since` when the rule began watching (a datastream that never reported is
/// silent from then), `now` the tick's time. Opens when nothing arrived for the rule's minutes;
/// closes an open incident once a reading newer than the silence's start exists.
pub fn silence(
    tracker: &mut Tracker,
    rule: &Rule,
    newest: Option<Timestamp>,
    watched_since: Timestamp,
    now: Timestamp,
) -> Option<Transition> {
    let Condition::Silence { minutes } = rule.condition else { return None };
    let quiet = SignedDuration::from_secs(i64::from(minutes) * 60);
    let from = newest.map_or(watched_since, |n| n.max(watched_since));
    let silent_for = now.duration_since(from);
    if silent_for >= quiet {
        if tracker.is_open() {
            return None;
        }
        tracker.phase = Phase::Alerting;
        let since = from.checked_add(quiet).unwrap_or(now);
        return Some(Transition::Open {
            since,
            at: now,
            value: f64::NAN,
            measured: silent_for.as_secs_f64() / 60.0,
            limit: f64::from(minutes),
        });
    }
    if tracker.is_open() {
        tracker.phase = Phase::Normal;
        return Some(Transition::Close { at: newest.unwrap_or(now), value: f64::NAN });
    }
    None
}

#[cfg(test)]
#[path = "alerts_tests.rs"]
mod tests;
