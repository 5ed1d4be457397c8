//! The latest-readings layer (issue 18's live view): `GET /collections/sta_latest` and
//! `GET /collections/sta_latest/items`, an OGC API – Features collection whose features are the
//! stations — each Thing at its first Location's geometry — with the latest reading of each of
//! its Datastreams, its time and a state. A station is the worst of its datastreams; a
//! datastream's state is the worst of: `alarm` while an incident of an alert rule (`/alerts`) is
//! open for it (`silent` for a silence rule's), `silent` once a silence rule's window passed
//! without a reading (`alerts::state`), and what its latest reading says against the Datastream's
//! `properties.thresholds` (`live::Thresholds`: `normal`, `warning`, `alarm`, or `silent` when
//! older than its `silentMinutes`); `unknown` with no reading and no silence to tell. The web map
//! draws it coloured by `state` and moves it with the live channel's `reading` and `alert`
//! messages.
//!
//! Why a virtual collection computed per request and not a layer of the store: the latest value
//! changes with every reading (thousands a second), and a reading is not a feature version
//! (ARCHITECTURE.md, time-series store). So the answer joins, at read time, the `sta_thing`,
//! `sta_location` and `sta_datastream` features with the time-series store's `latest` (one
//! indexed lookup per datastream, [`shikong_timeseries::MAX_LATEST`] per call). Not a vector-tile
//! set: the tile server renders store layers from its cache, which a virtual layer has not; at
//! [`MAX_STATIONS`] points a GeoJSON source (MapLibre tiles it in the browser) serves the map.
//! The route is registered beside the OGC routes (a literal segment wins over
//! `{collection_id}`); `/collections` does not list it (it is not a layer).
//!
//! Permissions: read permission on `sta_thing`, `sta_location` and `sta_datastream` (401/403 as
//! every layer). Bounded: at most [`MAX_STATIONS`] Things (413 beyond); `bbox` narrows by the
//! station's position.

use std::collections::HashMap;

use axum::Json;
use axum::extract::{RawQuery, State};
use axum::http::HeaderMap;
use jiff::Timestamp;
use serde_json::Value as JsonValue;
use shikong_model::time::beijing;
use shikong_protocol::api::{
    Collection, Extent, Link, SensorState, SpatialExtent, StationCollection, StationFeature, StationProperties,
    StationReading, TemporalExtent,
};
use shikong_sta::alerts::DatastreamInfo;
use shikong_sta::entity::{EntityType, Id};
use shikong_timeseries::{MAX_LATEST, Stored};

use super::super::access::{Action, Caller};
use super::super::params::Params;
use super::super::problem::{ApiError, ApiResult};
use super::live::Thresholds;
use super::{AppState, entities};
use crate::alerts::state::RuleView;
use crate::blocking;

/// The collection's id.
pub const COLLECTION: &str = "sta_latest";
/// Most stations one answer holds.
pub const MAX_STATIONS: usize = 10_000;

/// `GET /collections/sta_latest`.
pub async fn collection(State(st): State<AppState>, headers: HeaderMap, caller: Caller) -> ApiResult<Json<Collection>> {
    let base = st.base_url(&headers);
    blocking(move || {
        check(&st, &caller)?;
        let href = |p: &str| format!("{base}/collections/{COLLECTION}{p}");
        Ok(Json(Collection {
            id: COLLECTION.into(),
            title: "监测站最新读数".into(),
            description:
                "每个监测站（SensorThings Thing）位置上各数据流的最新读数与状态（正常、预警、报警、静默、未知）".into(),
            item_type: "feature".into(),
            extent: Extent {
                spatial: SpatialExtent {
                    bbox: vec![[-180.0, -90.0, 180.0, 90.0]],
                    crs: "http://www.opengis.net/def/crs/OGC/1.3/CRS84".into(),
                },
                temporal: TemporalExtent {
                    interval: vec![[None, None]],
                    trs: "http://www.opengis.net/def/uom/ISO-8601/0/Gregorian".into(),
                },
            },
            crs: vec!["http://www.opengis.net/def/crs/OGC/1.3/CRS84".into()],
            storage_crs: "http://www.opengis.net/def/crs/OGC/1.3/CRS84".into(),
            geometry_type: "Geometry".into(),
            public: false,
            citizen_reports: false,
            links: vec![
                Link::new(href(""), "self", "application/json", "本集合"),
                Link::new(href("/items"), "items", "application/geo+json", "监测站"),
            ],
            transactions: None,
        }))
    })
    .await
}

/// Read permission on every layer the answer joins.
fn check(st: &AppState, caller: &Caller) -> ApiResult<()> {
    entities::ensure_layers(st.store(), &st.sta)?;
    for ty in [EntityType::Thing, EntityType::Location, EntityType::Datastream] {
        let layer = st.store().layer(entities::governing_layer(ty))?;
        caller.allowed(st, &layer, Action::Read)?;
    }
    Ok(())
}

/// `GET /collections/sta_latest/items`.
pub async fn items(
    State(st): State<AppState>,
    RawQuery(q): RawQuery,
    caller: Caller,
) -> ApiResult<([(axum::http::HeaderName, &'static str); 1], Json<StationCollection>)> {
    let p = Params::new(q.as_deref())?;
    p.only(&["bbox", "f"])?;
    if let Some(f) = p.get("f").filter(|f| !matches!(*f, "json" | "geojson")) {
        return Err(ApiError::bad_parameter("f", format!("`{f}`: this collection is GeoJSON only (f=json)")));
    }
    let bbox = p.bbox()?;
    let answer = blocking(move || {
        check(&st, &caller)?;
        stations(&st, Timestamp::now(), |lon, lat| {
            bbox.as_ref().is_none_or(|b| lon >= b.min_x && lon <= b.max_x && lat >= b.min_y && lat <= b.max_y)
        })
    })
    .await?;
    Ok(([(axum::http::header::CONTENT_TYPE, "application/geo+json")], Json(answer)))
}

/// The first position of a GeoJSON geometry (a station's place for `bbox`).
fn first_position(g: &JsonValue) -> Option<(f64, f64)> {
    let mut c = g.get("coordinates")?;
    while let Some(inner) = c.get(0).filter(|v| v.is_array()) {
        c = inner;
    }
    Some((c.get(0)?.as_f64()?, c.get(1)?.as_f64()?))
}

/// The Location's geometry: its `location` (a GeoJSON geometry or Feature).
fn geometry(props: &serde_json::Map<String, JsonValue>) -> Option<JsonValue> {
    let l = props.get("location")?;
    let g = if l.get("type").and_then(JsonValue::as_str) == Some("Feature") { l.get("geometry")? } else { l };
    g.get("coordinates").is_some().then(|| g.clone())
}

/// A Datastream's place in alert rules' scopes.
fn info(ds: &entities::Rec, id: i64) -> DatastreamInfo {
    let int = |nav: &str| ds.linked(nav).into_iter().find_map(|i| if let Id::Int(n) = i { Some(n) } else { None });
    DatastreamInfo { id, sensor: int("Sensor"), observed_property: int("ObservedProperty") }
}

/// A datastream's state (module docs) and the state its open alerts put it in.
fn state_of(
    d: &entities::Rec,
    id: i64,
    latest: Option<&Stored>,
    rules: &RuleView,
    now: Timestamp,
) -> (SensorState, Option<SensorState>) {
    let verdict = rules.judge(&info(d, id), latest.map(|s| s.time), now);
    let mut state = match latest {
        Some(s) => Thresholds::of(&d.props).state_of(Some((s.time, s.value)), now),
        None => SensorState::Unknown,
    };
    if verdict.silent {
        state = state.max(SensorState::Silent);
    }
    if let Some(a) = verdict.alert {
        state = state.max(a);
    }
    (state, verdict.alert)
}

fn stations(st: &AppState, now: Timestamp, inside: impl Fn(f64, f64) -> bool) -> ApiResult<StationCollection> {
    let store = st.store();
    let things = entities::list(store, EntityType::Thing, None)?;
    if things.len() > MAX_STATIONS {
        return Err(ApiError::new(
            axum::http::StatusCode::PAYLOAD_TOO_LARGE,
            "too-large",
            format!("more than {MAX_STATIONS} stations: this layer answers at most that many"),
        )
        .with("limit", "stations")
        .with("max", MAX_STATIONS));
    }
    let places: HashMap<Id, JsonValue> = entities::list(store, EntityType::Location, None)?
        .into_iter()
        .filter_map(|l| Some((l.id.clone(), geometry(&l.props)?)))
        .collect();
    let mut by_thing: HashMap<Id, Vec<entities::Rec>> = HashMap::new();
    for ds in entities::list(store, EntityType::Datastream, None)? {
        if let Some(t) = ds.linked("Thing").into_iter().next() {
            by_thing.entry(t).or_default().push(ds);
        }
    }
    // the latest reading of every datastream of a placed station
    let mut placed = Vec::new();
    for thing in things {
        let Some(geom) = thing.linked("Locations").iter().find_map(|l| places.get(l)).cloned() else { continue };
        if !first_position(&geom).is_some_and(|(x, y)| inside(x, y)) {
            continue;
        }
        placed.push((thing, geom));
    }
    let ids: Vec<i64> = placed
        .iter()
        .flat_map(|(t, _)| by_thing.get(&t.id).into_iter().flatten())
        .filter_map(|d| if let Id::Int(n) = d.id { Some(n) } else { None })
        .collect();
    let ts = st.timeseries()?;
    let mut latest: HashMap<i64, Stored> = HashMap::with_capacity(ids.len());
    for chunk in ids.chunks(MAX_LATEST) {
        for s in ts.latest(chunk).map_err(ApiError::internal)? {
            latest.insert(s.datastream, s);
        }
    }
    let rules = RuleView::load(store)?;
    let text = |r: &entities::Rec, k: &str| r.props.get(k).and_then(JsonValue::as_str).unwrap_or_default().to_owned();
    let mut features = Vec::with_capacity(placed.len());
    for (thing, geometry) in placed {
        let Id::Int(tid) = thing.id else { continue };
        let mut readings = Vec::new();
        for d in by_thing.get(&thing.id).into_iter().flatten() {
            let Id::Int(did) = d.id else { continue };
            let l = latest.get(&did);
            let (state, alert) = state_of(d, did, l, &rules, now);
            let unit = d.props.get("unitOfMeasurement").and_then(|u| u.get("symbol")).and_then(JsonValue::as_str);
            readings.push(StationReading {
                datastream: did,
                name: text(d, "name"),
                unit: unit.unwrap_or_default().to_owned(),
                result: l.map(|s| s.value),
                phenomenon_time: l.map(|s| beijing(s.time)),
                state,
                alert,
            });
        }
        let state = readings.iter().map(|r| r.state).max().unwrap_or(SensorState::Unknown);
        let newest = by_thing
            .get(&thing.id)
            .into_iter()
            .flatten()
            .filter_map(|d| if let Id::Int(n) = d.id { latest.get(&n).map(|s| s.time) } else { None })
            .max();
        features.push(StationFeature {
            kind: "Feature".into(),
            id: tid,
            geometry,
            properties: StationProperties {
                thing: tid,
                name: text(&thing, "name"),
                state,
                state_label: state.label().into(),
                phenomenon_time: newest.map(beijing),
                datastreams: readings,
            },
        });
    }
    Ok(StationCollection {
        kind: "FeatureCollection".into(),
        number_returned: features.len(),
        features,
        time_stamp: beijing(now),
    })
}
