//! The working-time calendar (工作日历): a deadline counted in working days or hours
//! (`GET /calendar/deadline?start=…&days=N` or `&hours=N`), the effective calendar
//! (`GET /calendar`: working periods and each year's official holidays and adjusted working
//! days) and an administrator's edit of one year (`PUT /calendar/years/{year}`, a
//! [`CalendarYear`]).
//!
//! The calendar's members are checked strictly (unknown members refused, as an edit with a
//! misspelt `holiday` must not silently drop the holidays): the same types are the edit request
//! and the answer.

use std::collections::BTreeMap;

use jiff::civil::Date;
use serde::{Deserialize, Serialize};

/// `GET /calendar/deadline` answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeadlineAnswer {
    /// RFC 3339 in Beijing time (`2025-09-28T10:00:00+08:00`).
    pub deadline: String,
    /// A year without the official schedule was crossed: Monday–Friday was assumed.
    pub provisional: bool,
}

/// `GET /calendar` answer: the calendar in effect (shipped years with an administrator's edits).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CalendarDocument {
    /// Working periods of a working day, Beijing time.
    pub periods: Vec<WorkPeriod>,
    /// The years with official data, by number.
    pub years: BTreeMap<i16, CalendarYear>,
}

/// One working period, `HH:MM` to `HH:MM`, end excluded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkPeriod {
    pub start: String,
    pub end: String,
}

/// One year's official schedule; the body of `PUT /calendar/years/{year}` (every date in that
/// year; it replaces the year whole).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CalendarYear {
    /// Where the dates come from (the notice's title and date).
    pub source: String,
    pub holidays: Vec<Holiday>,
    #[serde(default)]
    pub workdays: Vec<AdjustedWorkday>,
}

/// Days off (放假), `from` to `to` inclusive.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Holiday {
    pub name: String,
    pub from: Date,
    pub to: Date,
}

/// A weekend day worked instead (调休上班), for the holiday `name`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdjustedWorkday {
    pub date: Date,
    pub name: String,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::api::golden;

    fn d(s: &str) -> Date {
        s.parse().unwrap()
    }

    #[test]
    fn deadline_json() {
        golden(
            DeadlineAnswer { deadline: "2025-09-28T10:00:00+08:00".into(), provisional: false },
            r#"{"deadline": "2025-09-28T10:00:00+08:00", "provisional": false}"#,
        );
    }

    #[test]
    fn calendar_json() {
        let year = CalendarYear {
            source: "国务院办公厅关于2025年部分节假日安排的通知".into(),
            holidays: vec![Holiday { name: "劳动节".into(), from: d("2025-05-01"), to: d("2025-05-05") }],
            workdays: vec![AdjustedWorkday { date: d("2025-04-27"), name: "劳动节".into() }],
        };
        golden(
            CalendarDocument {
                periods: vec![WorkPeriod { start: "09:00".into(), end: "12:00".into() }],
                years: BTreeMap::from([(2025, year)]),
            },
            r#"{"periods": [{"start": "09:00", "end": "12:00"}],
                "years": {"2025": {"source": "国务院办公厅关于2025年部分节假日安排的通知",
                  "holidays": [{"name": "劳动节", "from": "2025-05-01", "to": "2025-05-05"}],
                  "workdays": [{"date": "2025-04-27", "name": "劳动节"}]}}}"#,
        );
        // A misspelt member is refused, never ignored.
        let typo = r#"{"source": "", "holiday": []}"#;
        assert!(serde_json::from_str::<CalendarYear>(typo).is_err());
    }
}
