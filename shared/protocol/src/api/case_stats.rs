//! Supervision figures (`GET /cases/stats`): per group of cases (a department, a unit grid, a
//! class, or all), the evaluation rates of digital city management with their parts.

use serde::{Deserialize, Serialize};

/// A rate with its parts ("12 / 15"); `value` is absent when nothing was due.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RateDoc {
    pub numerator: u64,
    pub denominator: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<f64>,
}

/// The figures of one group.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KpiGroup {
    /// The department, grid code or class code; `all` for the whole set; `(none)` for cases without one.
    pub key: String,
    pub cases: u64,
    /// 立案率: registered ÷ accepted.
    pub registration_rate: RateDoc,
    /// 按期处置率: handling stages ended by `handle` by their deadline ÷ those due.
    pub on_time_handling_rate: RateDoc,
    /// 按期结案率: cases closed with no stage after 立案 overrunning ÷ those due.
    pub on_time_closing_rate: RateDoc,
    /// 返工率: cases sent back after being handled ÷ cases handled.
    pub rework_rate: RateDoc,
    /// Mean working hours from dispatch to `handle`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub average_handling_hours: Option<f64>,
}

/// The answer of `GET /cases/stats`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CaseStats {
    /// The period (RFC 3339, Beijing time): cases whose first step falls in [from, to).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    /// `department`, `grid`, `class` or `none`.
    pub group_by: String,
    /// As of when stages still open count as late.
    pub as_of: String,
    pub groups: Vec<KpiGroup>,
}
