//! The calendar as a document: working periods of a day and, per year, the official holidays
//! (放假) and adjusted working days (调休上班). The same shape is shipped inside the crate (one
//! file per year, `data/<year>.json`), stored by an administrator's edits (`DATA/calendar.json`)
//! and carried on the wire (`shikong_protocol::api::calendar`).
//!
//! Everything that can be wrong in an edit is refused here with the place it is wrong (`at`, a
//! path such as `years.2025.workdays[1].date`): a date outside its year, a date both a holiday
//! and a working day, a holiday listed twice, an adjusted working day that is a weekday anyway,
//! periods out of order or overlapping.

use std::collections::{BTreeMap, BTreeSet};

use jiff::civil::{Date, Time, Weekday};
use serde::{Deserialize, Serialize};

use crate::CalendarError;

/// Years a document may describe (no DST in China since 1991; jiff's dates end in 9999).
pub const YEARS: std::ops::RangeInclusive<i16> = 1992..=2999;

/// Longest holiday range (the longest official ones are 8–9 days; a month is a typo's bound).
pub const MAX_HOLIDAY_DAYS: i32 = 31;

/// Longest holiday name, in characters.
pub const MAX_NAME_CHARS: usize = 40;

/// Most working periods in a day.
pub const MAX_PERIODS: usize = 12;

/// A calendar document: working periods (absent: the default, or the shipped calendar's) and
/// years by number.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CalendarDoc {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub periods: Option<Vec<PeriodDoc>>,
    #[serde(default)]
    pub years: BTreeMap<i16, YearDoc>,
}

/// One working period of a day, `HH:MM` to `HH:MM` (Beijing time), end excluded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeriodDoc {
    pub start: String,
    pub end: String,
}

/// One year's official schedule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct YearDoc {
    /// Where the dates come from (the notice's title and date).
    pub source: String,
    pub holidays: Vec<HolidayDoc>,
    #[serde(default)]
    pub workdays: Vec<WorkdayDoc>,
}

/// Days off (放假), `from` to `to` inclusive.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HolidayDoc {
    pub name: String,
    pub from: Date,
    pub to: Date,
}

/// A weekend day worked instead (调休上班), for the holiday `name`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkdayDoc {
    pub date: Date,
    pub name: String,
}

impl PeriodDoc {
    pub fn new(start: &str, end: &str) -> Self {
        PeriodDoc { start: start.to_owned(), end: end.to_owned() }
    }
}

/// The default working periods: 09:00–12:00 and 13:00–17:00 (7 hours).
pub fn default_periods() -> Vec<PeriodDoc> {
    vec![PeriodDoc::new("09:00", "12:00"), PeriodDoc::new("13:00", "17:00")]
}

fn invalid(at: impl Into<String>, detail: impl Into<String>) -> CalendarError {
    CalendarError::Invalid { at: at.into(), detail: detail.into() }
}

/// `HH:MM` (two digits each) as a time of day.
fn hh_mm(at: &str, s: &str) -> Result<Time, CalendarError> {
    let bad = || invalid(at, format!("`{s}` is not a time HH:MM (00:00 to 23:59)"));
    let b = s.as_bytes();
    if b.len() != 5 || b[2] != b':' || !b.iter().enumerate().all(|(i, c)| i == 2 || c.is_ascii_digit()) {
        return Err(bad());
    }
    let h: i8 = s[..2].parse().map_err(|_| bad())?;
    let m: i8 = s[3..].parse().map_err(|_| bad())?;
    Time::new(h, m, 0, 0).map_err(|_| bad())
}

/// Parses and checks working periods: at least one, each `start < end`, in order, none
/// overlapping. Answers (start, end) as nanoseconds since midnight.
pub(crate) fn parse_periods(at: &str, periods: &[PeriodDoc]) -> Result<Vec<(i64, i64)>, CalendarError> {
    if periods.is_empty() {
        return Err(invalid(at, "at least one working period is needed"));
    }
    if periods.len() > MAX_PERIODS {
        return Err(invalid(at, format!("{} periods; at most {MAX_PERIODS}", periods.len())));
    }
    let mut out: Vec<(i64, i64)> = Vec::with_capacity(periods.len());
    for (i, p) in periods.iter().enumerate() {
        let here = format!("{at}[{i}]");
        let start = hh_mm(&format!("{here}.start"), &p.start)?;
        let end = hh_mm(&format!("{here}.end"), &p.end)?;
        if start >= end {
            return Err(invalid(format!("{here}.end"), format!("{} is not after its start {}", p.end, p.start)));
        }
        let (s, e) = (crate::nanos_of_day(start), crate::nanos_of_day(end));
        if let Some(&(_, prev_end)) = out.last()
            && s < prev_end
        {
            return Err(invalid(
                format!("{here}.start"),
                format!(
                    "{} is before the end of the previous period: periods must be in order and not overlap",
                    p.start
                ),
            ));
        }
        out.push((s, e));
    }
    Ok(out)
}

fn check_name(at: &str, name: &str) -> Result<(), CalendarError> {
    let n = name.trim().chars().count();
    if n == 0 {
        return Err(invalid(at, "a name is needed (元旦, 春节, 清明节, 劳动节, 端午节, 中秋节, 国庆节 …)"));
    }
    if n > MAX_NAME_CHARS || name.chars().any(char::is_control) {
        return Err(invalid(at, format!("at most {MAX_NAME_CHARS} characters, no control characters")));
    }
    Ok(())
}

impl YearDoc {
    /// Checks the year's dates; `at` names the year in errors (`years.2025`).
    pub fn validate(&self, year: i16, at: &str) -> Result<(), CalendarError> {
        if !YEARS.contains(&year) {
            return Err(invalid(at, format!("year {year} is outside {}..={}", YEARS.start(), YEARS.end())));
        }
        if self.source.chars().count() > 400 || self.source.chars().any(char::is_control) {
            return Err(invalid(format!("{at}.source"), "at most 400 characters, no control characters"));
        }
        let in_year = |field: String, d: Date| {
            if d.year() == year {
                Ok(())
            } else {
                Err(invalid(field, format!("{d} is not in {year}: list it under the year it falls in")))
            }
        };
        let mut off: BTreeSet<Date> = BTreeSet::new();
        for (i, h) in self.holidays.iter().enumerate() {
            let here = format!("{at}.holidays[{i}]");
            check_name(&format!("{here}.name"), &h.name)?;
            in_year(format!("{here}.from"), h.from)?;
            in_year(format!("{here}.to"), h.to)?;
            if h.to < h.from {
                return Err(invalid(format!("{here}.to"), format!("{} is before `from` {}", h.to, h.from)));
            }
            let days = h.from.until(h.to).map_or(i32::MAX, |s| s.get_days()) + 1;
            if days > MAX_HOLIDAY_DAYS {
                return Err(invalid(
                    format!("{here}.to"),
                    format!("{days} days; a holiday is at most {MAX_HOLIDAY_DAYS}"),
                ));
            }
            let mut d = h.from;
            loop {
                if !off.insert(d) {
                    return Err(invalid(here.clone(), format!("{d} is already a day of another holiday")));
                }
                if d >= h.to {
                    break;
                }
                d = d.tomorrow().map_err(|e| invalid(here.clone(), e.to_string()))?;
            }
        }
        let mut on: BTreeSet<Date> = BTreeSet::new();
        for (i, w) in self.workdays.iter().enumerate() {
            let here = format!("{at}.workdays[{i}]");
            check_name(&format!("{here}.name"), &w.name)?;
            in_year(format!("{here}.date"), w.date)?;
            if off.contains(&w.date) {
                return Err(invalid(format!("{here}.date"), format!("{} is also listed as a holiday", w.date)));
            }
            if !matches!(w.date.weekday(), Weekday::Saturday | Weekday::Sunday) {
                return Err(invalid(
                    format!("{here}.date"),
                    format!(
                        "{} is a {:?}, a working day anyway: adjusted working days are weekend days",
                        w.date,
                        w.date.weekday()
                    ),
                ));
            }
            if !on.insert(w.date) {
                return Err(invalid(format!("{here}.date"), format!("{} is listed twice", w.date)));
            }
        }
        Ok(())
    }
}

impl CalendarDoc {
    /// Reads a document (JSON), refusing unknown members.
    pub fn from_json(text: &str) -> Result<Self, CalendarError> {
        serde_json::from_str(text).map_err(|e| CalendarError::Json(e.to_string()))
    }

    pub fn to_json_pretty(&self) -> String {
        // A document of strings, dates and maps always serializes.
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// Checks the periods (when given) and every year.
    pub fn validate(&self) -> Result<(), CalendarError> {
        if let Some(p) = &self.periods {
            parse_periods("periods", p)?;
        }
        for (year, y) in &self.years {
            y.validate(*year, &format!("years.{year}"))?;
        }
        Ok(())
    }

    /// This document with `edits` laid over it: the edits' periods when given, and each year the
    /// edits list replaces this document's year whole.
    pub fn overlay(&self, edits: &CalendarDoc) -> CalendarDoc {
        let mut out = self.clone();
        if let Some(p) = &edits.periods {
            out.periods = Some(p.clone());
        }
        for (year, y) in &edits.years {
            out.years.insert(*year, y.clone());
        }
        out
    }
}

/// The years shipped in the crate, from the State Council general office's notices
/// (国务院办公厅关于…年部分节假日安排的通知), with the default periods.
pub fn shipped() -> &'static CalendarDoc {
    static SHIPPED: std::sync::OnceLock<CalendarDoc> = std::sync::OnceLock::new();
    SHIPPED.get_or_init(|| {
        let files: [(i16, &str); 2] =
            [(2025, include_str!("../data/2025.json")), (2026, include_str!("../data/2026.json"))];
        let mut doc = CalendarDoc { periods: Some(default_periods()), years: BTreeMap::new() };
        for (year, text) in files {
            // Compiled-in data, checked by the crate's tests (`shipped_data_is_valid`): a broken
            // file fails every test, never a running server only.
            #[allow(clippy::expect_used)]
            let y: YearDoc = serde_json::from_str(text).expect("shipped calendar data parses");
            doc.years.insert(year, y);
        }
        doc
    })
}
