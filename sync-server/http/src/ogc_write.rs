//! OGC API – Features Part 4 (Create/Replace/Update/Delete) over the store: each write a new
//! version attributed to the caller, with its audit record in the same transaction. Apart from
//! `ogc.rs` (the read side) so each stays a file of its own size.

use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value as Json};
use shikong_model::{Crs, EntityId, Geometry, Properties, ValidTime, Value, geojson};
use shikong_store::{FeatureKey, Layer, NewFeature, Patch, StoreTx, StoredFeature, TxMeta};

use super::access::{Action, Caller};
use super::body::Body;
use super::ogc::{GEOJSON, etag, layer_for, typed_response};
use super::params::Params;
use super::problem::{ApiError, ApiResult};
use super::{AppState, audit_outbox, blocking, coords};
use shikong_ingest::json as shapes;

/// The CRS of a request body: the `Content-Crs` header (Part 2), CRS84 by default.
fn content_crs(headers: &HeaderMap) -> ApiResult<Crs> {
    match headers.get("content-crs").and_then(|h| h.to_str().ok()) {
        None => Ok(Crs::Crs84),
        Some(v) => v.trim().trim_start_matches('<').trim_end_matches('>').parse::<Crs>().map_err(|e| {
            ApiError::new(StatusCode::BAD_REQUEST, "invalid-header", format!("header `Content-Crs`: {e}"))
                .with("header", "Content-Crs")
        }),
    }
}

/// The body as a JSON object, parsed with a cap on its number of values (a few megabytes of
/// `[0,0,…]` would otherwise be a tree of gigabytes). Run off the async threads.
fn body_json(body: &axum::body::Bytes) -> ApiResult<Map<String, Json>> {
    use shikong_formats::{BoundedJsonError, limits};
    let v = shikong_formats::parse_bounded(body, limits::MAX_JSON_VALUES, "the request body").map_err(|e| match e {
        BoundedJsonError::Exceeded(x) => ApiError::from(x),
        BoundedJsonError::Syntax(e) => ApiError::bad_body(format!("the body is not JSON: {e}")),
    })?;
    match v {
        Json::Object(m) => Ok(m),
        _ => Err(ApiError::bad_body("the body must be a GeoJSON Feature object")),
    }
}

/// What a GeoJSON body says about a feature.
struct Incoming {
    id: Option<EntityId>,
    code: Option<String>,
    geometry: Option<Option<Geometry>>,
    valid_from: Option<Option<jiff::Timestamp>>,
    valid_to: Option<Option<jiff::Timestamp>>,
    properties: Properties,
}

/// What a write body says, checked against the layer; a geometry over
/// [`shikong_formats::limits::MAX_BODY_VERTICES`] is a 413. CPU work (reprojection): run it off
/// the async threads.
fn parse_incoming(l: &Layer, m: &Map<String, Json>, crs: Crs, require_feature: bool) -> ApiResult<Incoming> {
    use shikong_formats::limits::{Exceeded, Limit};
    if require_feature && m.get("type").and_then(Json::as_str) != Some("Feature") {
        return Err(
            ApiError::bad_body("the body must be a GeoJSON Feature (\"type\": \"Feature\")").with("field", "type")
        );
    }
    let mut inc = Incoming {
        id: None,
        code: None,
        geometry: None,
        valid_from: None,
        valid_to: None,
        properties: Properties::new(),
    };
    if let Some(id) = m.get("id").and_then(Json::as_str) {
        inc.id = id.parse::<EntityId>().ok();
    }
    if let Some(g) = m.get("geometry") {
        inc.geometry = Some(match g {
            Json::Null => None,
            g => {
                let parsed = geojson::from_json(g)
                    .map_err(|e| ApiError::bad_body(format!("geometry: {e}")).with("field", "geometry"))?;
                let n = shikong_formats::limits::vertices(&parsed);
                let max = shikong_formats::limits::MAX_BODY_VERTICES;
                if n > max {
                    let x = Exceeded::actual(Limit::BodyVertices, "the geometry", n, max);
                    return Err(ApiError::from(x).with("field", "geometry"));
                }
                let invalid = |e: String| {
                    ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid-geometry", format!("geometry: {e}"))
                        .with("field", "geometry")
                };
                parsed.validate().map_err(|e| invalid(e.to_string()))?;
                Some(coords::from_input(&parsed, crs, "Content-Crs").map_err(|e| invalid(e.detail))?)
            }
        });
    }
    let props = match m.get("properties") {
        None | Some(Json::Null) => Map::new(),
        Some(Json::Object(p)) => p.clone(),
        Some(_) => return Err(ApiError::bad_body("`properties` must be an object").with("field", "properties")),
    };
    let when = |k: &str, v: &Json| -> ApiResult<Option<jiff::Timestamp>> {
        match v {
            Json::Null => Ok(None),
            Json::String(s) => shikong_model::parse_instant(s)
                .map(Some)
                .map_err(|e| ApiError::bad_body(format!("property `{k}`: {e}")).with("field", k)),
            other => Err(ApiError::bad_body(format!("property `{k}`: expected a date-time string, got {other}"))
                .with("field", k)),
        }
    };
    for (k, v) in &props {
        match k.as_str() {
            "code" => inc.code = v.as_str().map(str::to_owned),
            "entity_id" => {
                if let Some(s) = v.as_str() {
                    inc.id = Some(s.parse().map_err(|e| {
                        ApiError::bad_body(format!("property `entity_id`: {e}")).with("field", "entity_id")
                    })?);
                }
            }
            "valid_from" => inc.valid_from = Some(when(k, v)?),
            "valid_to" => inc.valid_to = Some(when(k, v)?),
            "version" | "tx_time" => {} // read-only; the store assigns them
            name => {
                let field = l.schema().field(name).ok_or_else(|| {
                    ApiError::new(
                        StatusCode::UNPROCESSABLE_ENTITY,
                        "invalid-feature",
                        format!("`{name}` is not a field of collection `{}`", l.name()),
                    )
                    .with("field", name)
                })?;
                let value = field.coerce_json(v).map_err(|e| {
                    ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid-feature", e.to_string())
                        .with("field", name)
                })?;
                inc.properties.insert(name.to_owned(), value);
            }
        }
    }
    Ok(inc)
}

fn check_if_match(headers: &HeaderMap, current: &StoredFeature) -> ApiResult<()> {
    if let Some(want) = headers.get(header::IF_MATCH).and_then(|h| h.to_str().ok()) {
        let have = etag(current);
        if want.trim() != "*"
            && want.split(',').all(|w| w.trim().trim_start_matches("W/") != have.to_str().unwrap_or(""))
        {
            return Err(ApiError::new(
                StatusCode::PRECONDITION_FAILED,
                "precondition-failed",
                format!(
                    "the feature changed: it is at version {} now (ETag {})",
                    current.version,
                    have.to_str().unwrap_or("")
                ),
            ));
        }
    }
    Ok(())
}

fn write_meta(caller: &Caller, what: &str) -> TxMeta {
    TxMeta {
        author: caller.author(),
        device: caller.device(),
        source: Some(format!("api {what}")),
        ..TxMeta::default()
    }
}

/// The one write path of the feature handlers: `op` runs in a store transaction attributed to
/// the caller; after the commit the tiles catch up, the write is audited, and the entity is read
/// back (`None` when `op` deleted it).
fn commit_write(
    st: &AppState,
    caller: &Caller,
    l: &Layer,
    what: &str,
    op: impl FnOnce(&mut dyn StoreTx) -> ApiResult<EntityId>,
) -> ApiResult<Option<StoredFeature>> {
    let mut tx = st.store().begin(write_meta(caller, what))?;
    let id = op(tx.as_mut())?;
    // The audit record commits with the write (`audit_outbox`) and is appended after it.
    audit_outbox::queue(tx.as_mut(), caller, caller.write_record(l.name(), what, &[id]))?;
    let info = tx.commit()?;
    st.committed();
    if info.tx.is_some() {
        audit_outbox::drain(st);
    } else {
        caller.audit_write(st, l.name(), what, &[id]); // nothing written, nothing to commit with
    }
    Ok(st.store().get(l.name(), &FeatureKey::Id(id), None)?)
}

/// A written feature read back, which must exist.
fn written(f: Option<StoredFeature>) -> ApiResult<StoredFeature> {
    f.ok_or_else(|| ApiError::internal("the written feature vanished"))
}

/// The written feature ([`api::Feature`], stored lon/lat) with its URL and ETag.
fn created_response(base: &str, l: &Layer, f: &StoredFeature, status: StatusCode) -> ApiResult<Response> {
    let mut resp = typed_response(status, GEOJSON, &shapes::feature_doc(l, f))?;
    let loc = format!("{base}/collections/{}/items/{}", l.name(), f.feature.id);
    if let Ok(v) = HeaderValue::from_str(&loc) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    resp.headers_mut().insert(header::ETAG, etag(f));
    Ok(resp)
}

pub(super) async fn create(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
    Body(body): Body,
) -> ApiResult<Response> {
    Params::new(q.as_deref())?.only(&[])?;
    let l = layer_for(&state, &caller, id, Action::Create).await?;
    let crs = content_crs(&headers)?;
    let l1 = l.clone();
    let inc = blocking(move || parse_incoming(&l1, &body_json(&body)?, crs, true)).await?;
    let st = state.clone();
    let l2 = l.clone();
    let c2 = caller.clone();
    let stored = blocking(move || {
        let nf = NewFeature {
            id: inc.id,
            code: inc.code,
            geometry: inc.geometry.flatten(),
            valid: ValidTime { from: inc.valid_from.flatten(), to: inc.valid_to.flatten() },
            properties: inc.properties,
            device_time: None,
        };
        written(commit_write(&st, &c2, &l2, "create", |tx| Ok(tx.insert(l2.name(), nf)?))?)
    })
    .await?;
    created_response(&state.base_url(&headers), &l, &stored, StatusCode::CREATED)
}

/// Loads the current version of a feature for a write, checking `If-Match`.
fn current_for_write(st: &AppState, l: &Layer, fid: &str, headers: &HeaderMap) -> ApiResult<StoredFeature> {
    let cur = st
        .store()
        .get(l.name(), &FeatureKey::parse(fid), None)?
        .ok_or_else(|| ApiError::not_found(format!("collection `{}` has no live feature `{fid}`", l.name())))?;
    check_if_match(headers, &cur)?;
    Ok(cur)
}

/// How a PUT or PATCH body changes the current version.
#[derive(Debug, Clone, Copy)]
enum WriteMode {
    /// PUT: the body is the whole feature; every field not in it becomes null.
    Replace,
    /// PATCH: a JSON merge patch (RFC 7396) of the feature; members present change, null clears.
    Merge,
}

pub(super) async fn replace(
    State(state): State<AppState>,
    caller: Caller,
    Path(ids): Path<(String, String)>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
    Body(body): Body,
) -> ApiResult<Response> {
    modify(state, caller, ids, headers, q, body, WriteMode::Replace).await
}

pub(super) async fn update(
    State(state): State<AppState>,
    caller: Caller,
    Path(ids): Path<(String, String)>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
    Body(body): Body,
) -> ApiResult<Response> {
    modify(state, caller, ids, headers, q, body, WriteMode::Merge).await
}

async fn modify(
    state: AppState,
    caller: Caller,
    (id, fid): (String, String),
    headers: HeaderMap,
    q: Option<String>,
    body: axum::body::Bytes,
    mode: WriteMode,
) -> ApiResult<Response> {
    Params::new(q.as_deref())?.only(&[])?;
    let l = layer_for(&state, &caller, id, Action::Edit).await?;
    let crs = content_crs(&headers)?;
    let l1 = l.clone();
    let whole = matches!(mode, WriteMode::Replace);
    let inc = blocking(move || parse_incoming(&l1, &body_json(&body)?, crs, whole)).await?;
    let st = state.clone();
    let (l2, c2, h2) = (l.clone(), caller.clone(), headers.clone());
    let stored = blocking(move || {
        let cur = current_for_write(&st, &l2, &fid, &h2)?;
        let (patch, what) = match mode {
            WriteMode::Replace => {
                let mut set: Properties = l2.schema().active().map(|f| (f.name.clone(), Value::Null)).collect();
                set.extend(inc.properties);
                let valid = Some(ValidTime { from: inc.valid_from.flatten(), to: inc.valid_to.flatten() });
                let geometry = Some(inc.geometry.flatten());
                (Patch { geometry, code: inc.code, valid, set, device_time: None }, "replace")
            }
            WriteMode::Merge => {
                let valid = match (inc.valid_from, inc.valid_to) {
                    (None, None) => None,
                    (a, b) => Some(ValidTime {
                        from: a.unwrap_or(cur.feature.valid.from),
                        to: b.unwrap_or(cur.feature.valid.to),
                    }),
                };
                let patch =
                    Patch { geometry: inc.geometry, code: inc.code, valid, set: inc.properties, device_time: None };
                (patch, "update")
            }
        };
        written(commit_write(&st, &c2, &l2, what, |tx| {
            tx.update(l2.name(), &FeatureKey::Id(cur.feature.id), patch)?;
            Ok(cur.feature.id)
        })?)
    })
    .await?;
    created_response(&state.base_url(&headers), &l, &stored, StatusCode::OK)
}

pub(super) async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, fid)): Path<(String, String)>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> ApiResult<Response> {
    Params::new(q.as_deref())?.only(&[])?;
    let l = layer_for(&state, &caller, id, Action::Edit).await?;
    let st = state.clone();
    blocking(move || {
        let cur = current_for_write(&st, &l, &fid, &headers)?;
        commit_write(&st, &caller, &l, "delete", |tx| {
            tx.delete(l.name(), &FeatureKey::Id(cur.feature.id))?;
            Ok(cur.feature.id)
        })?;
        Ok(())
    })
    .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
