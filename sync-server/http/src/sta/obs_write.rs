//! PATCH, PUT and DELETE of one Observation (issue 18: create, update and delete of every entity
//! set), a Datastream's (`'DS-MICROS'`) or a MultiDatastream's (`'M<m>-MICROS'`).
//!
//! Why not the entity path of `write.rs`: an Observation is a reading of the time-series store,
//! not a feature version, and its id is its key (stream, phenomenon time). So what may change is
//! what a reading holds:
//! - `result` changed: a correction — the same key appended with the new value, so the store
//!   keeps the previous value in its corrections table and recomputes the roll-ups (exactly what
//!   a sensor re-sending a corrected value does);
//! - `phenomenonTime` changed: a move — the reading leaves its old time (kept in the store's
//!   deletions table with the time it moved to) and is stored at the new one, in one
//!   transaction (`TimeSeries::relocate`: all components of a MultiDatastream Observation
//!   together, or none). The Observation's id changes with it: the answer carries the new one.
//!   Moving onto a stored Observation is refused (409): it would replace another reading;
//! - any other member (`resultQuality`, `validTime`, `parameters`, `resultTime` other than
//!   null, the FeatureOfInterest, another Datastream) is refused with 422 naming it: it is not
//!   stored, so accepting it would drop it silently. Members a client sends back as it read them
//!   (`@iot.id` unchanged, `@iot.selfLink`, navigation links, its own Datastream) are accepted.
//!
//! DELETE removes the reading (every component of a MultiDatastream Observation, in one
//! transaction); the store keeps the removed values (`TimeSeries::deletions`) and recomputes the
//! roll-ups and `latest`. Every change needs edit permission on `sta_datastream`, like a create.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use jiff::Timestamp;
use serde_json::{Map, Value as Json};
use shikong_sta::entity::{EntityType, Id, add_links};
use shikong_sta::path::{Resource, Tail};
use shikong_timeseries::{Move, Outcome, Reading, Relocated};

use super::super::access::Action;
use super::super::problem::{ApiError, ApiResult};
use super::stream::ObservationOrigin;
use super::{AppState, Req, entities, json_response, multi, observations, sta_error};

/// The Observation a path names: its stream and phenomenon time.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Target {
    Datastream(i64, Timestamp),
    Multi(i64, Timestamp),
}

/// What a PATCH or PUT body changes.
#[derive(Debug, Default)]
struct Change {
    result: Option<Json>,
    time: Option<Timestamp>,
}

/// `/Observations('…')`, or through its own stream: `/Datastreams(7)/Observations('7-…')`.
fn target(r: &Resource) -> ApiResult<(Target, Id)> {
    let last = r.segments.last().ok_or_else(|| ApiError::not_found("empty path"))?;
    let id = match (&last.id, last.collection, &r.tail) {
        (Some(id), false, Tail::None) => id.clone(),
        _ => {
            return Err(ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method-not-allowed",
                "PATCH, PUT and DELETE address one Observation (/Observations('7-1772323200000000'))",
            ));
        }
    };
    let t = match (observations::parse_id(&id), multi::parse_id(&id)) {
        (Some((d, t)), _) => Target::Datastream(d, t),
        (None, Some((m, t))) => Target::Multi(m, t),
        (None, None) => return Err(entities::missing(EntityType::Observation, &id)),
    };
    let parent_ok = match (r.segments.as_slice(), t) {
        ([_], _) => true,
        ([p, _], Target::Datastream(d, _)) => p.entity_type == EntityType::Datastream && p.id == Some(Id::Int(d)),
        ([p, _], Target::Multi(m, _)) => p.entity_type == EntityType::MultiDatastream && p.id == Some(Id::Int(m)),
        _ => false,
    };
    if !parent_ok {
        return Err(entities::missing(EntityType::Observation, &id));
    }
    Ok((t, id))
}

fn check_edit(st: &AppState, req: &Req) -> ApiResult<()> {
    entities::ensure_layers(st.store(), &st.sta)?;
    let layer = st.store().layer(entities::governing_layer(EntityType::Observation))?;
    req.caller.allowed(st, &layer, Action::Edit)
}

/// The Observation as GET shows it (no links), or 404.
fn current(st: &AppState, t: Target, id: &Id) -> ApiResult<Map<String, Json>> {
    let node = match t {
        Target::Datastream(..) => observations::one(st, id)?,
        Target::Multi(..) => multi::one(st, id)?,
    };
    node.map(|n| n.json).ok_or_else(|| entities::missing(EntityType::Observation, id))
}

/// `DELETE /Observations('…')`.
pub fn delete(st: &AppState, req: &Req, r: &Resource) -> ApiResult<Response> {
    let (t, id) = target(r)?;
    check_edit(st, req)?;
    let ts = st.timeseries()?;
    let keys = match t {
        Target::Datastream(d, at) => vec![(d, at)],
        Target::Multi(m, at) => {
            let rec =
                multi::multi_rec(st, &Id::Int(m))?.ok_or_else(|| entities::missing(EntityType::Observation, &id))?;
            let n = multi::Shape::of(&rec)?.types.len();
            (0..n).map(|k| (multi::series(m, k), at)).collect()
        }
    };
    let removed = ts.delete(&keys).map_err(ApiError::internal)?;
    if removed.iter().all(Option::is_none) {
        return Err(entities::missing(EntityType::Observation, &id));
    }
    Ok(StatusCode::OK.into_response())
}

/// `PATCH` (`replace` false: a JSON merge, or a JSON Patch array) and `PUT` (`replace` true) of
/// one Observation.
pub fn update(st: &AppState, req: &Req, r: &Resource, replace: bool) -> ApiResult<Response> {
    let (t, id) = target(r)?;
    check_edit(st, req)?;
    let body = super::write::parse_body(&req.body, "the request body")?;
    let now = current(st, t, &id)?;
    let change = change_of(t, &now, &body, replace)?;
    let author = req.caller.principal.as_ref().map(|p| p.username.as_str());
    let mut obj = match t {
        Target::Datastream(d, at) => update_single(st, d, at, &change, author)?,
        Target::Multi(m, at) => update_multi(st, m, at, &change)?,
    };
    let new_id = obj.get("@iot.id").and_then(Json::as_str).map_or(id, |s| Id::Str(s.to_owned()));
    add_links(&mut obj, &req.base, EntityType::Observation, &new_id);
    Ok(json_response(StatusCode::OK, &Json::Object(obj)))
}

/// A JSON pointer to a body member.
fn pointer(key: &str) -> String {
    format!("/{}", key.replace('~', "~0").replace('/', "~1"))
}

fn unchangeable(field: String, detail: String) -> ApiError {
    ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "not-supported", detail).with("field", field)
}

/// The members a body changes, each checked (see the module docs).
fn change_of(t: Target, now: &Map<String, Json>, body: &Json, replace: bool) -> ApiResult<Change> {
    let members: Map<String, Json> = match body {
        Json::Array(_) if !replace => {
            let mut doc = Json::Object(now.clone());
            shikong_sta::update::apply_json_patch(&mut doc, body).map_err(sta_error)?;
            let Json::Object(after) = doc else {
                return Err(ApiError::bad_body("the JSON Patch must leave an object").with("field", ""));
            };
            let mut changed: Map<String, Json> =
                after.iter().filter(|(k, v)| now.get(*k) != Some(*v)).map(|(k, v)| (k.clone(), v.clone())).collect();
            for k in now.keys().filter(|k| !after.contains_key(*k)) {
                changed.insert(k.clone(), Json::Null);
            }
            changed
        }
        Json::Object(m) => m.clone(),
        _ => return Err(ApiError::bad_body("the body is a JSON object (or, for PATCH, a JSON Patch array)")),
    };
    if replace && members.get("result").is_none_or(Json::is_null) {
        return Err(ApiError::bad_body("PUT replaces the Observation: it needs `result`").with("field", "/result"));
    }
    let (own_nav, own_id) = match t {
        Target::Datastream(d, _) => ("Datastream", d),
        Target::Multi(m, _) => ("MultiDatastream", m),
    };
    let mut change = Change::default();
    for (k, v) in &members {
        match k.as_str() {
            "@iot.id" if Some(v) == now.get("@iot.id") => {}
            "@iot.id" => {
                return Err(unchangeable(
                    "/@iot.id".into(),
                    "an Observation's @iot.id follows its stream and phenomenonTime: change phenomenonTime to move it"
                        .into(),
                ));
            }
            // annotations a client sends back as it read them (`@iot.selfLink`, navigation links)
            k if k.contains('@') => {}
            "result" if v.is_null() => {
                return Err(ApiError::bad_body("an Observation needs `result`").with("field", "/result"));
            }
            "result" => change.result = Some(v.clone()),
            "phenomenonTime" => {
                let parsed = v.as_str().map(shikong_sta::TimeValue::parse);
                match parsed {
                    Some(Ok(shikong_sta::TimeValue::Instant(at))) => change.time = Some(at),
                    _ => {
                        return Err(unchangeable(
                            "/phenomenonTime".into(),
                            "phenomenonTime is stored as an instant (an RFC 3339 time), not an interval or null".into(),
                        ));
                    }
                }
            }
            "resultTime" if v.is_null() => {}
            nav if nav == own_nav && v.get("@iot.id").and_then(Json::as_i64) == Some(own_id) => {}
            nav if nav == own_nav => {
                return Err(unchangeable(
                    pointer(nav),
                    format!("an Observation stays in its {nav}: create it in the other one and delete this one"),
                ));
            }
            other => {
                return Err(unchangeable(
                    pointer(other),
                    format!(
                        "`{other}` of an Observation cannot be changed: only `result` and `phenomenonTime` are stored"
                    ),
                ));
            }
        }
    }
    Ok(change)
}

/// The new time when it differs from `at` (the store keeps microseconds: finer parts do not move).
fn moved_to(at: Timestamp, change: &Change) -> Option<Timestamp> {
    let t = change.time?;
    let t = Timestamp::from_microsecond(t.as_microsecond()).unwrap_or(t);
    (t != at).then_some(t)
}

/// Why a move was not made.
fn not_moved(r: Relocated, id: &Id, to: Timestamp, field_of: impl Fn(usize) -> String) -> ApiError {
    match r {
        Relocated::Moved => ApiError::internal("a move reported as not made"),
        Relocated::Missing { .. } => entities::missing(EntityType::Observation, id),
        Relocated::Occupied { .. } => ApiError::new(
            StatusCode::CONFLICT,
            "observation-exists",
            format!("an Observation of this stream is already at {to}: delete it first, or change its result"),
        )
        .with("field", "/phenomenonTime"),
        Relocated::Refused { index, reason } => {
            let e = observations::refused(&reason);
            if e.extra.get("field").and_then(Json::as_str) == Some("/result") {
                e.with("field", field_of(index))
            } else {
                e
            }
        }
    }
}

fn update_single(
    st: &AppState,
    d: i64,
    at: Timestamp,
    change: &Change,
    author: Option<&str>,
) -> ApiResult<Map<String, Json>> {
    let id = observations::obs_id(d, at);
    let value = match &change.result {
        None => None,
        Some(Json::Number(n)) => Some(n.as_f64().unwrap_or(f64::NAN)),
        Some(other) => {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "observation-refused",
                format!("results are stored as numbers; `{other}` is not a number"),
            )
            .with("field", "/result"));
        }
    };
    let ts = st.timeseries()?;
    if let Some(to) = moved_to(at, change) {
        let r = ts.relocate(&[Move { datastream: d, from: at, to, value }]).map_err(ApiError::internal)?;
        if r != Relocated::Moved {
            return Err(not_moved(r, &id, to, |_| "/result".into()));
        }
        let stored = observations::one(st, &observations::obs_id(d, to))?
            .ok_or_else(|| entities::missing(EntityType::Observation, &id))?;
        let v = stored.json.get("result").and_then(Json::as_f64).unwrap_or_default();
        let moved = Reading::new(d, to, v);
        st.observations().stored(ObservationOrigin::Http, author, &[moved], &[Outcome::Accepted]);
        return Ok(stored.json);
    }
    if let Some(v) = value {
        let r = Reading::new(d, at, v);
        let outcomes = ts.append(std::slice::from_ref(&r)).map_err(ApiError::internal)?;
        st.observations().stored(ObservationOrigin::Http, author, std::slice::from_ref(&r), &outcomes);
        let s = observations::answer(&r, outcomes.first())?;
        return Ok(observations::entity(&s, None).as_object().cloned().unwrap_or_default());
    }
    current(st, Target::Datastream(d, at), &id)
}

fn update_multi(st: &AppState, m: i64, at: Timestamp, change: &Change) -> ApiResult<Map<String, Json>> {
    let id = multi::obs_id(m, at);
    let rec = multi::multi_rec(st, &Id::Int(m))?.ok_or_else(|| entities::missing(EntityType::Observation, &id))?;
    let shape = multi::Shape::of(&rec)?;
    let values = match &change.result {
        Some(r) => Some(shape.values(Some(r), "")?),
        None => None,
    };
    let ts = st.timeseries()?;
    let next = at.checked_add(jiff::SignedDuration::from_micros(1)).unwrap_or(at);
    let mut stored = Vec::with_capacity(shape.types.len());
    for k in 0..shape.types.len() {
        let s = ts.range(multi::series(m, k), at, next, 1, shikong_timeseries::Order::Asc);
        stored.push(s.map_err(ApiError::internal)?.first().map(|s| s.value));
    }
    let new_value = |k: usize| values.as_ref().and_then(|v| v.get(k).copied());
    let time = moved_to(at, change).unwrap_or(at);
    if time != at {
        // the stored components move together; one the Observation lacked is added at the new time
        let moves: Vec<Move> = (0..shape.types.len())
            .filter(|k| stored[*k].is_some())
            .map(|k| Move { datastream: multi::series(m, k), from: at, to: time, value: new_value(k) })
            .collect();
        let comps: Vec<usize> = (0..shape.types.len()).filter(|k| stored[*k].is_some()).collect();
        let r = ts.relocate(&moves).map_err(ApiError::internal)?;
        if r != Relocated::Moved {
            return Err(not_moved(r, &id, time, |i| format!("/result/{}", comps.get(i).copied().unwrap_or(0))));
        }
    }
    let added: Vec<(usize, Reading)> = (0..shape.types.len())
        .filter(|k| time == at || stored[*k].is_none())
        .filter_map(|k| new_value(k).map(|v| (k, Reading::new(multi::series(m, k), time, v))))
        .collect();
    if !added.is_empty() {
        let readings: Vec<Reading> = added.iter().map(|(_, r)| r.clone()).collect();
        let outcomes = ts.append(&readings).map_err(ApiError::internal)?;
        if let Some(((k, _), Outcome::Refused { reason })) =
            added.iter().zip(&outcomes).find(|(_, o)| matches!(o, Outcome::Refused { .. }))
        {
            return Err(multi::refused_component(*k, reason));
        }
    }
    current(st, Target::Multi(m, time), &multi::obs_id(m, time))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn t(s: &str) -> Timestamp {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    fn now() -> Map<String, Json> {
        let v = json!({"@iot.id": "7-1772323200000000", "phenomenonTime": "2026-03-01T00:00:00Z", "result": 1.5,
                       "resultTime": null});
        v.as_object().cloned().unwrap_or_default()
    }

    const AT: Target = Target::Datastream(7, Timestamp::UNIX_EPOCH);

    #[test]
    fn a_body_changes_result_and_time_only() {
        let c = change_of(AT, &now(), &json!({"result": 2, "phenomenonTime": "2026-03-01T08:00:00+08:00"}), false);
        let c = c.unwrap_or_else(|e| panic!("{}", e.detail));
        assert_eq!((c.result, c.time), (Some(json!(2)), Some(t("2026-03-01T00:00:00Z"))));
        // what a client sends back as it read it is accepted
        let back = json!({"@iot.id": "7-1772323200000000", "@iot.selfLink": "x", "Datastream@iot.navigationLink": "y",
                          "resultTime": null, "Datastream": {"@iot.id": 7}, "result": 3});
        assert!(change_of(AT, &now(), &back, true).is_ok());
        for (body, field) in [
            (json!({"resultQuality": "good"}), "/resultQuality"),
            (json!({"parameters": {"a/b": 1}}), "/parameters"),
            (json!({"Datastream": {"@iot.id": 8}}), "/Datastream"),
            (json!({"resultTime": "2026-03-01T00:00:00Z"}), "/resultTime"),
            (json!({"phenomenonTime": "2026-03-01T00:00:00Z/2026-03-01T01:00:00Z"}), "/phenomenonTime"),
            (json!({"@iot.id": "7-1"}), "/@iot.id"),
            (json!({"a/b": 1}), "/a~1b"),
        ] {
            let e = change_of(AT, &now(), &body, false).expect_err("refused");
            assert_eq!(
                (e.status, e.extra.get("field")),
                (StatusCode::UNPROCESSABLE_ENTITY, Some(&json!(field))),
                "{body}"
            );
        }
        // PUT needs the result; null removes nothing
        let e = change_of(AT, &now(), &json!({"phenomenonTime": "2026-03-01T00:00:00Z"}), true).expect_err("no result");
        assert_eq!(e.extra.get("field"), Some(&json!("/result")));
        assert!(change_of(AT, &now(), &json!({"result": null}), false).is_err());
    }

    #[test]
    fn a_json_patch_changes_what_it_touches() {
        let ops = json!([{"op": "replace", "path": "/result", "value": 4.0}, {"op": "test", "path": "/resultTime", "value": null}]);
        let c = change_of(AT, &now(), &ops, false).unwrap_or_else(|e| panic!("{}", e.detail));
        assert_eq!((c.result, c.time), (Some(json!(4.0)), None));
        let e = change_of(AT, &now(), &json!([{"op": "remove", "path": "/phenomenonTime"}]), false).expect_err("null");
        assert_eq!(e.extra.get("field"), Some(&json!("/phenomenonTime")));
    }

    #[test]
    fn a_move_is_to_another_microsecond() {
        let at = t("2026-03-01T00:00:00Z");
        let c = |s: &str| Change { result: None, time: Some(t(s)) };
        assert_eq!(moved_to(at, &c("2026-03-01T00:00:00.0000004Z")), None);
        assert_eq!(moved_to(at, &c("2026-03-01T00:00:01Z")), Some(t("2026-03-01T00:00:01Z")));
        assert_eq!(moved_to(at, &Change::default()), None);
    }
}
