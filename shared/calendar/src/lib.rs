//! Working-time calendar (工作日历): deadlines counted in working days or working hours, on the
//! official schedule of holidays and adjusted working days (调休) that the State Council's
//! general office publishes each year. A weekday-only engine gets China's working weekends wrong
//! (a case due "1 working day" after Friday 26 September 2025 is due on Sunday the 28th), so the
//! calendar is data ([`doc`]): the shipped years (2025, 2026) and an administrator's edits.
//!
//! All civil times are Beijing time, UTC+08:00 fixed (China has had no daylight saving since
//! 1991). A year missing from the data falls back to Monday–Friday, and every answer that
//! consulted such a year says `provisional`, so a user interface can say the official schedule is
//! not loaded — never a silent guess.
//!
//! Pure: no I/O, no clock. Reading and writing `DATA/calendar.json` ([`EDITS_FILE`]) is the
//! callers' (the server and the CLI).

pub mod doc;

use std::collections::{BTreeMap, HashMap};

use jiff::civil::{Date, Time, Weekday};
use jiff::tz::Offset;
use jiff::{SignedDuration, Timestamp};

pub use doc::{CalendarDoc, HolidayDoc, PeriodDoc, WorkdayDoc, YearDoc, default_periods, shipped};

/// Beijing time: UTC+08:00, fixed.
pub const BEIJING: Offset = Offset::constant(8);

/// The file of a data folder holding an administrator's calendar edits (a [`CalendarDoc`]).
pub const EDITS_FILE: &str = "calendar.json";

/// Most working days a deadline may add (ten years' worth).
pub const MAX_DAYS: u32 = 3_650;
/// Most working hours a deadline may add.
pub const MAX_HOURS: u32 = 100_000;
/// Most working minutes a deadline may add.
pub const MAX_MINUTES: u64 = MAX_HOURS as u64 * 60;
/// Longest span [`WorkCalendar::working_time_between`] measures, in calendar days (100 years).
pub const MAX_SPAN_DAYS: i64 = 36_600;

const NANOS_PER_MINUTE: i64 = 60_000_000_000;

/// What can go wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CalendarError {
    /// A calendar document that is not valid; `at` is where (`years.2025.workdays[1].date`).
    #[error("{at}: {detail}")]
    Invalid { at: String, detail: String },
    /// A calendar document that is not JSON of the expected shape.
    #[error("not a calendar document: {0}")]
    Json(String),
    /// More working days, hours or minutes than a deadline may add.
    #[error("{value} {unit} is more than the {max} a deadline may add")]
    TooMany { unit: &'static str, value: u64, max: u64 },
    /// A span longer than [`MAX_SPAN_DAYS`] calendar days.
    #[error("a span of {days} days is longer than the {MAX_SPAN_DAYS} days measured")]
    SpanTooLong { days: i64 },
    /// A result beyond the dates the calendar handles (year 9999).
    #[error("the result is beyond the supported dates: {0}")]
    OutOfRange(String),
    /// A start time that is not RFC 3339 nor a local date and time.
    #[error(
        "`{input}` is not a time: give RFC 3339 such as 2025-09-26T10:00:00+08:00, or a Beijing time 2025-09-26T10:00"
    )]
    BadTime { input: String },
}

fn out_of_range(e: jiff::Error) -> CalendarError {
    CalendarError::OutOfRange(e.to_string())
}

pub(crate) fn nanos_of_day(t: Time) -> i64 {
    i64::from(t.hour()) * 3_600_000_000_000
        + i64::from(t.minute()) * NANOS_PER_MINUTE
        + i64::from(t.second()) * 1_000_000_000
        + i64::from(t.subsec_nanosecond())
}

/// What kind of day a date is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DayKind {
    /// Monday to Friday, no holiday.
    Weekday,
    /// Saturday or Sunday, no adjusted working day.
    Weekend,
    /// An official day off (放假), with the holiday's name.
    Holiday(String),
    /// A weekend day worked (调休上班), with the holiday's name.
    AdjustedWorkday(String),
}

/// One date on the calendar.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Day {
    pub date: Date,
    pub working: bool,
    pub kind: DayKind,
    /// The date's year is not in the data: Monday–Friday was assumed.
    pub provisional: bool,
}

/// A deadline: the instant, and whether a year without official data was crossed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deadline {
    pub at: Timestamp,
    pub provisional: bool,
}

impl Deadline {
    /// RFC 3339 in Beijing time (`2025-09-28T10:00:00+08:00`).
    pub fn rfc3339(&self) -> String {
        beijing(self.at)
    }
}

/// Working time between two instants (negative when the second is earlier).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WorkingTime {
    /// Exact, in nanoseconds.
    pub nanos: i64,
    pub provisional: bool,
}

impl WorkingTime {
    /// Whole minutes, rounded toward zero.
    pub fn minutes(&self) -> i64 {
        self.nanos / NANOS_PER_MINUTE
    }
}

/// An instant as RFC 3339 in Beijing time.
pub fn beijing(ts: Timestamp) -> String {
    ts.display_with_offset(BEIJING).to_string()
}

/// A start time: RFC 3339 with an offset (`2025-09-26T10:00:00+08:00`, `…Z`), or a local date and
/// time `YYYY-MM-DDTHH:MM[:SS]` read as Beijing time. A date alone is refused (which time?).
pub fn parse_time(input: &str) -> Result<Timestamp, CalendarError> {
    let s = input.trim();
    let bad = || CalendarError::BadTime { input: input.to_owned() };
    if s.len() <= 10 {
        return Err(bad());
    }
    if let Ok(ts) = s.parse::<Timestamp>() {
        return Ok(ts);
    }
    let dt: jiff::civil::DateTime = s.parse().map_err(|_| bad())?;
    BEIJING.to_timestamp(dt).map_err(|_| bad())
}

/// One year's rules, indexed by date.
#[derive(Debug, Clone, Default)]
struct YearRules {
    holidays: HashMap<Date, usize>,
    workdays: HashMap<Date, usize>,
    names: Vec<String>,
}

/// A working-time calendar built from a [`CalendarDoc`].
#[derive(Debug, Clone)]
pub struct WorkCalendar {
    doc: CalendarDoc,
    /// (start, end) nanoseconds since midnight, in order, not overlapping.
    periods: Vec<(i64, i64)>,
    years: BTreeMap<i16, YearRules>,
}

impl WorkCalendar {
    /// The shipped calendar: the default periods and the official years in the crate.
    pub fn official() -> Self {
        #[allow(clippy::expect_used)] // compiled-in data, checked by the crate's tests
        Self::from_doc(shipped()).expect("the shipped calendar is valid")
    }

    /// The shipped calendar with an administrator's `edits` laid over it (their periods, and
    /// each year they list replacing the shipped one).
    pub fn with_edits(edits: &CalendarDoc) -> Result<Self, CalendarError> {
        edits.validate()?;
        Self::from_doc(&shipped().overlay(edits))
    }

    /// A calendar of exactly `doc` (default periods when it has none).
    pub fn from_doc(doc: &CalendarDoc) -> Result<Self, CalendarError> {
        doc.validate()?;
        let mut doc = doc.clone();
        let periods = doc.periods.get_or_insert_with(default_periods);
        let periods = doc::parse_periods("periods", periods)?;
        let mut years = BTreeMap::new();
        for (year, y) in &doc.years {
            let mut rules = YearRules::default();
            for h in &y.holidays {
                rules.names.push(h.name.trim().to_owned());
                let mut d = h.from;
                while d <= h.to {
                    rules.holidays.insert(d, rules.names.len() - 1);
                    d = d.tomorrow().map_err(out_of_range)?;
                }
            }
            for w in &y.workdays {
                rules.names.push(w.name.trim().to_owned());
                rules.workdays.insert(w.date, rules.names.len() - 1);
            }
            years.insert(*year, rules);
        }
        Ok(WorkCalendar { doc, periods, years })
    }

    /// The document this calendar was built from (periods always present).
    pub fn doc(&self) -> &CalendarDoc {
        &self.doc
    }

    /// The years with official data.
    pub fn years(&self) -> impl Iterator<Item = i16> + '_ {
        self.years.keys().copied()
    }

    /// Working time in one working day.
    pub fn day_length(&self) -> SignedDuration {
        SignedDuration::from_nanos(self.periods.iter().map(|(s, e)| e - s).sum())
    }

    /// (working, provisional) without allocating.
    fn classify(&self, d: Date) -> (bool, bool) {
        let weekend = matches!(d.weekday(), Weekday::Saturday | Weekday::Sunday);
        match self.years.get(&d.year()) {
            None => (!weekend, true),
            Some(r) if r.holidays.contains_key(&d) => (false, false),
            Some(r) if r.workdays.contains_key(&d) => (true, false),
            Some(_) => (!weekend, false),
        }
    }

    /// Whether `date` is a working day (a year without data: Monday–Friday; see [`Self::day`]).
    pub fn is_working_day(&self, date: Date) -> bool {
        self.classify(date).0
    }

    /// What kind of day `date` is.
    pub fn day(&self, date: Date) -> Day {
        let weekend = matches!(date.weekday(), Weekday::Saturday | Weekday::Sunday);
        let plain = if weekend { DayKind::Weekend } else { DayKind::Weekday };
        let (working, provisional) = self.classify(date);
        let kind = match self.years.get(&date.year()) {
            Some(r) => match (r.holidays.get(&date), r.workdays.get(&date)) {
                (Some(&i), _) => DayKind::Holiday(r.names[i].clone()),
                (None, Some(&i)) => DayKind::AdjustedWorkday(r.names[i].clone()),
                (None, None) => plain,
            },
            None => plain,
        };
        Day { date, working, kind, provisional }
    }

    /// The same time of day on the `n`-th working day after `start`'s date (Beijing time).
    /// Friday 26 September 2025 10:00 + 1 is Sunday 28 September 10:00 (调休). `n = 0` is `start`.
    pub fn add_working_days(&self, start: Timestamp, n: u32) -> Result<Deadline, CalendarError> {
        if n > MAX_DAYS {
            return Err(CalendarError::TooMany { unit: "working days", value: n.into(), max: MAX_DAYS.into() });
        }
        let local = BEIJING.to_datetime(start);
        let (mut date, mut left, mut provisional) = (local.date(), n, false);
        while left > 0 {
            date = date.tomorrow().map_err(out_of_range)?;
            let (working, p) = self.classify(date);
            provisional |= p;
            left -= u32::from(working);
        }
        let at = BEIJING.to_timestamp(date.to_datetime(local.time())).map_err(out_of_range)?;
        Ok(Deadline { at, provisional })
    }

    /// `start` plus `hours` working hours; see [`Self::add_working_minutes`].
    pub fn add_working_hours(&self, start: Timestamp, hours: u32) -> Result<Deadline, CalendarError> {
        if hours > MAX_HOURS {
            return Err(CalendarError::TooMany { unit: "working hours", value: hours.into(), max: MAX_HOURS.into() });
        }
        self.add_working_minutes(start, u64::from(hours) * 60)
    }

    /// `start` plus `minutes` of working time: only time inside the working periods of working
    /// days counts. A start outside working time counts from the next working period; a
    /// deadline that falls exactly at a period's end is that end (17:00, not 09:00 the next
    /// working day). `0` is `start`.
    pub fn add_working_minutes(&self, start: Timestamp, minutes: u64) -> Result<Deadline, CalendarError> {
        if minutes > MAX_MINUTES {
            return Err(CalendarError::TooMany { unit: "working minutes", value: minutes, max: MAX_MINUTES });
        }
        if minutes == 0 {
            return Ok(Deadline { at: start, provisional: false });
        }
        // At most 6e6 minutes = 3.6e17 ns: no overflow.
        let mut left = minutes as i64 * NANOS_PER_MINUTE;
        let local = BEIJING.to_datetime(start);
        let (mut date, mut from, mut provisional) = (local.date(), nanos_of_day(local.time()), false);
        loop {
            let (working, p) = self.classify(date);
            provisional |= p;
            if working {
                for &(ps, pe) in &self.periods {
                    let s = ps.max(from);
                    if s >= pe {
                        continue;
                    }
                    if left <= pe - s {
                        let midnight =
                            BEIJING.to_timestamp(date.to_datetime(Time::midnight())).map_err(out_of_range)?;
                        let at = midnight.checked_add(SignedDuration::from_nanos(s + left)).map_err(out_of_range)?;
                        return Ok(Deadline { at, provisional });
                    }
                    left -= pe - s;
                }
            }
            date = date.tomorrow().map_err(out_of_range)?;
            from = 0;
        }
    }

    /// Working time from `a` to `b` (negative when `b` is before `a`): the overlap of `[a, b)`
    /// with the working periods of working days. For overdue checks and KPIs.
    pub fn working_time_between(&self, a: Timestamp, b: Timestamp) -> Result<WorkingTime, CalendarError> {
        if b < a {
            let w = self.working_time_between(b, a)?;
            return Ok(WorkingTime { nanos: -w.nanos, provisional: w.provisional });
        }
        let (la, lb) = (BEIJING.to_datetime(a), BEIJING.to_datetime(b));
        let days = la.date().until(lb.date()).map_or(i64::MAX, |s| i64::from(s.get_days()));
        if days > MAX_SPAN_DAYS {
            return Err(CalendarError::SpanTooLong { days });
        }
        let (mut date, mut provisional, mut nanos) = (la.date(), false, 0i64);
        loop {
            let from = if date == la.date() { nanos_of_day(la.time()) } else { 0 };
            let to = if date == lb.date() { nanos_of_day(lb.time()) } else { i64::MAX };
            let (working, p) = self.classify(date);
            provisional |= p;
            if working {
                nanos += self.periods.iter().map(|&(ps, pe)| (pe.min(to) - ps.max(from)).max(0)).sum::<i64>();
            }
            if date >= lb.date() {
                break;
            }
            date = date.tomorrow().map_err(out_of_range)?;
        }
        Ok(WorkingTime { nanos, provisional })
    }

    /// Whole working minutes from `a` to `b`; see [`Self::working_time_between`].
    pub fn working_minutes_between(&self, a: Timestamp, b: Timestamp) -> Result<i64, CalendarError> {
        Ok(self.working_time_between(a, b)?.minutes())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn shipped_data_is_valid_and_weekdays_match_the_notices() {
        let doc = shipped();
        doc.validate().unwrap();
        assert_eq!(doc.years.keys().copied().collect::<Vec<_>>(), [2025, 2026]);
        // Every adjusted working day is a weekend day (validate checks it); the notices' own
        // weekday words, checked against the dates:
        let cal = WorkCalendar::official();
        let wd = |s: &str| s.parse::<Date>().unwrap().weekday();
        assert_eq!(wd("2025-01-26"), Weekday::Sunday);
        assert_eq!(wd("2025-02-08"), Weekday::Saturday);
        assert_eq!(wd("2025-04-27"), Weekday::Sunday);
        assert_eq!(wd("2025-09-28"), Weekday::Sunday);
        assert_eq!(wd("2025-10-11"), Weekday::Saturday);
        assert_eq!(wd("2025-01-28"), Weekday::Tuesday); // 除夕、周二
        assert_eq!(wd("2025-10-08"), Weekday::Wednesday);
        assert_eq!(wd("2026-01-04"), Weekday::Sunday);
        assert_eq!(wd("2026-02-14"), Weekday::Saturday);
        assert_eq!(wd("2026-02-15"), Weekday::Sunday); // 腊月二十八、周日
        assert_eq!(wd("2026-02-23"), Weekday::Monday); // 正月初七、周一
        assert_eq!(wd("2026-02-28"), Weekday::Saturday);
        assert_eq!(wd("2026-05-09"), Weekday::Saturday);
        assert_eq!(wd("2026-09-20"), Weekday::Sunday);
        assert_eq!(wd("2026-10-10"), Weekday::Saturday);
        assert_eq!(cal.day_length(), SignedDuration::from_hours(7));
    }

    #[test]
    fn start_times_parse_as_rfc3339_or_beijing_local() {
        let utc = "2025-09-26T02:00:00Z".parse::<Timestamp>().unwrap();
        assert_eq!(parse_time("2025-09-26T10:00:00+08:00").unwrap(), utc);
        assert_eq!(parse_time("2025-09-26T02:00:00Z").unwrap(), utc);
        assert_eq!(parse_time("2025-09-26T10:00").unwrap(), utc);
        assert_eq!(parse_time("2025-09-26T10:00:00").unwrap(), utc);
        assert!(matches!(parse_time("2025-09-26"), Err(CalendarError::BadTime { .. })));
        assert!(matches!(parse_time("明天上午"), Err(CalendarError::BadTime { .. })));
        assert_eq!(beijing(utc), "2025-09-26T10:00:00+08:00");
    }
}
