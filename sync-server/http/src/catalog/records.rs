//! OGC API – Records Part 1 over the catalog: `/collections/catalog` (a collection of
//! `itemType` `record`), its `items` (`q`, `bbox`, `datetime`, `type`, `externalIds`, `sortby`,
//! `filter`, `limit`/`offset` with `next`/`prev` links), one record and the queryables. Records
//! are GeoJSON features (`shikong_protocol::api::records`).
//!
//! `catalog` is a reserved collection id: the store refuses a layer of that name, and these
//! routes, being static, take precedence over the Features routes' `{collection_id}`.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::get;
use serde_json::json;
use shikong_model::{Crs, time};
use shikong_protocol::api::{self, records as wire};
use shikong_protocol::url::encode_component;
use shikong_query::Filter;

use super::search::{Order, Search, TextQuery};
use super::{CATALOG_ID, Entry, Kind, entries};
use crate::access::Caller;
use crate::ogc::{json_response, typed_response};
use crate::params::Params;
use crate::problem::{ApiError, ApiResult};
use crate::{AppState, blocking};

const GEOJSON: &str = "application/geo+json";
/// Records per page unless `limit` says otherwise.
const DEFAULT_LIMIT: usize = 10;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/collections/catalog", get(collection))
        .route("/collections/catalog/items", get(items).post(super::iso_import::import))
        .route("/collections/catalog/items/{record_id}", get(item))
        .route("/collections/catalog/queryables", get(queryables))
}

const TRS: &str = "http://www.opengis.net/def/uom/ISO-8601/0/Gregorian";

fn collection_links(base: &str) -> Vec<api::Link> {
    let l = api::Link::new;
    vec![
        l(format!("{base}/collections/catalog"), "self", "application/json", "the catalog"),
        l(format!("{base}/collections/catalog/items"), "items", GEOJSON, "records"),
        l(
            format!("{base}/collections/catalog/queryables"),
            "http://www.opengis.net/def/rel/ogc/1.0/queryables",
            "application/schema+json",
            "queryables",
        ),
        l(format!("{base}/csw?service=CSW&request=GetCapabilities"), "alternate", "application/xml", "CSW 2.0.2"),
    ]
}

const TITLE: &str = "目录 (catalog)";
const DESCRIPTION: &str =
    "平台的全部图层、瓦片集、样式、分析处理和注册服务的元数据目录 (OGC API – Records; CSW at /csw)";

/// The catalog as an entry of `GET /collections`.
pub(crate) fn listing(base: &str) -> api::Collection {
    api::Collection {
        id: CATALOG_ID.into(),
        title: TITLE.into(),
        description: DESCRIPTION.into(),
        item_type: "record".into(),
        extent: whole_extent(),
        crs: vec![Crs::Crs84.uri()],
        storage_crs: Crs::Crs84.uri(),
        geometry_type: "Geometry".into(),
        public: true,
        citizen_reports: false,
        links: collection_links(base),
        transactions: None,
    }
}

fn whole_extent() -> api::Extent {
    api::Extent {
        spatial: api::SpatialExtent { bbox: vec![[-180.0, -90.0, 180.0, 90.0]], crs: Crs::Crs84.uri() },
        temporal: api::TemporalExtent { interval: vec![[None, None]], trs: TRS.into() },
    }
}

async fn collection(State(state): State<AppState>, headers: HeaderMap, RawQuery(q): RawQuery) -> ApiResult<Response> {
    let p = Params::new(q.as_deref())?;
    p.only(&["f"])?;
    let base = state.base_url(&headers);
    let doc = wire::CatalogCollection {
        id: CATALOG_ID.into(),
        kind: "Catalog".into(),
        title: TITLE.into(),
        description: DESCRIPTION.into(),
        item_type: "record".into(),
        extent: whole_extent(),
        links: collection_links(&base),
    };
    typed_response(StatusCode::OK, "application/json", &doc)
}

async fn queryables(State(state): State<AppState>, headers: HeaderMap, RawQuery(q): RawQuery) -> ApiResult<Response> {
    let p = Params::new(q.as_deref())?;
    p.only(&["f"])?;
    let base = state.base_url(&headers);
    let mut props = serde_json::Map::new();
    props.insert("geometry".into(), json!({"title": "范围 (extent)", "format": "geometry-any"}));
    for f in &super::search::schema().fields {
        let (ty, format) = match f.ty {
            shikong_model::FieldType::Integer => ("integer", None),
            shikong_model::FieldType::DateTime => ("string", Some("date-time")),
            _ => ("string", None),
        };
        let mut s = json!({"title": f.title, "type": ty});
        if let Some(fmt) = format {
            s["format"] = json!(fmt);
        }
        if f.name == "type" {
            s["enum"] = json!(Kind::ALL.iter().map(|k| k.as_str()).collect::<Vec<_>>());
        }
        props.insert(f.name.clone(), s);
    }
    let doc = json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": format!("{base}/collections/catalog/queryables"),
        "type": "object",
        "title": TITLE,
        "properties": props,
        "additionalProperties": false,
    });
    Ok(json_response(StatusCode::OK, "application/schema+json", &doc))
}

/// An entry as a Records record.
pub(crate) fn record(base: &str, e: &Entry) -> wire::Record {
    let geometry = e.bbox.map(|b| {
        json!({"type": "Polygon", "coordinates": [[
            [b.min_x, b.min_y], [b.max_x, b.min_y], [b.max_x, b.max_y], [b.min_x, b.max_y], [b.min_x, b.min_y]
        ]]})
    });
    let interval = e.time.map(|(a, b)| [Some(time::beijing(a)), Some(time::beijing(b))]);
    let extent = (e.bbox.is_some() || interval.is_some()).then(|| api::Extent {
        spatial: api::SpatialExtent {
            bbox: e.bbox.map(|b| vec![[b.min_x, b.min_y, b.max_x, b.max_y]]).unwrap_or_default(),
            crs: Crs::Crs84.uri(),
        },
        temporal: api::TemporalExtent { interval: interval.clone().into_iter().collect(), trs: TRS.into() },
    });
    let mut links = vec![api::Link::new(
        format!("{base}/collections/catalog/items/{}", encode_component(&e.id)),
        "self",
        GEOJSON,
        "this record",
    )];
    links.push(api::Link::new(
        format!("{base}/csw?service=CSW&version=2.0.2&request=GetRecordById&id={}&outputSchema=http://www.isotc211.org/2005/gmd&elementSetName=full", encode_component(&e.id)),
        "alternate",
        "application/xml",
        "ISO 19139",
    ));
    links.push(api::Link::new(format!("{base}/collections/catalog"), "collection", "application/json", "the catalog"));
    links.extend(e.links.iter().cloned());
    wire::Record {
        id: e.id.clone(),
        kind: "Feature".into(),
        geometry,
        time: interval.map(|interval| wire::RecordTime { interval }),
        conforms_to: vec!["http://www.opengis.net/spec/ogcapi-records-1/1.0/req/record-core".into()],
        properties: wire::RecordProperties {
            kind: e.kind.as_str().into(),
            title: e.title.clone(),
            description: e.description.clone(),
            keywords: e.keywords.clone(),
            themes: if e.themes.is_empty() {
                Vec::new()
            } else {
                vec![wire::Theme {
                    concepts: e.themes.iter().map(|c| wire::Concept { id: c.clone() }).collect(),
                    scheme: "shikong:geometry".into(),
                }]
            },
            language: wire::Language { code: "zh-CN".into() },
            created: e.created.map(time::beijing),
            updated: e.updated.map(time::beijing),
            external_ids: e
                .external_ids
                .iter()
                .map(|(s, v)| wire::ExternalId { scheme: s.clone(), value: v.clone() })
                .collect(),
            extent,
            feature_count: e.count,
            fields: e.fields.clone(),
        },
        links,
    }
}

/// The search an items request asks for (parsed outside the store work; the CQL2 filter parses
/// under the query crate's bounds).
fn search_of(p: &Params) -> ApiResult<Search> {
    let text = p.get("q").map(|q| TextQuery::parse(q, "q")).transpose()?;
    let bbox = p.bbox()?;
    let datetime = p.datetime()?.map(|d| match d {
        shikong_model::time::ValidFilter::At(t) => (Some(t), Some(t)),
        shikong_model::time::ValidFilter::Range(a, b) => (a, b),
    });
    let mut types = Vec::new();
    for t in p.get("type").into_iter().flat_map(|v| v.split(',')).map(str::trim).filter(|t| !t.is_empty()) {
        types.push(Kind::parse(t).ok_or_else(|| {
            ApiError::bad_parameter(
                "type",
                format!(
                    "`{t}` is not a record type ({})",
                    Kind::ALL.iter().map(|k| k.as_str()).collect::<Vec<_>>().join(", ")
                ),
            )
        })?);
    }
    let external_ids = p
        .get("externalIds")
        .into_iter()
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
        .collect::<Vec<_>>();
    if external_ids.len() > super::search::MAX_TERMS {
        return Err(ApiError::bad_parameter("externalIds", format!("at most {} ids", super::search::MAX_TERMS)));
    }
    let filter = match p.get("filter") {
        None => None,
        Some(text) => {
            let lang = p.get("filter-lang").unwrap_or("cql2-text");
            let f = match lang {
                "cql2-text" => Filter::parse_text(text, super::search::schema()),
                "cql2-json" => Filter::parse_json(text, super::search::schema()),
                other => {
                    return Err(ApiError::bad_parameter(
                        "filter-lang",
                        format!("`{other}` is not cql2-text or cql2-json"),
                    ));
                }
            }
            .map_err(crate::problem::filter_error)?;
            Some(f)
        }
    };
    let order = match p.get("sortby") {
        Some(s) => Order::parse(s, "sortby")?,
        None => Order::Relevance,
    };
    Ok(Search { text, bbox, datetime, types, external_ids, filter, constraint: None, order })
}

/// The parameters an items request accepts.
const ITEM_PARAMS: [&str; 11] =
    ["f", "q", "bbox", "datetime", "type", "externalIds", "sortby", "filter", "filter-lang", "limit", "offset"];

async fn items(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> ApiResult<Response> {
    let p = Params::new(q.as_deref())?;
    p.only(&ITEM_PARAMS)?;
    if let Some(f) = p.get("f")
        && !matches!(f, "json" | "geojson")
    {
        return Err(ApiError::bad_parameter("f", format!("`{f}` is not json (records are GeoJSON)")));
    }
    let limit = p.limit(DEFAULT_LIMIT, state.config.max_limit)?;
    let offset = p.offset()?;
    let base = state.base_url(&headers);
    let st = state.clone();
    let b = base.clone();
    let keep: Vec<(String, String)> =
        ITEM_PARAMS[1..9].iter().filter_map(|k| p.get(k).map(|v| ((*k).to_owned(), v.to_owned()))).collect();
    let (matched, page) = blocking(move || {
        let search = search_of(&p)?;
        Ok(search.page(entries(&st, &caller, &b)?, offset, limit))
    })
    .await?;
    let url = |off: usize| {
        let mut q: Vec<String> = keep.iter().map(|(k, v)| format!("{k}={}", encode_component(v))).collect();
        q.push(format!("limit={limit}"));
        q.push(format!("offset={off}"));
        format!("{base}/collections/catalog/items?{}", q.join("&"))
    };
    let mut links = vec![
        api::Link::new(url(offset), "self", GEOJSON, "this page"),
        api::Link::new(format!("{base}/collections/catalog"), "collection", "application/json", "the catalog"),
    ];
    if offset + page.len() < matched {
        links.push(api::Link::new(url(offset + page.len()), "next", GEOJSON, "next page"));
    }
    if offset > 0 {
        links.push(api::Link::new(url(offset.saturating_sub(limit)), "prev", GEOJSON, "previous page"));
    }
    let doc = wire::RecordPage {
        kind: "FeatureCollection".into(),
        number_matched: matched,
        number_returned: page.len(),
        time_stamp: time::utc(jiff::Timestamp::now()),
        links,
        features: page.iter().map(|e| record(&base, e)).collect(),
    };
    typed_response(StatusCode::OK, GEOJSON, &doc)
}

/// The entry `id` if `caller` may see it (a layer it may not read is "no such record").
pub(crate) async fn find(state: &AppState, caller: Caller, base: &str, id: &str) -> ApiResult<Option<Arc<Entry>>> {
    let st = state.clone();
    let (b, id) = (base.to_owned(), id.to_owned());
    blocking(move || Ok(entries(&st, &caller, &b)?.into_iter().find(|e| e.id == id))).await
}

async fn item(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> ApiResult<Response> {
    let p = Params::new(q.as_deref())?;
    p.only(&["f"])?;
    let base = state.base_url(&headers);
    match find(&state, caller, &base, &id).await? {
        Some(e) => typed_response(StatusCode::OK, GEOJSON, &record(&base, &e)),
        None => Err(ApiError::not_found(format!("the catalog has no record `{id}` (or you may not read it)"))
            .with("record", id.as_str())),
    }
}

/// The catalog's routes in the OpenAPI document (`openapi.rs` adds them).
pub(crate) fn openapi_paths() -> Vec<(&'static str, serde_json::Value)> {
    let tag = "Catalog 目录";
    let q = |name: &str, desc: &str| json!({"name": name, "in": "query", "required": false, "description": desc, "schema": {"type": "string"}});
    let problem = json!({"description": "problem (RFC 9457)", "content": {"application/problem+json": {}}});
    let xml = json!({"description": "CSW answer, or an OWS ExceptionReport (400)", "content": {"application/xml": {}}});
    vec![
        (
            "/collections/catalog",
            json!({"get": {"summary": "The catalog (OGC API – Records): a collection of records", "tags": [tag],
            "responses": {"200": {"description": "the catalog collection", "content": {"application/json": {}}}}}}),
        ),
        (
            "/collections/catalog/items",
            json!({"get": {"summary": "Records of every layer, tile set, style, process and registered service the caller may read", "tags": [tag],
            "parameters": [
                q("q", "free text, comma-separated terms (any); Chinese is segmented, pinyin (full or initials) matches; ranked by relevance"),
                q("bbox", "minx,miny,maxx,maxy (CRS84)"),
                q("datetime", "instant or interval (open ends `..`): the time a record covers"),
                q("type", "dataset, tileset, style, process, service (comma-separated)"),
                q("externalIds", "identifiers (comma-separated): a layer, tile set, style or process name"),
                q("sortby", "`-updated,+title` (id, title, type, created, updated); default: relevance"),
                q("filter", "CQL2 on the catalog's queryables"),
                q("filter-lang", "cql2-text (default) or cql2-json"),
                json!({"name": "limit", "in": "query", "required": false, "schema": {"type": "integer", "minimum": 1, "default": DEFAULT_LIMIT}}),
                json!({"name": "offset", "in": "query", "required": false, "schema": {"type": "integer", "minimum": 0}}),
            ],
            "responses": {"200": {"description": "a page of records (GeoJSON)", "content": {GEOJSON: {}}}, "400": problem}}}),
        ),
        (
            "/collections/catalog/items/{recordId}",
            json!({"get": {"summary": "One record", "tags": [tag],
            "parameters": [{"name": "recordId", "in": "path", "required": true, "schema": {"type": "string"}}],
            "responses": {"200": {"description": "the record (GeoJSON)", "content": {GEOJSON: {}}}, "404": problem}}}),
        ),
        (
            "/collections/catalog/queryables",
            json!({"get": {"summary": "What a catalog `filter` may use", "tags": [tag],
            "responses": {"200": {"description": "JSON Schema", "content": {"application/schema+json": {}}}}}}),
        ),
        (
            "/csw",
            json!({
                "get": {"summary": "CSW 2.0.2 (KVP): GetCapabilities, DescribeRecord, GetRecords (CQL_TEXT or FILTER constraints), GetRecordById; outputSchema csw:Record or ISO 19139", "tags": [tag],
                    "parameters": [q("service", "CSW"), q("request", "the operation"), q("version", "2.0.2 or 3.0.0")],
                    "responses": {"200": xml.clone(), "400": xml.clone()}},
                "post": {"summary": "CSW 2.0.2 (XML): csw:GetRecords, csw:GetRecordById, csw:GetCapabilities, csw:DescribeRecord", "tags": [tag],
                    "requestBody": {"required": true, "content": {"application/xml": {}}},
                    "responses": {"200": xml.clone(), "400": xml}},
            }),
        ),
    ]
}
