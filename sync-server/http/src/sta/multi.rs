//! Observations of MultiDatastreams (the MultiDatastream extension of 18-088): one Observation
//! whose `result` is an array, one value per ObservedProperty, typed by the stream's
//! `multiObservationDataTypes` and measured in its `unitOfMeasurements`.
//!
//! Why this shape of storage: the time-series store keeps one number per (series, instant), with
//! its roll-ups and refusals, and a component of a MultiDatastream is exactly such a series (the
//! air-quality station's PM2.5 is a series of its own, charted and rolled up alone). So component
//! `k` of MultiDatastream `m` is the series [`series`]`(m, k)`, a negative id that no Datastream
//! (positive ids) can take, defined on first use with the component's unit; an Observation is
//! the readings of every component at one phenomenon time, appended in one batch (one
//! transaction), and its `@iot.id` is the string `'M<m>-<µs since 1970>'`.
//!
//! What a component holds: a number. `OM_Measurement` (any finite number), `OM_CountObservation`
//! (an integer), `OM_TruthObservation` (`true`/`false`, stored 1/0 and answered as booleans);
//! `OM_CategoryObservation` and `OM_Observation` components take numbers only. Anything else is
//! refused with 422 naming `/result/<k>`, never dropped. `resultQuality`, `validTime` and
//! `parameters` are refused like a Datastream's Observations (not stored yet).

use std::collections::HashMap;
use std::sync::Arc;

use axum::http::StatusCode;
use axum::response::Response;
use jiff::Timestamp;
use serde_json::{Map, Value as Json, json};
use shikong_sta::body::{CreatePlan, Ref};
use shikong_sta::dataarray::ObservationDraft;
use shikong_sta::entity::{EntityType, Id, add_links, entity_url};
use shikong_sta::options::QueryOptions;
use shikong_timeseries::{Datastream, Order, Outcome, Reading, TimeSeries};

use super::super::access::Action;
use super::super::problem::{ApiError, ApiResult};
use super::entities::{self, Rec};
use super::read::{Cx, DEFAULT_TOP, Node};
use super::{AppState, Req, created};

/// Most components (ObservedProperties) of one MultiDatastream whose Observations are stored.
pub const MAX_COMPONENTS: usize = 1_000;

const TRUTH: &str = "http://www.opengis.net/def/observationType/OGC-OM/2.0/OM_TruthObservation";
const COUNT: &str = "http://www.opengis.net/def/observationType/OGC-OM/2.0/OM_CountObservation";

/// The time-series id of component `k` of MultiDatastream `m`.
pub fn series(m: i64, k: usize) -> i64 {
    -(m.saturating_mul(MAX_COMPONENTS as i64).saturating_add(k as i64 + 1))
}

/// The Observation id of MultiDatastream `m`'s observation at `t`.
pub fn obs_id(m: i64, t: Timestamp) -> Id {
    Id::Str(format!("M{m}-{}", t.as_microsecond()))
}

/// The (MultiDatastream, time) of an Observation id made by [`obs_id`].
pub fn parse_id(id: &Id) -> Option<(i64, Timestamp)> {
    let Id::Str(s) = id else { return None };
    let (m, t) = s.strip_prefix('M')?.split_once('-')?;
    Some((m.parse().ok()?, Timestamp::from_microsecond(t.parse().ok()?).ok()?))
}

/// What the stored MultiDatastream declares about its components.
pub(super) struct Shape {
    pub(super) id: i64,
    pub(super) types: Vec<String>,
    units: Vec<String>,
}

impl Shape {
    pub(super) fn of(rec: &Rec) -> ApiResult<Shape> {
        let Id::Int(id) = rec.id else {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "not-supported",
                "Observations are stored for MultiDatastreams with integer ids only",
            ));
        };
        let types: Vec<String> = rec
            .props
            .get("multiObservationDataTypes")
            .and_then(Json::as_array)
            .map(|a| a.iter().map(|t| t.as_str().unwrap_or_default().to_owned()).collect())
            .unwrap_or_default();
        if types.is_empty() || types.len() > MAX_COMPONENTS {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "not-supported",
                format!("a MultiDatastream whose Observations are stored has 1 to {MAX_COMPONENTS} components"),
            ));
        }
        let units = (0..types.len())
            .map(|k| {
                let u = rec.props.get("unitOfMeasurements").and_then(|u| u.get(k));
                let text = |m: &str| u.and_then(|u| u.get(m)).and_then(Json::as_str).filter(|s| !s.trim().is_empty());
                // The series needs a unit: the symbol, else the name, else UCUM's "1" (dimensionless).
                text("symbol").or_else(|| text("name")).unwrap_or("1").chars().take(64).collect()
            })
            .collect();
        Ok(Shape { id, types, units })
    }

    /// The stored numbers of a `result` array, or why not (naming `/result/k`).
    pub(super) fn values(&self, result: Option<&Json>, at: &str) -> ApiResult<Vec<f64>> {
        let bad = |field: String, msg: String| {
            ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "observation-refused", msg).with("field", field)
        };
        let Some(result) = result else {
            return Err(bad(format!("{at}/result"), "an Observation needs `result`".into()));
        };
        shikong_sta::body::check_multi_result(result, self.types.len())
            .map_err(|e| bad(format!("{at}/result"), e.to_string()))?;
        let items = result.as_array().map(Vec::as_slice).unwrap_or_default();
        items
            .iter()
            .zip(&self.types)
            .enumerate()
            .map(|(k, (v, t))| {
                let field = format!("{at}/result/{k}");
                match (t.as_str(), v) {
                    (TRUTH, Json::Bool(b)) => Ok(if *b { 1.0 } else { 0.0 }),
                    (TRUTH, other) => {
                        Err(bad(field, format!("component {k} is a truth observation; `{other}` is not true or false")))
                    }
                    (COUNT, Json::Number(n)) if n.is_i64() => Ok(n.as_i64().unwrap_or_default() as f64),
                    (COUNT, other) => Err(bad(field, format!("component {k} is a count; `{other}` is not an integer"))),
                    (_, Json::Number(n)) => Ok(n.as_f64().unwrap_or(f64::NAN)),
                    (_, other) => {
                        Err(bad(field, format!("component {k} is stored as a number; `{other}` is not a number")))
                    }
                }
            })
            .collect()
    }

    /// A stored number as the component's JSON value.
    fn render(&self, k: usize, v: Option<f64>) -> Json {
        match (self.types.get(k).map(String::as_str), v) {
            (_, None) => Json::Null,
            (Some(TRUTH), Some(v)) => json!(v != 0.0),
            (Some(COUNT), Some(v)) => json!(v as i64),
            (_, Some(v)) => json!(v),
        }
    }

    /// Defines the components' series that are not yet defined.
    fn define(&self, ts: &Arc<dyn TimeSeries>) -> ApiResult<()> {
        for (k, unit) in self.units.iter().enumerate() {
            let id = series(self.id, k);
            if ts.datastream(id).map_err(ApiError::internal)?.is_none() {
                let def = Datastream { id, unit: unit.clone(), min: f64::MIN, max: f64::MAX, retention: None };
                ts.define(&def).map_err(ApiError::internal)?;
            }
        }
        Ok(())
    }
}

pub(super) fn node(shape: &Shape, t: Timestamp, values: &[Option<f64>]) -> Node {
    let id = obs_id(shape.id, t);
    let mut m = Map::new();
    m.insert("@iot.id".into(), id.to_json());
    m.insert("phenomenonTime".into(), json!(t.to_string()));
    m.insert(
        "result".into(),
        Json::Array((0..shape.types.len()).map(|k| shape.render(k, values.get(k).copied().flatten())).collect()),
    );
    m.insert("resultTime".into(), Json::Null);
    Node { ty: EntityType::Observation, id, json: m, rec: None }
}

pub(super) fn multi_rec(st: &AppState, m: &Id) -> ApiResult<Option<Rec>> {
    entities::get(st.store(), EntityType::MultiDatastream, m, None)
}

/// One MultiDatastream Observation by id (`None` when the id is not one, or nothing is stored).
pub fn one(st: &AppState, id: &Id) -> ApiResult<Option<Node>> {
    let Some((m, t)) = parse_id(id) else { return Ok(None) };
    let Some(rec) = multi_rec(st, &Id::Int(m))? else { return Ok(None) };
    let shape = Shape::of(&rec)?;
    let ts = st.timeseries()?;
    let next = t.checked_add(jiff::SignedDuration::from_micros(1)).unwrap_or(t);
    let mut values = Vec::with_capacity(shape.types.len());
    for k in 0..shape.types.len() {
        values
            .push(ts.range(series(m, k), t, next, 1, Order::Asc).map_err(ApiError::internal)?.first().map(|s| s.value));
    }
    if values.iter().all(Option::is_none) {
        return Ok(None);
    }
    Ok(Some(node(&shape, t, &values)))
}

/// The MultiDatastream an Observation of it belongs to.
pub fn of_observation(cx: &Cx<'_>, obs: &Id) -> ApiResult<Vec<Node>> {
    let Some((m, _)) = parse_id(obs) else { return Ok(Vec::new()) };
    Ok(entities::get(cx.st.store(), EntityType::MultiDatastream, &Id::Int(m), cx.as_of)?
        .map(Node::of)
        .into_iter()
        .collect())
}

/// A MultiDatastream's Observations with the query options: the window and order of
/// `phenomenonTime` go to the series read of the first component (as for a Datastream, see
/// `observations::of_datastream`); the other components are read over the same instants.
pub fn of_multi(cx: &Cx<'_>, from: &Node, opts: &QueryOptions) -> ApiResult<(Vec<Node>, Option<u64>)> {
    let Some(rec) = &from.rec else { return Ok((Vec::new(), Some(0))) };
    let shape = Shape::of(rec)?;
    let ts = cx.st.timeseries()?;
    let (lo, hi) = super::observations::time_window(opts.filter.as_ref());
    let time_order = match opts.orderby.as_slice() {
        [] => Some(Order::Asc),
        [o] if o.expr == shikong_sta::Expr::Property(vec!["phenomenonTime".into()]) => {
            Some(if o.descending { Order::Desc } else { Order::Asc })
        }
        _ => None,
    };
    let top = opts.top.unwrap_or(DEFAULT_TOP).min(cx.max_top);
    let skip = opts.skip.unwrap_or(0);
    let residual = opts.filter.as_ref().is_some_and(|f| !super::observations::only_time(f));
    let max = shikong_timeseries::MAX_RANGE_LIMIT;
    let exact = residual || time_order.is_none() || opts.count == Some(true);
    if skip + top > max as u64 {
        return Err(ApiError::bad_parameter(
            "$skip",
            format!("$skip + $top is at most {max} on Observations; page by phenomenonTime instead"),
        ));
    }
    let want = if exact { max } else { (skip + top + 1).min(max as u64) as usize };
    let first =
        ts.range(series(shape.id, 0), lo, hi, want, time_order.unwrap_or(Order::Asc)).map_err(ApiError::internal)?;
    if exact && first.len() >= max {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too-large",
            format!("more than {max} observations in the window; narrow it with $filter=phenomenonTime ge … and lt …"),
        )
        .with("limit", "observations evaluated")
        .with("max", max));
    }
    let mut columns: Vec<HashMap<Timestamp, f64>> = vec![HashMap::new(); shape.types.len()];
    if let (Some(a), Some(b)) = (first.iter().map(|s| s.time).min(), first.iter().map(|s| s.time).max()) {
        let end = b.checked_add(jiff::SignedDuration::from_micros(1)).unwrap_or(b);
        for (k, col) in columns.iter_mut().enumerate().skip(1) {
            for s in ts.range(series(shape.id, k), a, end, max, Order::Asc).map_err(ApiError::internal)? {
                col.insert(s.time, s.value);
            }
        }
    }
    let nodes: Vec<Node> = first
        .iter()
        .map(|s| {
            let values: Vec<Option<f64>> = (0..shape.types.len())
                .map(|k| if k == 0 { Some(s.value) } else { columns[k].get(&s.time).copied() })
                .collect();
            node(&shape, s.time, &values)
        })
        .collect();
    if exact {
        return cx.page(nodes, opts);
    }
    Ok((nodes.into_iter().skip(skip as usize).take(top as usize).collect(), None))
}

/// The MultiDatastream a create body links (`None`: it links a Datastream).
pub fn linked(plan: &CreatePlan) -> Option<&Ref> {
    plan.ops.get(plan.root)?.links.iter().find(|l| l.nav == "MultiDatastream").map(|l| &l.target)
}

fn time_of(props: &Map<String, Json>, at: &str) -> ApiResult<Timestamp> {
    let bad = |field: String, msg: String| {
        ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "observation-refused", msg).with("field", field)
    };
    for k in ["resultQuality", "validTime", "parameters"] {
        if props.get(k).is_some_and(|v| !v.is_null()) {
            return Err(bad(format!("{at}/{k}"), format!("`{k}` is not stored yet: send the Observation without it")));
        }
    }
    match props.get("phenomenonTime").and_then(Json::as_str) {
        None => Ok(Timestamp::now()),
        Some(s) => match shikong_sta::TimeValue::parse(s) {
            Ok(shikong_sta::TimeValue::Instant(t)) => Ok(t),
            _ => Err(bad(
                format!("{at}/phenomenonTime"),
                "phenomenonTime is stored as an instant, not an interval".into(),
            )),
        },
    }
}

/// `POST /Observations` (or `/MultiDatastreams(m)/Observations`) of a MultiDatastream's Observation.
pub fn create(st: &AppState, req: &Req, plan: &CreatePlan, target: &Ref) -> ApiResult<Response> {
    let layer = st.store().layer(entities::governing_layer(EntityType::Observation))?;
    req.caller.allowed(st, &layer, Action::Edit)?;
    let (id, mut obj) = store_planned(st, plan, target)?;
    add_links(&mut obj, &req.base, EntityType::Observation, &id);
    Ok(created(&Json::Object(obj)))
}

/// Stores the one MultiDatastream Observation of a validated create body (its MultiDatastream
/// linked in the body, by the URL or by the MQTT topic): every component in one append (one
/// transaction). Its id and JSON (without links). Shared by `POST …/Observations` and MQTT
/// publishes (`mqtt.rs`), so both accept and refuse exactly the same bodies. The caller checked
/// the edit permission.
pub(crate) fn store_planned(st: &AppState, plan: &CreatePlan, target: &Ref) -> ApiResult<(Id, Map<String, Json>)> {
    if plan.ops.len() != 1 {
        let at = plan.ops.iter().find(|o| o.entity_type != EntityType::Observation).map_or("", |o| o.path.as_str());
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "not-supported",
            "an Observation's inline FeatureOfInterest is not stored yet: link one by {\"@iot.id\": …} or leave it out",
        )
        .with("field", at.to_owned()));
    }
    let Ref::Existing(m) = target else { return Err(ApiError::internal("a new MultiDatastream in an Observation")) };
    let rec = multi_rec(st, m)?
        .ok_or_else(|| entities::missing(EntityType::MultiDatastream, m).with("field", "/MultiDatastream"))?;
    let shape = Shape::of(&rec)?;
    let op = &plan.ops[plan.root];
    let values = shape.values(op.properties.get("result"), "")?;
    let t = time_of(&op.properties, "")?;
    let explicit = op.links.iter().find_map(|l| match (l.nav, &l.target) {
        ("FeatureOfInterest", Ref::Existing(f)) => Some(f),
        _ => None,
    });
    match explicit {
        Some(f) => super::foi::link_explicit(st, EntityType::MultiDatastream, m, f)?,
        None => super::foi::ensure_generated(st, &rec)?,
    }
    let ts = st.timeseries()?;
    shape.define(&ts)?;
    let readings: Vec<Reading> =
        values.iter().enumerate().map(|(k, v)| Reading::new(series(shape.id, k), t, *v)).collect();
    let outcomes = ts.append(&readings).map_err(ApiError::internal)?;
    if let Some((k, Outcome::Refused { reason })) =
        outcomes.iter().enumerate().find(|(_, o)| matches!(o, Outcome::Refused { .. }))
    {
        return Err(refused_component(k, reason));
    }
    let values: Vec<Option<f64>> = values.into_iter().map(Some).collect();
    Ok((obs_id(shape.id, t), node(&shape, t, &values).json))
}

/// Why the store refused component `k`'s reading, naming the member at fault: `/result/k`, or
/// `/phenomenonTime` for a refused time (too far ahead, before 2000, beyond retention).
pub(super) fn refused_component(k: usize, reason: &shikong_timeseries::Refusal) -> ApiError {
    let e = super::observations::refused(reason);
    match e.extra.get("field").and_then(Json::as_str) {
        Some("/result") => e.with("field", format!("/result/{k}")),
        _ => e,
    }
}

/// The MultiDatastream rows of one `POST /CreateObservations`: checked as they come, appended
/// in batches (every component of a row in the same batch, so one transaction).
#[derive(Default)]
pub struct Bulk {
    shapes: HashMap<i64, Option<Shape>>,
    /// (answer index, observation URL, readings of the row)
    rows: Vec<(usize, String, Vec<Reading>)>,
    readings: usize,
}

impl Bulk {
    /// Takes one row; `Ok(false)` when the row is refused (its answer stays `"error"`).
    pub fn push(&mut self, st: &AppState, base: &str, i: usize, m: i64, draft: &ObservationDraft) -> ApiResult<bool> {
        let ts = st.timeseries()?;
        if let std::collections::hash_map::Entry::Vacant(slot) = self.shapes.entry(m) {
            let shape = match multi_rec(st, &Id::Int(m))? {
                Some(rec) => match Shape::of(&rec) {
                    Ok(s) => {
                        s.define(&ts)?;
                        if draft.feature_of_interest.is_none() {
                            super::foi::ensure_generated(st, &rec)?;
                        }
                        Some(s)
                    }
                    Err(_) => None,
                },
                None => None,
            };
            slot.insert(shape);
        }
        let Some(Some(shape)) = self.shapes.get(&m) else { return Ok(false) };
        if let Some(f) = &draft.feature_of_interest
            && super::foi::link_explicit(st, EntityType::MultiDatastream, &Id::Int(m), f).is_err()
        {
            return Ok(false);
        }
        let (Ok(values), Ok(t)) = (shape.values(draft.properties.get("result"), ""), time_of(&draft.properties, ""))
        else {
            return Ok(false);
        };
        let url = entity_url(base, EntityType::Observation, &obs_id(m, t));
        let readings: Vec<Reading> =
            values.iter().enumerate().map(|(k, v)| Reading::new(series(m, k), t, *v)).collect();
        self.readings += readings.len();
        self.rows.push((i, url, readings));
        Ok(true)
    }

    /// Whether the waiting rows fill a batch.
    pub fn full(&self) -> bool {
        self.readings >= shikong_timeseries::MAX_BATCH - MAX_COMPONENTS
    }

    /// Appends the waiting rows and writes their answers (a row any component of which the
    /// series refused answers `"error"`; its other components are stored).
    pub fn flush(&mut self, st: &AppState, answers: &mut [Json]) -> ApiResult<()> {
        if self.rows.is_empty() {
            return Ok(());
        }
        let all: Vec<Reading> = self.rows.iter().flat_map(|(_, _, r)| r.iter().cloned()).collect();
        let outcomes = st.timeseries()?.append(&all).map_err(ApiError::internal)?;
        let mut at = 0;
        for (i, url, r) in self.rows.drain(..) {
            let mine = outcomes.get(at..at + r.len()).unwrap_or_default();
            let refused = mine.len() != r.len() || mine.iter().any(|o| matches!(o, Outcome::Refused { .. }));
            at += r.len();
            if let Some(a) = answers.get_mut(i) {
                *a = if refused { json!("error") } else { json!(url) };
            }
        }
        self.readings = 0;
        Ok(())
    }
}
