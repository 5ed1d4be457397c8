//! OGC API – Features: Part 1 Core (landing, conformance, collections, items, item; GeoJSON and
//! HTML), Part 2 CRS (`crs`, `bbox-crs`, `Content-Crs`), Part 3 Filtering (`filter`,
//! `filter-lang`, `filter-crs`, queryables), Part 4 Create/Replace/Update/Delete — each write a
//! new version attributed to the caller. Extensions: `as-of` on items and item (any past state),
//! `intersects=COLLECTION/FEATURE` on items (features meeting another feature's geometry, e.g. a
//! district: a division's polygon is far larger than a CQL2 text filter may be), and
//! `/collections/{id}/changes?from=&to=` (the diff between two instants).

use axum::Router;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use serde_json::{Map, Value as Json, json};
use shikong_model::{Crs, EntityId, Geometry, geojson, time};
use shikong_protocol::api;
use shikong_protocol::url::encode_component;
use shikong_query::Filter;
use shikong_store::{FeatureKey, Layer, Query, StoredFeature, TxId};

use super::access::{Action, Caller};
use super::params::{Format, Params};
use super::problem::{ApiError, ApiResult};
use super::{AppState, blocking, coords, html, items_cursor, items_sort, ogc_write, openapi};
use shikong_ingest::json as shapes;

pub(super) const GEOJSON: &str = "application/geo+json";
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
    "http://www.opengis.net/spec/ogcapi-features-8/1.0/conf/sorting",
    "http://www.opengis.net/spec/ogcapi-processes-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-processes-1/1.0/conf/ogc-process-description",
    "http://www.opengis.net/spec/ogcapi-processes-1/1.0/conf/json",
    "http://www.opengis.net/spec/ogcapi-processes-1/1.0/conf/job-list",
    "http://www.opengis.net/spec/ogcapi-processes-1/1.0/conf/dismiss",
    "http://www.opengis.net/spec/ogcapi-records-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-records-1/1.0/conf/record-core",
    "http://www.opengis.net/spec/ogcapi-records-1/1.0/conf/record-collection",
    "http://www.opengis.net/spec/ogcapi-records-1/1.0/conf/record-core-query-parameters",
    "http://www.opengis.net/spec/ogcapi-records-1/1.0/conf/json",
    "http://www.opengis.net/spec/ogcapi-records-1/1.0/conf/sorting",
    "http://www.opengis.net/spec/ogcapi-records-1/1.0/conf/queryables",
    "http://www.opengis.net/spec/ogcapi-records-1/1.0/conf/filtering",
];

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(landing))
        .route("/conformance", get(conformance))
        .route("/api", get(api))
        .route("/collections", get(collections))
        .route("/collections/{collection_id}", get(collection))
        .route("/collections/{collection_id}/queryables", get(queryables))
        .route("/collections/{collection_id}/items", get(items).post(ogc_write::create))
        .route(
            "/collections/{collection_id}/items/{feature_id}",
            get(item).put(ogc_write::replace).patch(ogc_write::update).delete(ogc_write::delete),
        )
        .route("/collections/{collection_id}/items/{feature_id}/history", get(item_history))
        .route("/collections/{collection_id}/changes", get(changes))
}

pub(super) fn link(href: String, rel: &str, ty: &str, title: &str) -> Json {
    json!({"href": href, "rel": rel, "type": ty, "title": title})
}

pub(super) fn json_response(status: StatusCode, content_type: &'static str, body: &Json) -> Response {
    (status, [(header::CONTENT_TYPE, content_type)], body.to_string()).into_response()
}

/// A typed answer (a [`shikong_protocol::api`] type).
pub(super) fn typed_response<T: serde::Serialize>(
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
            link(format!("{base}/processes"), "http://www.opengis.net/def/rel/ogc/1.0/processes", "application/json", "processes (analysis engine)"),
            link(format!("{base}/jobs"), "http://www.opengis.net/def/rel/ogc/1.0/job-list", "application/json", "jobs"),
            link(format!("{base}/collections/catalog"), "http://www.opengis.net/def/rel/ogc/1.0/catalog", "application/json", "catalog (OGC API – Records)"),
            link(format!("{base}/csw?service=CSW&request=GetCapabilities"), "service", "application/xml", "catalog (CSW 2.0.2)"),
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

/// A layer's transaction-time range: from its creation to its newest write (what a time slider
/// spans; at any later instant the layer reads as it is now).
fn tx_extent(state: &AppState, l: &Layer) -> ApiResult<Option<api::TxExtent>> {
    let store = state.store();
    let Some(first) = store.tx_time(l.created_tx)? else { return Ok(None) };
    let last = match store.layer_last_tx(l.name())? {
        Some(tx) => store.tx_time(tx)?.unwrap_or(first),
        None => first,
    };
    Ok(Some(api::TxExtent { first: time::beijing(first), last: time::beijing(last.max(first)) }))
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
        transactions: None,
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
    let (layers, spans) = blocking(move || {
        let all = st.store().layers()?;
        let layers: Vec<Layer> = all.into_iter().filter(|l| caller.allowed(&st, l, Action::Read).is_ok()).collect();
        let spans = layers.iter().map(|l| tx_extent(&st, l)).collect::<ApiResult<Vec<_>>>()?;
        Ok((layers, spans))
    })
    .await?;
    let doc = api::Collections {
        links: vec![
            api::Link::new(format!("{base}/collections"), "self", "application/json", "collections"),
            api::Link::new(format!("{base}/collections?f=html"), "alternate", "text/html", "collections as HTML"),
        ],
        collections: layers
            .iter()
            .zip(spans)
            .map(|(l, transactions)| api::Collection { transactions, ..collection_doc(&base, l) })
            // The catalog (OGC API – Records) is a collection too, of records (`catalog/`).
            .chain(std::iter::once(super::catalog::records::listing(&base)))
            .collect(),
    };
    Ok(match p.format(&headers)? {
        Format::Html => Html(html::collections(&layers)).into_response(),
        Format::Json => typed_response(StatusCode::OK, "application/json", &doc)?,
    })
}

/// Loads a layer the caller may access for `action` (404 for a missing layer; 401/403 otherwise).
pub(super) async fn layer_for(state: &AppState, caller: &Caller, id: String, action: Action) -> ApiResult<Layer> {
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
    let st = state.clone();
    let l2 = l.clone();
    let transactions = blocking(move || tx_extent(&st, &l2)).await?;
    let doc = api::Collection { transactions, ..collection_doc(&state.base_url(&headers), &l) };
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
pub(super) fn feature_json(l: &Layer, f: &StoredFeature, crs: Crs) -> ApiResult<Json> {
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
        "cursor",
        "bbox",
        "bbox-crs",
        "datetime",
        "crs",
        "filter",
        "filter-lang",
        "filter-crs",
        "as-of",
        "sortby",
        "intersects",
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
    // Pages are in entity id order, or in `sortby` order (`items_sort`); `next` links carry a
    // keyset cursor (`items_cursor`).
    let selecting: Vec<(&str, String)> =
        ["bbox", "bbox-crs", "datetime", "filter", "filter-lang", "filter-crs", "as-of", "sortby", "intersects"]
            .into_iter()
            .filter_map(|k| p.get(k).map(|v| (k, v.to_owned())))
            .collect();
    let digest = items_cursor::query_digest(&id, &selecting);
    if p.get("cursor").is_some() && p.get("offset").is_some() {
        return Err(ApiError::bad_parameter("offset", "give `offset` or `cursor`, not both"));
    }
    let l = layer_for(&state, &caller, id.clone(), Action::Read).await?;
    let sort = p.get("sortby").map(|t| items_sort::parse(t, l.name(), l.schema())).transpose()?.flatten();
    if sort.is_some() && p.get("offset").is_some() {
        return Err(ApiError::bad_parameter(
            "offset",
            "with `sortby`, page by the `cursor` of each page's `next` link (an offset would sort the whole query again to skip)",
        ));
    }
    let (cursor, sorted_after) = match (&sort, p.get("cursor")) {
        (_, None) => (None, None),
        (None, Some(c)) => (Some(items_cursor::decode(c, digest)?), None),
        (Some(s), Some(c)) => {
            let (cur, key) = items_cursor::decode_sorted(c, digest)?;
            let key = s.decode_key(&key).ok_or_else(|| {
                ApiError::bad_parameter(
                    "cursor",
                    "the cursor's key does not fit this `sortby`; start again without `cursor`",
                )
            })?;
            (Some(cur), Some(items_sort::After { key, id: cur.after }))
        }
    };
    // Later pages read the division at the transaction their first page pinned, like the features.
    let area = match p.get("intersects") {
        Some(r) => Some(intersects_geometry(&state, &caller, r, as_of, cursor.map(|c| c.tx)).await?),
        None => None,
    };
    let max_sorted = state.config.max_sorted;
    let base = state.base_url(&headers);
    let st = state.clone();
    let l2 = l.clone();
    let sort2 = sort.clone();
    let (features, more, answered_at, sorted_last, matched) = blocking(move || {
        if let Some(c) = cursor
            && c.tx > st.store().latest_tx()?
        {
            return Err(ApiError::bad_parameter("cursor", "the cursor names a transaction this store has not made"));
        }
        // Parsed here, off the async threads, within the query crate's bounds (length, nesting,
        // terms): a hostile filter is a 400 in microseconds and never holds up other requests.
        let filter = filter_text.map(|text| parse_filter(&text, &lang, filter_crs, &l2)).transpose()?;
        if let Some(sort) = &sort2 {
            // Every match is read (bounded by `max_sorted`), only the page's top keys are kept.
            let mut top = items_sort::TopK::new(sort, sorted_after, limit, max_sorted);
            let q = Query {
                bbox,
                intersects: area.as_ref(),
                filter: filter.as_ref(),
                valid,
                as_of,
                at_tx: cursor.map(|c| c.tx),
                ..Query::layer(l2.name())
            };
            let stats = st.store().query(&q, &mut |f| top.offer(f))?;
            if let Some(e) = top.refusal() {
                return Err(e);
            }
            let matched = top.matched;
            let (out, more, last) = top.finish();
            return Ok((out, more, stats.tx, last, Some(matched)));
        }
        let mut out = Vec::with_capacity(limit.min(1024));
        let q = Query {
            bbox,
            intersects: area.as_ref(),
            filter: filter.as_ref(),
            valid,
            as_of,
            at_tx: cursor.map(|c| c.tx),
            by_id: true,
            after: cursor.map(|c| c.after),
            offset,
            limit: Some(limit),
            ..Query::layer(l2.name())
        };
        let stats = st.store().query(&q, &mut |f| {
            out.push(f);
            true
        })?;
        Ok((out, stats.more, stats.tx, None, None))
    })
    .await?;
    // The next page starts after this page's last feature, as of the transaction this one read.
    let next = match (more, features.last(), answered_at, &sorted_last) {
        (true, Some(_), Some(tx), Some(last)) => Some(items_cursor::encode_sorted(
            items_cursor::Cursor { tx, after: last.id },
            &items_sort::SortBy::encode_key(&last.key),
            digest,
        )),
        (true, Some(last), Some(tx), None) => {
            Some(items_cursor::encode(items_cursor::Cursor { tx, after: last.feature.id }, digest))
        }
        _ => None,
    };
    if format == Format::Html {
        let page = html::items(&l, &features, offset, limit, next.as_deref(), q.as_deref().unwrap_or(""));
        return Ok(Html(page).into_response());
    }
    let mut keep: Vec<(&str, String)> = Vec::new();
    for k in
        ["bbox", "bbox-crs", "datetime", "crs", "filter", "filter-lang", "filter-crs", "as-of", "sortby", "intersects"]
    {
        if let Some(v) = p.get(k) {
            keep.push((k, v.to_owned()));
        }
    }
    let page = |at: Result<usize, &str>| {
        let mut q = keep.clone();
        q.push(("limit", limit.to_string()));
        match at {
            Ok(off) => q.push(("offset", off.to_string())),
            Err(cursor) => q.push(("cursor", cursor.to_owned())),
        }
        format!("{base}/collections/{id}/items?{}", query_string(&q))
    };
    let this = match p.get("cursor") {
        Some(c) => page(Err(c)),
        None => page(Ok(offset)),
    };
    let mut links = vec![
        link(this.clone(), "self", GEOJSON, "this page"),
        link(format!("{this}&f=html"), "alternate", "text/html", "this page as HTML"),
        link(format!("{base}/collections/{id}"), "collection", "application/json", "the collection"),
    ];
    if let Some(next) = &next {
        links.push(link(page(Err(next)), "next", GEOJSON, "next page"));
    }
    if offset > 0 && cursor.is_none() {
        links.push(link(page(Ok(offset.saturating_sub(limit))), "prev", GEOJSON, "previous page"));
    }
    // Written straight into bytes: at hundreds of requests per second, building a Value tree per
    // feature was the largest cost of this endpoint.
    let reproject = crs != Crs::CGCS2000 && crs != Crs::Crs84 || coords::authority_yx(crs);
    let mut body = Vec::with_capacity(features.len() * 600 + 2048);
    body.extend_from_slice(b"{\"type\":\"FeatureCollection\",\"numberReturned\":");
    body.extend_from_slice(features.len().to_string().as_bytes());
    if let Some(n) = matched {
        // A sorted answer read every match anyway: counting them is free.
        body.extend_from_slice(b",\"numberMatched\":");
        body.extend_from_slice(n.to_string().as_bytes());
    }
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

/// Most vertices the geometry named by `intersects` may have (a detailed district boundary has
/// tens of thousands; each candidate feature is tested against all of them).
pub const MAX_INTERSECTS_VERTICES: usize = 200_000;

/// The geometry of the feature `intersects=COLLECTION/FEATURE` names, read at `as_of`, or as of
/// the transaction a later page is pinned to (`at_tx`; the earlier of the two). Every error names
/// the parameter; an unreadable collection keeps its 401/403/404.
async fn intersects_geometry(
    state: &AppState,
    caller: &Caller,
    reference: &str,
    as_of: Option<jiff::Timestamp>,
    at_tx: Option<TxId>,
) -> ApiResult<Geometry> {
    let bad = |detail: String| ApiError::bad_parameter("intersects", detail);
    let Some((coll, fid)) = reference.split_once('/').filter(|(c, f)| !c.is_empty() && !f.is_empty()) else {
        return Err(bad(format!(
            "`{reference}` is not COLLECTION/FEATURE (a collection id and a feature's code or id, e.g. `district/420111`)"
        )));
    };
    let name_it = |mut e: ApiError| {
        e.detail = format!("parameter `intersects`: {}", e.detail);
        e.with("parameter", "intersects").with("collection", coll)
    };
    let l = layer_for(state, caller, coll.to_owned(), Action::Read).await.map_err(name_it)?;
    let st = state.clone();
    let key = FeatureKey::parse(fid);
    let found = blocking(move || {
        // Transaction times strictly increase, so "as of the pinned transaction's time" is the
        // state right after it.
        let pinned = match at_tx {
            Some(tx) => st.store().tx_time(tx)?,
            None => None,
        };
        let at = match (as_of, pinned) {
            (Some(a), Some(p)) => Some(a.min(p)),
            (a, p) => a.or(p),
        };
        Ok(st.store().get(l.name(), &key, at)?)
    })
    .await
    .map_err(name_it)?;
    let Some(f) = found else {
        return Err(ApiError::not_found(format!(
            "parameter `intersects`: collection `{coll}` has no feature `{fid}`{}",
            if as_of.is_some() { " at that instant" } else { "" }
        ))
        .with("parameter", "intersects")
        .with("collection", coll));
    };
    let Some(g) = f.feature.geometry else {
        return Err(bad(format!("feature `{fid}` of `{coll}` has no geometry")));
    };
    let n = g.coord_count();
    if n > MAX_INTERSECTS_VERTICES {
        return Err(bad(format!(
            "feature `{fid}` of `{coll}` has {n} vertices, more than the {MAX_INTERSECTS_VERTICES} this server tests \
             against; use a simpler boundary layer"
        ))
        .with("max", MAX_INTERSECTS_VERTICES)
        .with("vertices", n));
    }
    Ok(g)
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

pub(super) fn etag(f: &StoredFeature) -> HeaderValue {
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
