//! The calendar against the official 2025 schedule (国务院办公厅关于2025年部分节假日安排的通知):
//! the working Sundays of 调休, the October holiday week, deadlines in working days and hours, the
//! fallback to Monday–Friday (marked provisional) for years without data, administrators' edits
//! and their validation; and properties of the arithmetic.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

use jiff::Timestamp;
use jiff::civil::Date;
use proptest::prelude::*;
use shikong_calendar::*;

fn date(s: &str) -> Date {
    s.parse().unwrap()
}

fn t(s: &str) -> Timestamp {
    parse_time(s).unwrap()
}

fn days(cal: &WorkCalendar, start: &str, n: u32) -> (String, bool) {
    let d = cal.add_working_days(t(start), n).unwrap();
    (d.rfc3339(), d.provisional)
}

fn hours(cal: &WorkCalendar, start: &str, n: u32) -> (String, bool) {
    let d = cal.add_working_hours(t(start), n).unwrap();
    (d.rfc3339(), d.provisional)
}

#[test]
fn the_2025_adjusted_sundays_are_working_days() {
    let cal = WorkCalendar::official();
    for d in ["2025-01-26", "2025-04-27", "2025-09-28"] {
        let day = cal.day(date(d));
        assert!(day.working && !day.provisional, "{day:?}");
        assert!(matches!(day.kind, DayKind::AdjustedWorkday(_)), "{day:?}");
    }
    for d in ["2025-02-08", "2025-10-11"] {
        assert!(cal.is_working_day(date(d)), "{d} (Saturday, 调休)");
    }
    assert_eq!(cal.day(date("2025-09-28")).kind, DayKind::AdjustedWorkday("国庆节、中秋节".into()));
    assert_eq!(cal.day(date("2025-01-26")).kind, DayKind::AdjustedWorkday("春节".into()));
    // Ordinary weekends stay off.
    assert_eq!(cal.day(date("2025-09-27")).kind, DayKind::Weekend);
    assert!(!cal.is_working_day(date("2025-10-12")));
}

#[test]
fn the_october_2025_holiday_week_is_off() {
    let cal = WorkCalendar::official();
    let mut d = date("2025-10-01");
    while d <= date("2025-10-08") {
        let day = cal.day(d);
        assert!(!day.working, "{day:?}");
        assert_eq!(day.kind, DayKind::Holiday("国庆节、中秋节".into()));
        d = d.tomorrow().unwrap();
    }
    assert!(cal.is_working_day(date("2025-09-30")));
    assert!(cal.is_working_day(date("2025-10-09")));
    // Every other holiday of the notice.
    for (d, name) in [
        ("2025-01-01", "元旦"),
        ("2025-01-28", "春节"),
        ("2025-02-04", "春节"),
        ("2025-04-04", "清明节"),
        ("2025-05-05", "劳动节"),
        ("2025-06-02", "端午节"),
    ] {
        assert_eq!(cal.day(date(d)).kind, DayKind::Holiday(name.into()), "{d}");
    }
    assert!(cal.is_working_day(date("2025-02-05")));
}

#[test]
fn working_days_land_at_the_same_time_of_day() {
    let cal = WorkCalendar::official();
    // The issue's example: Friday 10:00 + 1 working day before a 调休 Sunday is that Sunday.
    assert_eq!(days(&cal, "2025-09-26T10:00", 1), ("2025-09-28T10:00:00+08:00".into(), false));
    // … + 2 is Monday 29, + 3 Tuesday 30 September; + 4 jumps the holiday week to Thursday 9 October.
    assert_eq!(days(&cal, "2025-09-26T10:00", 2).0, "2025-09-29T10:00:00+08:00");
    assert_eq!(days(&cal, "2025-09-26T10:00", 3).0, "2025-09-30T10:00:00+08:00");
    assert_eq!(days(&cal, "2025-09-26T10:00", 4).0, "2025-10-09T10:00:00+08:00");
    // Friday 10 October + 1 is the working Saturday 11 October.
    assert_eq!(days(&cal, "2025-10-10T15:30:00+08:00", 1).0, "2025-10-11T15:30:00+08:00");
    // An ordinary Friday + 1 is Monday; a start on a holiday counts from the next days.
    assert_eq!(days(&cal, "2025-06-13T09:00", 1).0, "2025-06-16T09:00:00+08:00");
    assert_eq!(days(&cal, "2025-10-03T11:00", 1).0, "2025-10-09T11:00:00+08:00");
    // A UTC input keeps its Beijing time of day.
    assert_eq!(days(&cal, "2025-09-26T02:00:00Z", 1).0, "2025-09-28T10:00:00+08:00");
    assert_eq!(days(&cal, "2025-09-26T10:00", 0).0, "2025-09-26T10:00:00+08:00");
    // A weekday-only calendar (no years loaded) gets the example wrong, and says it is guessing.
    let weekdays_only = WorkCalendar::from_doc(&CalendarDoc::default()).unwrap();
    assert_eq!(days(&weekdays_only, "2025-09-26T10:00", 1), ("2025-09-29T10:00:00+08:00".into(), true));
}

#[test]
fn working_hours_skip_the_lunch_break_nights_and_holidays() {
    let cal = WorkCalendar::official();
    // Across the lunch break: 11:00 + 2 h = 14:00.
    assert_eq!(hours(&cal, "2025-06-10T11:00", 2), ("2025-06-10T14:00:00+08:00".into(), false));
    // A whole day: 09:00 + 7 h ends at 17:00 that day, not 09:00 the next.
    assert_eq!(hours(&cal, "2025-06-10T09:00", 7).0, "2025-06-10T17:00:00+08:00");
    assert_eq!(hours(&cal, "2025-06-10T09:00", 8).0, "2025-06-11T10:00:00+08:00");
    // Starting at lunch or in the evening counts from the next working period.
    assert_eq!(hours(&cal, "2025-06-10T12:30", 1).0, "2025-06-10T14:00:00+08:00");
    assert_eq!(hours(&cal, "2025-06-10T20:00", 1).0, "2025-06-11T10:00:00+08:00");
    // Across the October holiday week: Tuesday 30 September 16:00 + 2 h = Thursday 9 October 10:00.
    assert_eq!(hours(&cal, "2025-09-30T16:00", 2).0, "2025-10-09T10:00:00+08:00");
    // Friday 26 September 16:00 + 2 h lands on the working Sunday.
    assert_eq!(hours(&cal, "2025-09-26T16:00", 2).0, "2025-09-28T10:00:00+08:00");
    // Across the Spring Festival: Monday 27 January 2025 16:00 + 3 h → Wednesday 5 February 11:00.
    assert_eq!(hours(&cal, "2025-01-27T16:00", 3).0, "2025-02-05T11:00:00+08:00");
    let d = cal.add_working_minutes(t("2025-06-10T11:59"), 2).unwrap();
    assert_eq!(d.rfc3339(), "2025-06-10T13:01:00+08:00");
}

#[test]
fn years_without_data_fall_back_to_weekdays_and_say_so() {
    let cal = WorkCalendar::official();
    // Across the end of 2026 into 2027 (not loaded): provisional.
    // Thursday 31 December 2026 16:00 + 2 h → Friday 1 January 2027 10:00 on Monday–Friday.
    assert_eq!(hours(&cal, "2026-12-31T16:00", 2), ("2027-01-01T10:00:00+08:00".into(), true));
    assert_eq!(hours(&cal, "2026-12-31T09:00", 1), ("2026-12-31T10:00:00+08:00".into(), false));
    assert_eq!(days(&cal, "2026-12-31T10:00", 1), ("2027-01-01T10:00:00+08:00".into(), true));
    let day = cal.day(date("2027-10-01"));
    assert!(day.working && day.provisional && day.kind == DayKind::Weekday, "{day:?}");
    assert!(cal.day(date("2024-12-31")).provisional);
    let w = cal.working_time_between(t("2026-12-31T09:00"), t("2027-01-04T09:00")).unwrap();
    assert_eq!((w.minutes(), w.provisional), (2 * 7 * 60, true));
}

#[test]
fn working_minutes_between_counts_only_working_time() {
    let cal = WorkCalendar::official();
    let m = |a: &str, b: &str| cal.working_minutes_between(t(a), t(b)).unwrap();
    assert_eq!(m("2025-06-10T11:00", "2025-06-10T14:00"), 120);
    assert_eq!(m("2025-06-10T14:00", "2025-06-10T11:00"), -120);
    assert_eq!(m("2025-09-30T16:00", "2025-10-09T10:00"), 120);
    assert_eq!(m("2025-09-26T17:00", "2025-09-29T09:00"), 7 * 60); // the working Sunday
    assert_eq!(m("2025-10-01T00:00", "2025-10-08T23:59"), 0);
    assert_eq!(m("2025-06-10T10:00", "2025-06-10T10:00"), 0);
    assert!(matches!(
        cal.working_time_between(t("1900-01-01T00:00"), t("2025-01-01T00:00")),
        Err(CalendarError::SpanTooLong { .. })
    ));
}

#[test]
fn bounds_are_typed_errors() {
    let cal = WorkCalendar::official();
    let s = t("2025-06-10T10:00");
    assert!(cal.add_working_days(s, MAX_DAYS).is_ok());
    assert_eq!(
        cal.add_working_days(s, MAX_DAYS + 1),
        Err(CalendarError::TooMany { unit: "working days", value: 3651, max: 3650 })
    );
    assert!(cal.add_working_hours(s, MAX_HOURS).is_ok());
    assert!(matches!(cal.add_working_hours(s, MAX_HOURS + 1), Err(CalendarError::TooMany { .. })));
    assert!(matches!(cal.add_working_days(t("9999-12-30T10:00"), 5), Err(CalendarError::OutOfRange(_))));
}

fn year_2027() -> YearDoc {
    YearDoc {
        source: "测试".into(),
        holidays: vec![HolidayDoc { name: "元旦".into(), from: date("2027-01-01"), to: date("2027-01-03") }],
        workdays: vec![WorkdayDoc { date: date("2027-01-09"), name: "元旦".into() }],
    }
}

#[test]
fn edits_extend_and_override_the_shipped_years() {
    let mut edits = CalendarDoc::default();
    edits.years.insert(2027, year_2027());
    // An edit of 2025: National Day moved (hypothetically) to one day off.
    edits.years.insert(
        2025,
        YearDoc {
            source: "改".into(),
            holidays: vec![HolidayDoc { name: "国庆节".into(), from: date("2025-10-01"), to: date("2025-10-01") }],
            workdays: vec![],
        },
    );
    edits.periods = Some(vec![PeriodDoc::new("08:30", "12:00"), PeriodDoc::new("14:30", "17:30")]);
    let cal = WorkCalendar::with_edits(&edits).unwrap();
    assert_eq!(cal.years().collect::<Vec<_>>(), [2025, 2026, 2027]);
    let day = cal.day(date("2027-01-01"));
    assert!(!day.working && !day.provisional, "{day:?}");
    assert!(cal.is_working_day(date("2027-01-09")));
    assert!(!cal.is_working_day(date("2025-09-28")), "the edit replaced the whole year");
    assert!(cal.is_working_day(date("2025-10-02")));
    assert_eq!(cal.day_length(), jiff::SignedDuration::from_mins(6 * 60 + 30));
    assert_eq!(cal.add_working_hours(t("2027-01-08T11:00"), 2).unwrap().rfc3339(), "2027-01-08T15:30:00+08:00");
    // 2026 is still the shipped one; the document round-trips as JSON.
    assert!(cal.is_working_day(date("2026-01-04")));
    let back = CalendarDoc::from_json(&cal.doc().to_json_pretty()).unwrap();
    assert_eq!(&back, cal.doc());
}

#[test]
fn invalid_edits_are_refused_with_their_place() {
    let at = |doc: &CalendarDoc| match WorkCalendar::with_edits(doc) {
        Err(CalendarError::Invalid { at, .. }) => at,
        other => panic!("expected an invalid document, got {other:?}"),
    };
    let with_year = |y: YearDoc, year: i16| {
        let mut d = CalendarDoc::default();
        d.years.insert(year, y);
        d
    };
    // A date outside its year.
    assert_eq!(at(&with_year(year_2027(), 2028)), "years.2028.holidays[0].from");
    // A date both off and worked (2027-01-02 is a Saturday inside the holiday).
    let mut y = year_2027();
    y.workdays.push(WorkdayDoc { date: date("2027-01-02"), name: "元旦".into() });
    assert_eq!(at(&with_year(y, 2027)), "years.2027.workdays[1].date");
    // An adjusted working day on a weekday.
    let mut y = year_2027();
    y.workdays[0].date = date("2027-01-06");
    assert_eq!(at(&with_year(y, 2027)), "years.2027.workdays[0].date");
    // Overlapping holidays, reversed ranges, empty names.
    let mut y = year_2027();
    y.holidays.push(HolidayDoc { name: "春节".into(), from: date("2027-01-03"), to: date("2027-01-05") });
    assert_eq!(at(&with_year(y, 2027)), "years.2027.holidays[1]");
    let mut y = year_2027();
    y.holidays[0].to = date("2026-12-31");
    assert_eq!(at(&with_year(y, 2027)), "years.2027.holidays[0].to");
    let mut y = year_2027();
    y.holidays[0].to = date("2026-12-31");
    y.holidays[0].name = " ".into();
    assert_eq!(at(&with_year(y, 2027)), "years.2027.holidays[0].name");
    // Periods out of order, overlapping, malformed, empty.
    let periods = |p: Vec<PeriodDoc>| CalendarDoc { periods: Some(p), years: Default::default() };
    assert_eq!(at(&periods(vec![PeriodDoc::new("12:00", "09:00")])), "periods[0].end");
    assert_eq!(
        at(&periods(vec![PeriodDoc::new("09:00", "12:00"), PeriodDoc::new("11:00", "17:00")])),
        "periods[1].start"
    );
    assert_eq!(
        at(&periods(vec![PeriodDoc::new("13:00", "17:00"), PeriodDoc::new("09:00", "12:00")])),
        "periods[1].start"
    );
    assert_eq!(at(&periods(vec![PeriodDoc::new("9:00", "12:00")])), "periods[0].start");
    assert_eq!(at(&periods(vec![PeriodDoc::new("09:00", "24:00")])), "periods[0].end");
    assert_eq!(at(&periods(vec![])), "periods");
    // Unknown members are refused (a typo never silently drops a holiday).
    assert!(matches!(
        CalendarDoc::from_json(r#"{"years": {"2027": {"source": "", "holiday": []}}}"#),
        Err(CalendarError::Json(_))
    ));
}

/// Instants from 2024 to 2028 (loaded and not-loaded years), to the second.
fn instant() -> impl Strategy<Value = Timestamp> {
    let lo = t("2024-12-01T00:00").as_second();
    let hi = t("2028-01-31T00:00").as_second();
    (lo..hi).prop_map(|s| Timestamp::from_second(s).unwrap())
}

/// Instants inside working time: a day, moved to the next working day, and a second of its
/// seven working hours.
fn working_instant(cal: &'static WorkCalendar) -> impl Strategy<Value = Timestamp> {
    (0i64..1500, 0i64..7 * 3600).prop_map(move |(day, sec)| {
        let mut d = date("2024-12-01").checked_add(jiff::Span::new().days(day)).unwrap();
        while !cal.is_working_day(d) {
            d = d.tomorrow().unwrap();
        }
        let sec = if sec < 3 * 3600 { 9 * 3600 + sec } else { 13 * 3600 + sec - 3 * 3600 };
        let midnight = BEIJING.to_timestamp(d.to_datetime(jiff::civil::Time::midnight())).unwrap();
        midnight + jiff::SignedDuration::from_secs(sec)
    })
}

fn official() -> &'static WorkCalendar {
    static CAL: std::sync::OnceLock<WorkCalendar> = std::sync::OnceLock::new();
    CAL.get_or_init(WorkCalendar::official)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn adding_working_days_is_monotonic_and_lands_on_working_days(start in instant(), a in 0u32..400, b in 0u32..400) {
        let cal = official();
        let (lo, hi) = (a.min(b), a.max(b));
        let x = cal.add_working_days(start, lo).unwrap();
        let y = cal.add_working_days(start, hi).unwrap();
        prop_assert!(x.at <= y.at);
        if lo < hi { prop_assert!(x.at < y.at); }
        if hi > 0 {
            let local = BEIJING.to_datetime(y.at);
            prop_assert!(cal.is_working_day(local.date()));
            prop_assert_eq!(local.time(), BEIJING.to_datetime(start).time());
        }
    }

    #[test]
    fn hours_added_are_the_working_minutes_between(start in working_instant(official()), h in 0u32..600) {
        let cal = official();
        let end = cal.add_working_hours(start, h).unwrap();
        prop_assert!(end.at >= start);
        prop_assert_eq!(cal.working_minutes_between(start, end.at).unwrap(), i64::from(h) * 60);
    }

    #[test]
    fn minutes_added_from_anywhere_end_inside_or_at_the_end_of_working_time(start in instant(), m in 1u64..5000) {
        let cal = official();
        let end = cal.add_working_minutes(start, m).unwrap();
        let w = cal.working_time_between(start, end.at).unwrap();
        prop_assert_eq!(w.nanos, i64::try_from(m).unwrap() * 60_000_000_000);
        // The deadline is the earliest such instant: a second earlier is short of it.
        let before = end.at - jiff::SignedDuration::from_secs(1);
        prop_assert!(cal.working_time_between(start, before).unwrap().nanos < w.nanos);
    }

    #[test]
    fn working_time_is_additive(a in instant(), b in instant(), c in instant()) {
        let cal = official();
        let ab = cal.working_time_between(a, b).unwrap().nanos;
        let bc = cal.working_time_between(b, c).unwrap().nanos;
        let ac = cal.working_time_between(a, c).unwrap().nanos;
        prop_assert_eq!(ab + bc, ac);
    }
}
