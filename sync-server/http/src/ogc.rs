//! OGC API – Features: Part 1 Core (landing, conformance, collections, items, item; GeoJSON and
//! HTML), Part 2 CRS (`crs`, `bbox-crs`, `Content-Crs`), Part 3 Filtering (`filter`,
//! `filter-lang`, `filter-crs`, queryables), Part 4 Create/Replace/Update/Delete — each write a
//! new version attributed to the caller. Extensions: `as-of` on items and item (any past state),
//! and `/collections/{id}/changes?from=&to=` (the diff between two instants).

use axum::Router;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use serde_json::{Map, Value as Json, json};
use shikong_model::{Crs, EntityId, Geometry, Properties, ValidTime, Value, geojson, time};
use shikong_protocol::api;
use shikong_protocol::url::encode_component;
use shikong_query::Filter;
use shikong_store::{FeatureKey, Layer, NewFeature, Patch, Query, StoreTx, StoredFeature, TxMeta};

use super::access::{Action, Caller};
use super::body::Body;
use super::params::{Format, Params};
use super::problem::{ApiError, ApiResult};
use super::{AppState, blocking, coords, html, openapi};
use shikong_ingest::json as shapes;

const GEOJSON: &str = "application/geo+json";
const CONFORMANCE: &[&str] = &[
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/oas30",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/html",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson",
    "http://www.opengis.net/spec/ogcapi-features-2/1.0/conf/crs",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/filter",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/features-filter",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/queryables",
    "http://www.opengis.net/spec/cql2/1.0/conf/cql2-text",
    "http://www.opengis.net/spec/cql2/1.0/conf/cql2-json",
    "http://www.opengis.net/spec/cql2/1.0/conf/basic-cql2",
    "http://www.opengis.net/spec/cql2/1.0/conf/advanced-comparison-operators",
    "http://www.opengis.net/spec/cql2/1.0/conf/case-insensitive-comparison",
    "http://www.opengis.net/spec/cql2/1.0/conf/basic-spatial-functions",
    "http://www.opengis.net/spec/cql2/1.0/conf/basic-spatial-functions-plus",
    "http://www.opengis.net/spec/cql2/1.0/conf/spatial-functions",
    "http://www.opengis.net/spec/cql2/1.0/conf/temporal-functions",
    "http://www.opengis.net/spec/cql2/1.0/conf/arithmetic",
    "http://www.opengis.net/spec/ogcapi-features-4/1.0/conf/create-replace-delete",
    "http://www.opengis.net/spec/ogcapi-features-4/1.0/conf/update",
    "http://www.opengis.net/spec/ogcapi-features-4/1.0/conf/features",
];

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(landing))
        .route("/conformance", get(conformance))
        .route("/api", get(api))
        .route("/collections", get(collections))
        .route("/collections/{collection_id}", get(collection))
        .route("/collections/{collection_id}/queryables", get(queryables))
        .route("/collections/{collection_id}/items", get(items).post(create))
        .route("/collections/{collection_id}/items/{feature_id}", get(item).put(replace).patch(update).delete(delete))
        .route("/collections/{collection_id}/items/{feature_id}/history", get(item_history))
        .route("/collections/{collection_id}/changes", get(changes))
}

fn link(href: String, rel: &str, ty: &str, title: &str) -> Json {
    json!({"href": href, "rel": rel, "type": ty, "title": title})
}

fn json_response(status: StatusCode, content_type: &'static str, body: &Json) -> Response {
    (status, [(header::CONTENT_TYPE, content_type)], body.to_string()).into_response()
}

/// A typed answer (a [`shikong_protocol::api`] type).
fn typed_response<T: serde::Serialize>(
    status: StatusCode,
    content_type: &'static str,
    body: &T,
) -> ApiResult<Response> {
    let body = serde_json::to_string(body).map_err(ApiError::internal)?;
    Ok((status, [(header::CONTENT_TYPE, content_type)], body).into_response())
}

async fn landing(State(state): State<AppState>, headers: HeaderMap, RawQuery(q): RawQuery) -> ApiResult<Response> {
    let p = Params::new(q.as_deref())?;
    p.only(&["f"])?;
    let base = state.base_url(&headers);
    let doc = json!({
        "title": "shikong 时空",
        "description": "智慧城市时空大数据平台 — OGC API – Features over the spatio-temporal store (every version kept; add as-of= to read the past)",
        "links": [
            link(format!("{base}/"), "self", "application/json", "this document"),
            link(format!("{base}/?f=html"), "alternate", "text/html", "this document as HTML"),
            link(format!("{base}/api"), "service-desc", "application/vnd.oai.openapi+json;version=3.0", "the API definition"),
            link(format!("{base}/api?f=html"), "service-doc", "text/html", "the API documentation"),
            link(format!("{base}/conformance"), "conformance", "application/json", "OGC conformance classes implemented"),
            link(format!("{base}/collections"), "data", "application/json", "collections"),
        ],
    });
    Ok(match p.format(&headers)? {
        Format::Html => Html(html::landing(&doc)).into_response(),
        Format::Json => json_response(StatusCode::OK, "application/json", &doc),
    })
}

async fn conformance(headers: HeaderMap, RawQuery(q): RawQuery) -> ApiResult<Response> {
    let p = Params::new(q.as_deref())?;
    p.only(&["f"])?;
    let doc = json!({"conformsTo": CONFORMANCE});
    Ok(match p.format(&headers)? {
        Format::Html => Html(html::conformance(CONFORMANCE)).into_response(),
        Format::Json => json_response(StatusCode::OK, "application/json", &doc),
    })
}

async fn api(State(state): State<AppState>, headers: HeaderMap, RawQuery(q): RawQuery) -> ApiResult<Response> {
    let p = Params::new(q.as_deref())?;
    p.only(&["f"])?;
    let doc = openapi::document(&state.base_url(&headers), state.config.max_limit);
    Ok(match p.format(&headers)? {
        Format::Html => Html(html::api(&doc)).into_response(),
        Format::Json => json_response(StatusCode::OK, "application/vnd.oai.openapi+json;version=3.0", &doc),
    })
}

fn collection_doc(base: &str, l: &Layer) -> api::Collection {
    let id = l.name();
    let bbox = l.extent.map_or([-180.0, -90.0, 180.0, 90.0], |e| [e.min_x, e.min_y, e.max_x, e.max_y]);
    let link = api::Link::new;
    api::Collection {
        id: id.to_owned(),
        title: l.display_name().to_owned(),
        description: l.def.description.clone().unwrap_or_default(),
        item_type: "feature".into(),
        extent: api::Extent {
            spatial: api::SpatialExtent { bbox: vec![bbox], crs: Crs::Crs84.uri() },
            temporal: api::TemporalExtent {
                interval: vec![[None, None]],
                trs: "http://www.opengis.net/def/uom/ISO-8601/0/Gregorian".into(),
            },
        },
        crs: coords::offered().iter().map(|c| c.uri()).collect(),
        storage_crs: Crs::CGCS2000.uri(),
        geometry_type: l.def.geometry_kind.geojson_name().to_owned(),
        public: l.def.public,
        citizen_reports: l.def.citizen_reports,
        links: vec![
            link(format!("{base}/collections/{id}"), "self", "application/json", "this collection"),
            link(format!("{base}/collections/{id}?f=html"), "alternate", "text/html", "this collection as HTML"),
            link(format!("{base}/collections/{id}/items"), "items", GEOJSON, "features"),
            link(format!("{base}/collections/{id}/items?f=html"), "items", "text/html", "features as HTML"),
            link(
                format!("{base}/collections/{id}/queryables"),
                "http://www.opengis.net/def/rel/ogc/1.0/queryables",
                "application/schema+json",
                "queryables",
            ),
            link(
                format!("{base}/collections/{id}/changes"),
                "changes",
                "application/json",
                "changes between two instants (?from=&to=)",
            ),
        ],
    }
}

async fn collections(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> ApiResult<Response> {
    let p = Params::new(q.as_deref())?;
    p.only(&["f"])?;
    let base = state.base_url(&headers);
    let st = state.clone();
    let layers = blocking(move || {
        let all = st.store().layers()?;
        Ok(all.into_iter().filter(|l| caller.allowed(&st, l, Action::Read).is_ok()).collect::<Vec<_>>())
    })
    .await?;
    let doc = api::Collections {
        links: vec![
            api::Link::new(format!("{base}/collections"), "self", "application/json", "collections"),
            api::Link::new(format!("{base}/collections?f=html"), "alternate", "text/html", "collections as HTML"),
        ],
        collections: layers.iter().map(|l| collection_doc(&base, l)).collect(),
    };
    Ok(match p.format(&headers)? {
        Format::Html => Html(html::collections(&layers)).into_response(),
        Format::Json => typed_response(StatusCode::OK, "application/json", &doc)?,
    })
}

/// Loads a layer the caller may access for `action` (404 for a missing layer; 401/403 otherwise).
async fn layer_for(state: &AppState, caller: &Caller, id: String, action: Action) -> ApiResult<Layer> {
    let st = state.clone();
    let caller = caller.clone();
    blocking(move || {
        let l = st.store().layer(&id)?;
        caller.allowed(&st, &l, action)?;
        Ok(l)
    })
    .await
}

async fn collection(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> ApiResult<Response> {
    let p = Params::new(q.as_deref())?;
    p.only(&["f"])?;
    let l = layer_for(&state, &caller, id, Action::Read).await?;
    let doc = collection_doc(&state.base_url(&headers), &l);
    Ok(match p.format(&headers)? {
        Format::Html => {
            Html(html::collection(&l, &serde_json::to_value(&doc).map_err(ApiError::internal)?)).into_response()
        }
        Format::Json => typed_response(StatusCode::OK, "application/json", &doc)?,
    })
}

async fn queryables(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> ApiResult<Response> {
    let p = Params::new(q.as_deref())?;
    p.only(&["f"])?;
    let l = layer_for(&state, &caller, id, Action::Read).await?;
    let base = state.base_url(&headers);
    let mut props = Map::new();
    for qy in shikong_query::queryables(l.schema()) {
        let mut s = Map::new();
        s.insert("title".into(), Json::String(qy.title.clone().unwrap_or_else(|| qy.name.clone())));
        let (ty, format) = match qy.ty {
            shikong_query::QueryableType::Text => ("string", None),
            shikong_query::QueryableType::Integer => ("integer", None),
            shikong_query::QueryableType::Real => ("number", None),
            shikong_query::QueryableType::Bool => ("boolean", None),
            shikong_query::QueryableType::Date => ("string", Some("date")),
            shikong_query::QueryableType::DateTime => ("string", Some("date-time")),
            shikong_query::QueryableType::Geometry => {
                s.insert("format".into(), json!("geometry-any"));
                props.insert(qy.name.clone(), Json::Object(s));
                continue;
            }
            _ => ("string", None),
        };
        s.insert("type".into(), json!(ty));
        if let Some(f) = format {
            s.insert("format".into(), json!(f));
        }
        if !qy.codes.is_empty() {
            s.insert("enum".into(), Json::Array(qy.codes.iter().map(|c| json!(c.code)).collect()));
        }
        props.insert(qy.name.clone(), Json::Object(s));
    }
    let doc = json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": format!("{base}/collections/{}/queryables", l.name()),
        "type": "object",
        "title": l.display_name(),
        "properties": props,
        "additionalProperties": false,
    });
    Ok(match p.format(&headers)? {
        Format::Html => Html(html::queryables(&l, &doc)).into_response(),
        Format::Json => json_response(StatusCode::OK, "application/schema+json", &doc),
    })
}

/// A stored feature as GeoJSON in the requested CRS.
fn feature_json(l: &Layer, f: &StoredFeature, crs: Crs) -> ApiResult<Json> {
    let mut j = shapes::feature(l, f);
    if (crs != Crs::CGCS2000 && crs != Crs::Crs84 || coords::authority_yx(crs))
        && let Some(g) = &f.feature.geometry
    {
        j["geometry"] = geojson::to_json(&coords::to_output(g, crs, "crs")?);
    }
    Ok(j)
}

fn query_string(p: &[(&str, String)]) -> String {
    p.iter().map(|(k, v)| format!("{k}={}", encode_component(v))).collect::<Vec<_>>().join("&")
}

async fn items(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> ApiResult<Response> {
    let p = Params::new(q.as_deref())?;
    p.only(&[
        "f",
        "limit",
        "offset",
        "bbox",
        "bbox-crs",
        "datetime",
        "crs",
        "filter",
        "filter-lang",
        "filter-crs",
        "as-of",
    ])?;
    let format = p.format(&headers)?;
    let limit = p.limit(10, state.config.max_limit)?;
    let offset = p.offset()?;
    let crs = p.crs("crs")?.unwrap_or(Crs::Crs84);
    shikong_crs::check_supported(crs).map_err(|e| ApiError::bad_parameter("crs", e))?;
    let bbox_crs = p.crs("bbox-crs")?.unwrap_or(Crs::Crs84);
    let bbox = p.bbox()?.map(|b| coords::bbox_from_input(b, bbox_crs)).transpose()?;
    let valid = p.datetime()?;
    let as_of = p.instant("as-of")?;
    let filter_text = p.get("filter").map(str::to_owned);
    let lang = p.get("filter-lang").unwrap_or("cql2-text").to_owned();
    if !matches!(lang.as_str(), "cql2-text" | "cql2-json") {
        return Err(ApiError::bad_parameter("filter-lang", format!("`{lang}` is not cql2-text or cql2-json")));
    }
    let filter_crs = p.crs("filter-crs")?.unwrap_or(Crs::Crs84);
    let l = layer_for(&state, &caller, id.clone(), Action::Read).await?;
    let base = state.base_url(&headers);
    let st = state.clone();
    let l2 = l.clone();
    let (features, more) = blocking(move || {
        // Parsed here, off the async threads, within the query crate's bounds (length, nesting,
        // terms): a hostile filter is a 400 in microseconds and never holds up other requests.
        let filter = filter_text.map(|text| parse_filter(&text, &lang, filter_crs, &l2)).transpose()?;
        let mut out = Vec::with_capacity(limit.min(1024));
        let q = Query {
            bbox,
            filter: filter.as_ref(),
            valid,
            as_of,
            offset,
            limit: Some(limit),
            ..Query::layer(l2.name())
        };
        let stats = st.store().query(&q, &mut |f| {
            out.push(f);
            true
        })?;
        Ok((out, stats.more))
    })
    .await?;
    if format == Format::Html {
        return Ok(Html(html::items(&l, &features, offset, limit, more, q.as_deref().unwrap_or(""))).into_response());
    }
    let mut keep: Vec<(&str, String)> = Vec::new();
    for k in ["bbox", "bbox-crs", "datetime", "crs", "filter", "filter-lang", "filter-crs", "as-of"] {
        if let Some(v) = p.get(k) {
            keep.push((k, v.to_owned()));
        }
    }
    let page = |off: usize| {
        let mut q = keep.clone();
        q.push(("limit", limit.to_string()));
        q.push(("offset", off.to_string()));
        format!("{base}/collections/{id}/items?{}", query_string(&q))
    };
    let mut links = vec![
        link(page(offset), "self", GEOJSON, "this page"),
        link(format!("{}&f=html", page(offset)), "alternate", "text/html", "this page as HTML"),
        link(format!("{base}/collections/{id}"), "collection", "application/json", "the collection"),
    ];
    if more {
        links.push(link(page(offset + limit), "next", GEOJSON, "next page"));
    }
    if offset > 0 {
        links.push(link(page(offset.saturating_sub(limit)), "prev", GEOJSON, "previous page"));
    }
    // Written straight into bytes: at hundreds of requests per second, building a Value tree per
    // feature was the largest cost of this endpoint.
    let reproject = crs != Crs::CGCS2000 && crs != Crs::Crs84 || coords::authority_yx(crs);
    let mut body = Vec::with_capacity(features.len() * 600 + 2048);
    body.extend_from_slice(b"{\"type\":\"FeatureCollection\",\"numberReturned\":");
    body.extend_from_slice(features.len().to_string().as_bytes());
    body.extend_from_slice(b",\"timeStamp\":");
    serde_json::to_writer(&mut body, &time::utc(jiff::Timestamp::now())).map_err(ApiError::internal)?;
    body.extend_from_slice(b",\"links\":");
    serde_json::to_writer(&mut body, &links).map_err(ApiError::internal)?;
    body.extend_from_slice(b",\"features\":[");
    for (i, f) in features.iter().enumerate() {
        if i > 0 {
            body.push(b',');
        }
        let g = match (&f.feature.geometry, reproject) {
            (Some(g), true) => Some(coords::to_output(g, crs, "crs")?),
            _ => None,
        };
        shapes::write_feature(&mut body, &l, f, g.as_ref());
    }
    body.extend_from_slice(b"]}");
    let mut resp = (StatusCode::OK, [(header::CONTENT_TYPE, GEOJSON)], body).into_response();
    if let Ok(v) = HeaderValue::from_str(&format!("<{}>", crs.uri())) {
        resp.headers_mut().insert("content-crs", v);
    }
    Ok(resp)
}

/// The `filter` of an items request resolved against the layer, its geometries in the layer's
/// CRS.
fn parse_filter(text: &str, lang: &str, filter_crs: Crs, l: &Layer) -> ApiResult<Filter> {
    let f =
        if lang == "cql2-json" { Filter::parse_json(text, l.schema()) } else { Filter::parse_text(text, l.schema()) }
            .map_err(super::problem::filter_error)?;
    if filter_crs == Crs::Crs84 || filter_crs == Crs::CGCS2000 && !coords::authority_yx(filter_crs) {
        Ok(f)
    } else {
        f.try_map_geometries(|g| coords::from_input(g, filter_crs, "filter-crs"))
    }
}

/// `GET …/items/{featureId}/history`: every stored version of one feature (transaction time,
/// author, device, field-level changes) and the device edits behind them — what `shikong history`
/// prints, for apps (the mobile app's history view).
async fn item_history(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, fid)): Path<(String, String)>,
) -> ApiResult<Response> {
    let l = layer_for(&state, &caller, id.clone(), Action::Read).await?;
    let st = state.clone();
    let key = FeatureKey::parse(&fid);
    let doc = blocking(move || {
        let versions = st.store().history(l.name(), &key)?;
        let entity = versions.iter().find_map(|v| v.state.as_ref().map(|f| f.id));
        let edits = match entity {
            Some(e) => match shikong_sync_engine::sync::entity_doc(st.store(), &l, e)? {
                Some((doc, _, true)) => doc.edits(l.schema()).map_err(ApiError::internal)?,
                _ => Vec::new(),
            },
            None => Vec::new(),
        };
        Ok((!versions.is_empty()).then(|| shapes::history_doc(&l, &versions, &edits)))
    })
    .await?;
    match doc {
        Some(mut d) => {
            // Who edited is personal data: only office staff and admins see others' names.
            super::access::redact_history(&caller, &mut d);
            typed_response(StatusCode::OK, "application/json", &d)
        }
        None => Err(ApiError::not_found(format!("collection `{id}` has no feature `{fid}`"))),
    }
}

async fn item(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, fid)): Path<(String, String)>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> ApiResult<Response> {
    let p = Params::new(q.as_deref())?;
    p.only(&["f", "crs", "as-of"])?;
    let crs = p.crs("crs")?.unwrap_or(Crs::Crs84);
    shikong_crs::check_supported(crs).map_err(|e| ApiError::bad_parameter("crs", e))?;
    let as_of = p.instant("as-of")?;
    let l = layer_for(&state, &caller, id.clone(), Action::Read).await?;
    let st = state.clone();
    let (name, key) = (l.name().to_owned(), FeatureKey::parse(&fid));
    let found = blocking(move || Ok(st.store().get(&name, &key, as_of)?)).await?;
    let Some(f) = found else {
        return Err(ApiError::not_found(format!(
            "collection `{id}` has no feature `{fid}`{}",
            if as_of.is_some() { " at that instant" } else { "" }
        )));
    };
    if p.format(&headers)? == Format::Html {
        return Ok(Html(html::item(&l, &f)).into_response());
    }
    let base = state.base_url(&headers);
    let mut j = feature_json(&l, &f, crs)?;
    j["links"] = json!([
        link(format!("{base}/collections/{id}/items/{}", f.feature.id), "self", GEOJSON, "this feature"),
        link(format!("{base}/collections/{id}"), "collection", "application/json", "the collection"),
    ]);
    let mut resp = json_response(StatusCode::OK, GEOJSON, &j);
    resp.headers_mut().insert(header::ETAG, etag(&f));
    if let Ok(v) = HeaderValue::from_str(&format!("<{}>", crs.uri())) {
        resp.headers_mut().insert("content-crs", v);
    }
    Ok(resp)
}

fn etag(f: &StoredFeature) -> HeaderValue {
    HeaderValue::from_str(&format!("\"{}-{}\"", f.feature.id, f.version)).unwrap_or(HeaderValue::from_static("\"\""))
}

/// Changed entities per page of `/changes` unless `limit` says otherwise.
const CHANGES_PAGE: usize = 100;

/// `GET …/changes?from=&to=`: the diff between two instants, a page of changed entities at a
/// time (`limit`, default 100, at most the server's `max_limit`) in entity id order; a `next`
/// link (with `after=` the last entity and `to` pinned to the instant the first page used)
/// continues it, so a diff over all history never runs in one request.
async fn changes(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> ApiResult<Response> {
    let p = Params::new(q.as_deref())?;
    p.only(&["from", "to", "f", "limit", "after"])?;
    let from = p.instant("from")?.ok_or_else(|| ApiError::bad_parameter("from", "required (an instant, RFC 3339)"))?;
    let to = p.instant("to")?.unwrap_or_else(jiff::Timestamp::now);
    let limit = p.limit(CHANGES_PAGE, state.config.max_limit)?;
    let after = p
        .get("after")
        .map(|a| {
            a.parse::<EntityId>().map_err(|e| {
                ApiError::bad_parameter("after", format!("`{a}` is not an entity id (the `next` link sets it): {e}"))
            })
        })
        .transpose()?;
    let l = layer_for(&state, &caller, id.clone(), Action::Read).await?;
    let st = state.clone();
    let name = l.name().to_owned();
    let page = blocking(move || Ok(st.store().diff_page(&name, from, to, after, limit)?)).await?;
    let base = state.base_url(&headers);
    let url = |after: Option<EntityId>| {
        let mut q = vec![("from", from.to_string()), ("to", to.to_string()), ("limit", limit.to_string())];
        if let Some(a) = after {
            q.push(("after", a.to_string()));
        }
        format!("{base}/collections/{id}/changes?{}", query_string(&q))
    };
    let mut links = vec![link(url(after), "self", "application/json", "this page")];
    if let Some(next) = page.next {
        links.push(link(url(Some(next)), "next", "application/json", "next page"));
    }
    let mut doc = shapes::diff(&l, from, to, &page.diff);
    if let Json::Object(m) = &mut doc {
        m.insert("links".into(), Json::Array(links));
    }
    Ok(json_response(StatusCode::OK, "application/json", &doc))
}

// ---- Part 4: writes ----------------------------------------------------------------------

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
    tx.commit()?;
    st.committed();
    caller.audit_write(st, l.name(), what, &[id]);
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

async fn create(
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

async fn replace(
    State(state): State<AppState>,
    caller: Caller,
    Path(ids): Path<(String, String)>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
    Body(body): Body,
) -> ApiResult<Response> {
    modify(state, caller, ids, headers, q, body, WriteMode::Replace).await
}

async fn update(
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

async fn delete(
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
