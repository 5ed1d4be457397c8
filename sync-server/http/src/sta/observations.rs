//! Observations: readings of the time-series store (`shikong-timeseries`), not feature
//! versions. A reading is keyed by (datastream, phenomenon time to the microsecond), so an
//! Observation's `@iot.id` is derived from that key: the string `'DS-MICROS'` (the Datastream's
//! id and the phenomenon time in microseconds since 1970-01-01T00:00:00Z). It is deterministic
//! (the same reading sent twice has one id: the store keeps one reading per key) and needs no
//! counter; it does not fit a 64-bit integer together with the datastream, hence a string.
//!
//! What a reading holds: a number (`result`), its phenomenon time (an instant). So a result must
//! be a finite number and `phenomenonTime` an instant (absent: now); `resultTime`,
//! `resultQuality`, `validTime`, `parameters` and the FeatureOfInterest link are not kept yet
//! (answered as null / absent) — each refused with the member named, never silently dropped.
//! A MultiDatastream's observations are stored by `multi.rs` (one series per component). The time-series store's own refusals (outside
//! the datastream's range, too far in the future, before 2000) come back as 422 naming
//! `/result` or `/phenomenonTime` with the store's reason code.
//!
//! `POST /CreateObservations` reads the dataArray body row by row (`shikong_sta::dataarray`,
//! bounded), appends in batches of [`shikong_timeseries::MAX_BATCH`] as the rows come, and
//! answers one string per row: the new Observation's URL or `"error"`, as the specification says.

use std::collections::HashMap;
use std::sync::Arc;

use axum::http::StatusCode;
use axum::response::Response;
use jiff::Timestamp;
use serde_json::{Map, Value as Json, json};
use shikong_sta::ast::{CmpOp, Expr, Literal};
use shikong_sta::dataarray::{DataArrayLimits, StreamRef, stream_data_array};
use shikong_sta::entity::{EntityType, Id, entity_url};
use shikong_sta::options::QueryOptions;
use shikong_timeseries::{Datastream, Order, Outcome, Reading, Stored, TimeSeries};

use super::super::access::Action;
use super::super::problem::{ApiError, ApiResult};
use super::entities;
use super::read::{Cx, DEFAULT_TOP, Node};
use super::stream::ObservationOrigin;
use super::{AppState, Req, created, json_response};

/// The Observation id of a reading.
pub fn obs_id(ds: i64, t: Timestamp) -> Id {
    Id::Str(format!("{ds}-{}", t.as_microsecond()))
}

/// The reading key of an Observation id.
pub fn parse_id(id: &Id) -> Option<(i64, Timestamp)> {
    let Id::Str(s) = id else { return None };
    let (d, t) = s.split_once('-')?;
    Some((d.parse().ok()?, Timestamp::from_microsecond(t.parse().ok()?).ok()?))
}

fn node(s: &Stored) -> Node {
    let id = obs_id(s.datastream, s.time);
    let mut m = Map::new();
    m.insert("@iot.id".into(), id.to_json());
    m.insert("phenomenonTime".into(), json!(s.time.to_string()));
    m.insert("result".into(), json!(s.value));
    m.insert("resultTime".into(), Json::Null);
    Node { ty: EntityType::Observation, id, json: m, rec: None }
}

/// One Observation by id.
pub fn one(st: &AppState, id: &Id) -> ApiResult<Option<Node>> {
    let Some((ds, t)) = parse_id(id) else { return Ok(None) };
    let ts = st.timeseries()?;
    let next = t.checked_add(jiff::SignedDuration::from_micros(1)).unwrap_or(t);
    Ok(ts.range(ds, t, next, 1, Order::Asc).map_err(ApiError::internal)?.first().map(node))
}

/// `[from, to)` from the top-level `phenomenonTime` comparisons of a filter (the rest is
/// evaluated on each reading anyway; these only narrow the read).
pub(super) fn time_window(filter: Option<&Expr>) -> (Timestamp, Timestamp) {
    let (mut from, mut to) = (Timestamp::MIN, Timestamp::MAX);
    let terms: Vec<&Expr> = match filter {
        Some(Expr::And(v)) => v.iter().collect(),
        Some(e) => vec![e],
        None => vec![],
    };
    let micro = jiff::SignedDuration::from_micros(1);
    for t in terms {
        let Expr::Compare(op, a, b) = t else { continue };
        let (op, lit) = match (a.as_ref(), b.as_ref()) {
            (Expr::Property(p), Expr::Literal(Literal::DateTime(x))) if p == &["phenomenonTime"] => (*op, *x),
            (Expr::Literal(Literal::DateTime(x)), Expr::Property(p)) if p == &["phenomenonTime"] => (
                match op {
                    CmpOp::Lt => CmpOp::Gt,
                    CmpOp::Le => CmpOp::Ge,
                    CmpOp::Gt => CmpOp::Lt,
                    CmpOp::Ge => CmpOp::Le,
                    o => *o,
                },
                *x,
            ),
            _ => continue,
        };
        let after = |x: Timestamp| x.checked_add(micro).unwrap_or(x);
        match op {
            CmpOp::Ge => from = from.max(lit),
            CmpOp::Gt => from = from.max(after(lit)),
            CmpOp::Lt => to = to.min(lit),
            CmpOp::Le => to = to.min(after(lit)),
            CmpOp::Eq => {
                from = from.max(lit);
                to = to.min(after(lit));
            }
            CmpOp::Ne => {}
        }
    }
    (from, to)
}

/// A Datastream's Observations with the query options: the time bounds and a `phenomenonTime`
/// order go to the time-series read; anything else is evaluated on at most
/// [`shikong_timeseries::MAX_RANGE_LIMIT`] readings of the window (beyond: 413, narrow the
/// window).
pub fn of_datastream(cx: &Cx<'_>, ds: i64, opts: &QueryOptions) -> ApiResult<(Vec<Node>, Option<u64>)> {
    let ts = cx.st.timeseries()?;
    let (from, to) = time_window(opts.filter.as_ref());
    let time_order = match opts.orderby.as_slice() {
        [] => Some(Order::Asc),
        [o] if o.expr == Expr::Property(vec!["phenomenonTime".into()]) => {
            Some(if o.descending { Order::Desc } else { Order::Asc })
        }
        _ => None,
    };
    let top = opts.top.unwrap_or(DEFAULT_TOP).min(cx.max_top);
    let skip = opts.skip.unwrap_or(0);
    let residual = opts.filter.as_ref().is_some_and(|f| !only_time(f));
    let max = shikong_timeseries::MAX_RANGE_LIMIT;
    let exact = residual || time_order.is_none() || opts.count == Some(true);
    let want = if exact { max } else { (skip + top + 1).min(max as u64) as usize };
    let rows = ts.range(ds, from, to, want, time_order.unwrap_or(Order::Asc)).map_err(ApiError::internal)?;
    if exact && rows.len() >= max {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too-large",
            format!(
                "more than {max} observations in the window: $count, $orderby other than phenomenonTime and filters on other properties run over at most {max}; narrow it with $filter=phenomenonTime ge … and lt …"
            ),
        )
        .with("limit", "observations evaluated")
        .with("max", max));
    }
    if skip + top > max as u64 {
        return Err(ApiError::bad_parameter(
            "$skip",
            format!("$skip + $top is at most {max} on Observations; page by phenomenonTime instead"),
        ));
    }
    let nodes: Vec<Node> = rows.iter().map(node).collect();
    if exact {
        return cx.page(nodes, opts);
    }
    let count = None;
    Ok((nodes.into_iter().skip(skip as usize).take(top as usize).collect(), count))
}

pub(super) fn only_time(f: &Expr) -> bool {
    let one = |e: &Expr| {
        matches!(e, Expr::Compare(_, a, b)
            if matches!((a.as_ref(), b.as_ref()),
                (Expr::Property(p), Expr::Literal(Literal::DateTime(_))) | (Expr::Literal(Literal::DateTime(_)), Expr::Property(p))
                    if p == &["phenomenonTime"]))
    };
    match f {
        Expr::And(v) => v.iter().all(one),
        e => one(e),
    }
}

/// The options and context of each stream's read when several streams' Observations are merged
/// in memory: the filter only, up to the time series' range limit, counted.
pub(super) fn merged_reads<'a>(cx: &Cx<'a>, opts: &QueryOptions) -> (QueryOptions, Cx<'a>) {
    let inner = QueryOptions {
        filter: opts.filter.clone(),
        top: Some(shikong_timeseries::MAX_RANGE_LIMIT as u64 - 1),
        skip: None,
        count: Some(true),
        ..QueryOptions::default()
    };
    (inner, Cx { max_top: shikong_timeseries::MAX_RANGE_LIMIT as u64, ..*cx })
}

/// `/Observations`: every Datastream's, merged in memory (bounded like one Datastream's).
pub fn all(cx: &Cx<'_>, opts: &QueryOptions) -> ApiResult<(Vec<Node>, Option<u64>)> {
    let mut nodes = Vec::new();
    let (inner, big) = merged_reads(cx, opts);
    for ds in entities::list(cx.st.store(), EntityType::Datastream, None)? {
        if let Id::Int(d) = ds.id {
            nodes.extend(of_datastream(&big, d, &inner)?.0);
        }
        if nodes.len() > shikong_timeseries::MAX_RANGE_LIMIT {
            return Err(ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "too-large",
                "more observations than one answer evaluates: read them per Datastream (/Datastreams(id)/Observations) or filter on phenomenonTime",
            ));
        }
    }
    let rest = QueryOptions { filter: None, ..opts.clone() };
    cx.page(nodes, &rest)
}

/// How long a Datastream checked to exist (its series defined, its FeatureOfInterest set) is
/// taken on trust by later Observations of this process. A delete through this process forgets
/// at once ([`DefinedStreams::forget_all`]); another server process on the same PostgreSQL
/// database may take readings for a Datastream it deleted for at most this long.
pub const DEFINED_TRUST: std::time::Duration = std::time::Duration::from_secs(10);
/// Datastreams remembered at most (past it, all are forgotten and checked again).
const DEFINED_MAX: usize = 100_000;

/// The Datastreams this process checked lately (see [`DEFINED_TRUST`]): what spares a stream of
/// readings one entity read and one series lookup per reading.
#[derive(Debug, Default)]
pub struct DefinedStreams(std::sync::Mutex<HashMap<i64, std::time::Instant>>);

impl DefinedStreams {
    fn trusted(&self, ds: i64) -> bool {
        let map = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        map.get(&ds).is_some_and(|at| at.elapsed() < DEFINED_TRUST)
    }

    fn remember(&self, ds: i64) {
        let mut map = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if map.len() >= DEFINED_MAX {
            map.clear();
        }
        map.insert(ds, std::time::Instant::now());
    }

    /// After a delete: every stream is checked again.
    pub fn forget_all(&self) {
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clear();
    }
}

/// The time-series definition of a Datastream, made from the stored entity when missing.
fn ensure_defined(st: &AppState, ts: &Arc<dyn TimeSeries>, ds: i64, known: &mut HashMap<i64, bool>) -> ApiResult<bool> {
    if let Some(k) = known.get(&ds) {
        return Ok(*k);
    }
    if st.sta.defined.trusted(ds) {
        known.insert(ds, true);
        return Ok(true);
    }
    let exists = match entities::get(st.store(), EntityType::Datastream, &Id::Int(ds), None)? {
        None => false,
        Some(rec) => {
            super::foi::ensure_generated(st, &rec)?;
            if ts.datastream(ds).map_err(ApiError::internal)?.is_none() {
                // The series needs a unit: the symbol, else the name, else UCUM's "1" (dimensionless).
                let uom = rec.props.get("unitOfMeasurement");
                let text = |m: &str| uom.and_then(|u| u.get(m)).and_then(Json::as_str).filter(|s| !s.trim().is_empty());
                let unit: String = text("symbol").or_else(|| text("name")).unwrap_or("1").chars().take(64).collect();
                let def = Datastream { id: ds, unit, min: f64::MIN, max: f64::MAX, retention: None };
                ts.define(&def).map_err(ApiError::internal)?;
            }
            true
        }
    };
    known.insert(ds, exists);
    if exists {
        st.sta.defined.remember(ds);
    }
    Ok(exists)
}

/// Why a reading was refused, naming the member at fault.
pub(crate) fn refused(reason: &shikong_timeseries::Refusal) -> ApiError {
    let code = reason.code();
    let field =
        if code.contains("time") || code.contains("future") || code.contains("old") || code.contains("retention") {
            "/phenomenonTime"
        } else {
            "/result"
        };
    ApiError::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        "observation-refused",
        format!("the observation was refused: {reason}"),
    )
    .with("field", field)
    .with("reason", code)
}

/// The reading of a validated Observation (properties from `shikong-sta`), or why not.
fn reading(ds: i64, props: &Map<String, Json>) -> Result<Reading, ApiError> {
    let bad = |field: &str, msg: String| {
        ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "observation-refused", msg).with("field", field.to_owned())
    };
    let value = match props.get("result") {
        Some(Json::Number(n)) => n.as_f64().unwrap_or(f64::NAN),
        Some(other) => {
            return Err(bad("/result", format!("results are stored as numbers; `{other}` is not a number")));
        }
        None => return Err(bad("/result", "an Observation needs `result`".into())),
    };
    let time = match props.get("phenomenonTime").and_then(Json::as_str) {
        None => Timestamp::now(),
        Some(s) => match shikong_sta::TimeValue::parse(s) {
            Ok(shikong_sta::TimeValue::Instant(t)) => t,
            _ => return Err(bad("/phenomenonTime", "phenomenonTime is stored as an instant, not an interval".into())),
        },
    };
    for k in ["resultQuality", "validTime", "parameters"] {
        if props.get(k).is_some_and(|v| !v.is_null()) {
            return Err(bad(&format!("/{k}"), format!("`{k}` is not stored yet: send the Observation without it")));
        }
    }
    Ok(Reading::new(ds, time, value))
}

fn author(req: &Req) -> Option<&str> {
    req.caller.principal.as_ref().map(|p| p.username.as_str())
}

/// `POST /Observations` and `POST /Datastreams(id)/Observations`.
pub fn create(st: &AppState, req: &Req, plan: &shikong_sta::body::CreatePlan) -> ApiResult<Response> {
    let layer = st.store().layer(entities::governing_layer(EntityType::Observation))?;
    req.caller.allowed(st, &layer, Action::Edit)?;
    let stored = store_planned(st, plan, ObservationOrigin::Http, author(req))?;
    Ok(created(&entity(&stored, Some(&req.base))))
}

/// The Observation's JSON as the API shows it (with its links when `base` is given).
pub fn entity(s: &Stored, base: Option<&str>) -> Json {
    let mut obj = node(s).json;
    if let Some(base) = base {
        shikong_sta::entity::add_links(&mut obj, base, EntityType::Observation, &obs_id(s.datastream, s.time));
    }
    Json::Object(obj)
}

/// Stores the one Observation of a validated create body (`plan_create` of an Observation, its
/// Datastream linked in the body or by the URL) and publishes it on the observation stream. MQTT
/// publishes go through [`prepare`] and one append per batch (`intake.rs`), so both accept and
/// refuse exactly the same bodies. The caller checked the edit permission.
pub(crate) fn store_planned(
    st: &AppState,
    plan: &shikong_sta::body::CreatePlan,
    origin: ObservationOrigin,
    author: Option<&str>,
) -> ApiResult<Stored> {
    let ts = st.timeseries()?;
    let r = prepare(st, &ts, plan, &mut HashMap::new())?;
    let outcome = ts.append(std::slice::from_ref(&r)).map_err(ApiError::internal)?;
    st.observations().stored(origin, author, std::slice::from_ref(&r), &outcome);
    answer(&r, outcome.first())
}

/// What the client hears of one appended reading: the stored Observation, or why it was refused.
pub(crate) fn answer(r: &Reading, outcome: Option<&Outcome>) -> ApiResult<Stored> {
    match outcome {
        Some(Outcome::Refused { reason }) => Err(refused(reason)),
        Some(_) => Ok(Stored { datastream: r.datastream, time: r.time, value: r.value }),
        None => Err(ApiError::internal("no outcome for the reading")),
    }
}

/// The reading of the one Observation of a validated create body, its Datastream checked to exist
/// (its series defined, its FeatureOfInterest linked or generated), not yet appended. `known`
/// remembers Datastreams already checked by this caller.
pub(crate) fn prepare(
    st: &AppState,
    ts: &Arc<dyn TimeSeries>,
    plan: &shikong_sta::body::CreatePlan,
    known: &mut HashMap<i64, bool>,
) -> ApiResult<Reading> {
    if plan.ops.len() != 1 {
        let extra = plan.ops.iter().find(|o| o.entity_type != EntityType::Observation);
        let at = extra.map_or("", |o| o.path.as_str());
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "not-supported",
            "an Observation's inline FeatureOfInterest is not stored yet: link one by {\"@iot.id\": …} or leave it out",
        )
        .with("field", at.to_owned()));
    }
    let op = &plan.ops[plan.root];
    let mut ds = None;
    let mut foi = None;
    for l in &op.links {
        match (l.nav, &l.target) {
            ("Datastream", shikong_sta::body::Ref::Existing(Id::Int(d))) => ds = Some(*d),
            ("Datastream", shikong_sta::body::Ref::Existing(other)) => {
                return Err(entities::missing(EntityType::Datastream, other).with("field", "/Datastream"));
            }
            ("MultiDatastream", _) => {
                return Err(ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "not-supported",
                    "an Observation of a Datastream cannot link a MultiDatastream: send it to /MultiDatastreams(ID)/Observations",
                )
                .with("field", "/MultiDatastream"));
            }
            ("FeatureOfInterest", shikong_sta::body::Ref::Existing(f)) => foi = Some(f),
            _ => {}
        }
    }
    let ds =
        ds.ok_or_else(|| ApiError::bad_body("an Observation needs its Datastream").with("field", "/Datastream"))?;
    if let Some(f) = foi {
        super::foi::link_explicit(st, EntityType::Datastream, &Id::Int(ds), f)?;
    }
    if !ensure_defined(st, ts, ds, known)? {
        return Err(entities::missing(EntityType::Datastream, &Id::Int(ds)).with("field", "/Datastream"));
    }
    reading(ds, &op.properties)
}

/// `POST /CreateObservations` (the dataArray extension).
pub fn create_bulk(st: &AppState, req: &Req) -> ApiResult<Response> {
    super::entities::ensure_layers(st.store(), &st.sta)?;
    let layer = st.store().layer(entities::governing_layer(EntityType::Observation))?;
    req.caller.allowed(st, &layer, Action::Edit)?;
    let ts = st.timeseries()?;
    let mut known: HashMap<i64, bool> = HashMap::new();
    // Row answers in body order; a row waiting in `batch` holds its index here.
    let mut answers: Vec<Json> = Vec::new();
    let mut batch: Vec<(usize, Reading)> = Vec::new();
    let mut failure: Option<ApiError> = None;
    let flush = |batch: &mut Vec<(usize, Reading)>, answers: &mut Vec<Json>| -> ApiResult<()> {
        if batch.is_empty() {
            return Ok(());
        }
        let readings: Vec<Reading> = batch.iter().map(|(_, r)| r.clone()).collect();
        let outcomes = ts.append(&readings).map_err(ApiError::internal)?;
        st.observations().stored(ObservationOrigin::HttpDataArray, author(req), &readings, &outcomes);
        for ((i, r), o) in batch.drain(..).zip(outcomes) {
            answers[i] = match o {
                Outcome::Refused { .. } => json!("error"),
                _ => json!(entity_url(&req.base, EntityType::Observation, &obs_id(r.datastream, r.time))),
            };
        }
        Ok(())
    };
    let limits = DataArrayLimits::default();
    let mut multi = super::multi::Bulk::default();
    let read = stream_data_array(&req.body, limits, |h, _row, draft| {
        if failure.is_some() {
            return;
        }
        let i = answers.len();
        answers.push(json!("error"));
        if let (StreamRef::MultiDatastream(Id::Int(m)), Ok(d)) = (&h.stream, &draft) {
            let r = multi.push(st, &req.base, i, *m, d).and_then(|_| match multi.full() {
                true => multi.flush(st, &mut answers),
                false => Ok(()),
            });
            if let Err(e) = r {
                failure = Some(e);
            }
            return;
        }
        let StreamRef::Datastream(Id::Int(ds)) = &h.stream else { return };
        let Ok(d) = draft else { return };
        if let Some(f) = &d.feature_of_interest
            && super::foi::link_explicit(st, EntityType::Datastream, &Id::Int(*ds), f).is_err()
        {
            return;
        }
        match ensure_defined(st, &ts, *ds, &mut known) {
            Ok(true) => {}
            Ok(false) => return,
            Err(e) => {
                failure = Some(e);
                return;
            }
        }
        if let Ok(r) = reading(*ds, &d.properties) {
            batch.push((i, r));
        }
        if batch.len() >= shikong_timeseries::MAX_BATCH
            && let Err(e) = flush(&mut batch, &mut answers)
        {
            failure = Some(e);
        }
    });
    if let Some(e) = failure {
        return Err(e);
    }
    read.map_err(super::sta_error)?;
    flush(&mut batch, &mut answers)?;
    multi.flush(st, &mut answers)?;
    Ok(json_response(StatusCode::CREATED, &Json::Array(answers)))
}
