//! `GET /cases/stats?from=&to=&group_by=department|grid|class|none`: the supervision figures
//! (立案率, 按期处置率, 按期结案率, 返工率, average handling time) computed by
//! `shikong_workflow::kpis` from every case's history. The deadline each past stage ran under is
//! recomputed on the server's calendar from the flow's stage limits (and 延期 extensions), the same
//! way the runtime computed it when the stage started; the mean handling time is in working hours.
//!
//! A case counts in the period its first step falls in (受理, or its opening when it has none).
//! Grouping by department uses the case's last dispatch (a user or a department); by grid, the unit
//! grid cell its location is in (`grid.rs`). Office staff and administrators only. Bounded: at most
//! [`MAX_CASES`] cases are read; beyond that the answer is a 413 asking for a shorter period.

use std::collections::BTreeMap;

use axum::extract::{RawQuery, State};
use axum::response::Response;
use jiff::Timestamp;
use shikong_model::{Geometry, time};
use shikong_protocol::api::case_stats as wire;
use shikong_store::Query;
use shikong_workflow::{Applied, FlowDef, KpiStates, Rate, Stamp, stage_limit};

use super::record::{self, CaseRecord, LAYER};
use super::{catch_up, is_staff};
use crate::access::Caller;
use crate::params::Params;
use crate::problem::{ApiError, ApiResult};
use crate::{AppState, blocking, grid, json_ok};

/// Cases one answer may read.
pub const MAX_CASES: usize = 200_000;

fn rate(r: Rate) -> wire::RateDoc {
    wire::RateDoc { numerator: r.numerator, denominator: r.denominator, value: r.value }
}

/// The deadlines of the stages `history` started, recomputed (see the module docs).
fn deadlines(state: &AppState, flow: &FlowDef, rec: &CaseRecord) -> ApiResult<Vec<Option<Stamp>>> {
    let mut out: Vec<Option<Stamp>> = Vec::with_capacity(rec.case.history.len());
    let mut current: Option<Stamp> = None;
    for a in &rec.case.history {
        let at = record::instant(a.at);
        if a.to != a.from {
            let limit = stage_limit(flow, &rec.case, &a.to);
            current = state.cases.deadline(state, limit, at)?.map(record::stamp);
            out.push(current);
        } else if let Some(by) = flow.action(&a.action).and_then(|d| d.extend_by) {
            let from = current.map_or(at, record::instant);
            current = state.cases.deadline(state, Some(by), from)?.map(record::stamp);
            out.push(current);
        } else {
            out.push(None);
        }
    }
    Ok(out)
}

/// The department (or user) a case was last dispatched to.
fn dispatched_to(history: &[Applied]) -> Option<String> {
    history.iter().rev().find(|a| a.action == "dispatch").and_then(|a| a.assignee.as_ref()).map(|a| a.id().to_owned())
}

pub async fn stats(State(state): State<AppState>, caller: Caller, RawQuery(q): RawQuery) -> ApiResult<Response> {
    let p = caller.require()?.clone();
    if !is_staff(&p) {
        return Err(ApiError::forbidden("the supervision figures are for office staff and administrators"));
    }
    let params = Params::new(q.as_deref())?;
    params.only(&["from", "to", "group_by"])?;
    let (from, to) = (params.instant("from")?, params.instant("to")?);
    if let (Some(f), Some(t)) = (from, to)
        && f >= t
    {
        return Err(ApiError::bad_parameter("to", "`to` must be after `from`"));
    }
    let group_by = params.get("group_by").unwrap_or("none").to_owned();
    if !["department", "grid", "class", "none"].contains(&group_by.as_str()) {
        return Err(ApiError::bad_parameter(
            "group_by",
            format!("`{group_by}` is not department, grid, class or none"),
        ));
    }
    let st = state.clone();
    let doc = blocking(move || {
        catch_up(&st)?;
        let now = Timestamp::now();
        let mut groups: BTreeMap<String, Vec<shikong_workflow::CaseRecord>> = BTreeMap::new();
        if st.store().layer(LAYER).is_ok() {
            let mut found = Vec::new();
            let mut over = false;
            st.store().query(&Query { layer: LAYER, ..Query::default() }, &mut |sf| {
                if found.len() >= MAX_CASES {
                    over = true;
                    return false;
                }
                found.push(sf);
                true
            })?;
            if over {
                return Err(ApiError::new(
                    axum::http::StatusCode::PAYLOAD_TOO_LARGE,
                    "too-many-cases",
                    format!("more than {MAX_CASES} cases; ask for a shorter period (from, to)"),
                )
                .with("limit", "cases")
                .with("max", MAX_CASES));
            }
            for sf in &found {
                let rec = CaseRecord::from_feature(sf)?;
                let Some(flow) = st.cases.flow(&rec.case.flow) else { continue };
                let first = rec.case.history.first().map_or(rec.case.stage_started, |a| a.at);
                let first = record::instant(first);
                if from.is_some_and(|f| first < f) || to.is_some_and(|t| first >= t) {
                    continue;
                }
                let key = match group_by.as_str() {
                    "department" => dispatched_to(&rec.case.history),
                    "class" => rec.class.clone(),
                    "grid" => match &rec.location {
                        Some(Geometry::Point(c)) => grid::place_of(st.store(), c.x, c.y)?.and_then(|p| p.grid),
                        _ => None,
                    },
                    _ => Some("all".to_owned()),
                };
                let item = shikong_workflow::CaseRecord {
                    initial_state: flow.initial.clone(),
                    opened: record::stamp(first),
                    initial_deadline: None,
                    deadlines: deadlines(&st, flow, &rec)?,
                    history: rec.case.history.clone(),
                };
                groups.entry(key.unwrap_or_else(|| "(none)".to_owned())).or_default().push(item);
            }
        }
        let cal = st.calendar.calendar();
        let working = |a: Stamp, b: Stamp| {
            cal.working_minutes_between(record::instant(a), record::instant(b)).unwrap_or_default()
        };
        let groups = groups
            .into_iter()
            .map(|(key, cases)| {
                let k = shikong_workflow::kpis(&cases, &KpiStates::default(), record::stamp(now), &working);
                wire::KpiGroup {
                    key,
                    cases: k.cases,
                    registration_rate: rate(k.registration_rate),
                    on_time_handling_rate: rate(k.on_time_handling_rate),
                    on_time_closing_rate: rate(k.on_time_closing_rate),
                    rework_rate: rate(k.rework_rate),
                    average_handling_hours: k.average_handling.map(|m| m / 60.0),
                }
            })
            .collect();
        Ok(wire::CaseStats {
            from: from.map(time::beijing),
            to: to.map(time::beijing),
            group_by,
            as_of: time::beijing(now),
            groups,
        })
    })
    .await?;
    json_ok(&doc)
}
