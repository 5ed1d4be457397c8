//! Time: instants as users write them, Beijing time for display, valid-time intervals.
//!
//! Two clocks matter (bitemporal model): **valid time** — when a state holds in the world
//! (`valid_from` ≤ t < `valid_to`, open ends allowed) — and **transaction time** — when the platform
//! recorded it (assigned by the store, never by users). Both are stored in UTC; users in China read
//! and type Beijing time (UTC+08:00, no daylight saving since 1991), so an instant typed without an
//! offset is taken as Beijing time.

use jiff::civil::{Date, DateTime};
use jiff::tz::{Offset, TimeZone};
use jiff::{Timestamp, Zoned};

use crate::error::ModelError;

/// UTC+08:00.
pub const BEIJING: Offset = Offset::constant(8);

fn bad(input: &str, message: impl Into<String>) -> ModelError {
    ModelError::Time { input: input.to_owned(), message: message.into() }
}

/// Parses an instant: RFC 3339 with an offset (`2025-06-01T08:00:00Z`, `…+08:00`), or without one
/// (`2025-06-01T08:00:00`, `2025-06-01 08:00`) taken as Beijing time, or a bare date
/// (`2025-06-01`) meaning the start of that day in Beijing.
pub fn parse_instant(input: &str) -> Result<Timestamp, ModelError> {
    let s = input.trim();
    if s.is_empty() {
        return Err(bad(input, "empty"));
    }
    if let Ok(ts) = s.parse::<Timestamp>() {
        return Ok(ts);
    }
    if let Ok(z) = s.parse::<Zoned>() {
        return Ok(z.timestamp());
    }
    if let Ok(dt) = s.parse::<DateTime>() {
        return dt.to_zoned(TimeZone::fixed(BEIJING)).map(|z| z.timestamp()).map_err(|e| bad(input, e.to_string()));
    }
    if let Ok(d) = s.parse::<Date>() {
        return d.to_zoned(TimeZone::fixed(BEIJING)).map(|z| z.timestamp()).map_err(|e| bad(input, e.to_string()));
    }
    Err(bad(input, "expected RFC 3339 such as 2025-06-01T08:00:00+08:00, or a date 2025-06-01 (Beijing time)"))
}

/// Parses a calendar date `YYYY-MM-DD`.
pub fn parse_date(input: &str) -> Result<Date, ModelError> {
    input.trim().parse::<Date>().map_err(|_| bad(input, "expected a date YYYY-MM-DD"))
}

/// Formats an instant in Beijing time, RFC 3339 (`2025-06-01T08:00:00+08:00`).
pub fn beijing(ts: Timestamp) -> String {
    ts.display_with_offset(BEIJING).to_string()
}

/// Formats an instant in UTC, RFC 3339 with `Z`.
pub fn utc(ts: Timestamp) -> String {
    ts.to_string()
}

/// Formats an instant as GeoPackage stores DATETIME: UTC, milliseconds, `Z`
/// (`2025-06-01T00:00:00.000Z`). Fixed width, so text comparison in SQL orders instants.
pub fn gpkg_datetime(ts: Timestamp) -> String {
    ts.strftime("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

/// A valid-time interval `[from, to)`; `None` is an open end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ValidTime {
    pub from: Option<Timestamp>,
    pub to: Option<Timestamp>,
}

impl ValidTime {
    pub const ALWAYS: ValidTime = ValidTime { from: None, to: None };

    pub fn new(from: Option<Timestamp>, to: Option<Timestamp>) -> Result<Self, ModelError> {
        if let (Some(f), Some(t)) = (from, to)
            && f >= t
        {
            return Err(bad(&format!("{f}/{t}"), "valid_from must be before valid_to"));
        }
        Ok(Self { from, to })
    }

    /// Whether the state holds at `t`.
    pub fn contains(&self, t: Timestamp) -> bool {
        self.from.is_none_or(|f| f <= t) && self.to.is_none_or(|e| t < e)
    }

    /// Whether `[self)` and the closed query range `[a, b]` share an instant (open ends allowed).
    pub fn overlaps(&self, a: Option<Timestamp>, b: Option<Timestamp>) -> bool {
        let starts_before_b = match (self.from, b) {
            (Some(f), Some(b)) => f <= b,
            _ => true,
        };
        let ends_after_a = match (self.to, a) {
            (Some(t), Some(a)) => t > a,
            _ => true,
        };
        starts_before_b && ends_after_a
    }
}

/// A valid-time filter: an instant, or an interval with open ends (`..`), as OGC's `datetime`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValidFilter {
    At(Timestamp),
    Range(Option<Timestamp>, Option<Timestamp>),
}

impl ValidFilter {
    /// Parses `INSTANT`, `START/END`, `../END` or `START/..` (OGC API – Features `datetime`).
    pub fn parse(input: &str) -> Result<Self, ModelError> {
        match input.split_once('/') {
            None => Ok(ValidFilter::At(parse_instant(input)?)),
            Some((a, b)) => {
                let open = |s: &str| s.trim().is_empty() || s.trim() == "..";
                let a = if open(a) { None } else { Some(parse_instant(a)?) };
                let b = if open(b) { None } else { Some(parse_instant(b)?) };
                if let (Some(x), Some(y)) = (a, b)
                    && x > y
                {
                    return Err(bad(input, "interval start is after its end"));
                }
                Ok(ValidFilter::Range(a, b))
            }
        }
    }

    pub fn matches(&self, v: &ValidTime) -> bool {
        match *self {
            ValidFilter::At(t) => v.contains(t),
            ValidFilter::Range(a, b) => v.overlaps(a, b),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instants_without_offset_are_beijing_time() {
        let utc = parse_instant("2025-06-01T00:00:00Z").unwrap();
        assert_eq!(parse_instant("2025-06-01T08:00:00").unwrap(), utc);
        assert_eq!(parse_instant("2025-06-01T08:00:00+08:00").unwrap(), utc);
        assert_eq!(parse_instant("2025-06-01").unwrap().to_string(), "2025-05-31T16:00:00Z");
        assert_eq!(beijing(utc), "2025-06-01T08:00:00+08:00");
        assert_eq!(gpkg_datetime(utc), "2025-06-01T00:00:00.000Z");
        assert_eq!(parse_instant(&gpkg_datetime(utc)).unwrap(), utc);
        assert!(parse_instant("昨天").unwrap_err().to_string().contains("RFC 3339"));
    }

    #[test]
    fn valid_time_is_half_open() {
        let t = |s| parse_instant(s).unwrap();
        let v = ValidTime::new(Some(t("2020-01-01")), Some(t("2021-01-01"))).unwrap();
        assert!(v.contains(t("2020-01-01")));
        assert!(!v.contains(t("2021-01-01")));
        assert!(ValidFilter::parse("2020-06-01/..").unwrap().matches(&v));
        assert!(!ValidFilter::parse("2021-01-01/..").unwrap().matches(&v));
        assert!(ValidFilter::parse("../2020-01-01").unwrap().matches(&v));
        assert!(ValidTime::new(Some(t("2021-01-01")), Some(t("2020-01-01"))).is_err());
        assert!(ValidFilter::parse("2022-01-01/2021-01-01").is_err());
    }
}
