//! Map services: vector tiles of layers and layer groups (XYZ, TileJSON, OGC API – Tiles), raster
//! tile sets as time series (XYZ, OGC API – Tiles, WMTS 1.0.0 KVP and RESTful), MapLibre style
//! documents (served and edited), offline packages, and the web map page.
//!
//! Paths (later checks and the apps use them as they are):
//!
//! - `/tiles` — every tile set the caller may read; `/tiles/{set}.json` — TileJSON 3.0;
//!   `/tiles/{set}/{z}/{x}/{y}.mvt` for a layer (`a,b` for a group; `.pbf` also accepted) and
//!   `.png`/`.jpg`/`.webp` for a raster set. `?as-of=` on any tile (and TileJSON, styles):
//!   vector tiles of the layers as they were then, raster tiles of the acquisition in effect.
//!   `?properties=a,b` keeps only those attributes.
//! - `/tileMatrixSets[/{id}]`, `/collections/{id}/tiles[/{tms}[/{z}/{row}/{col}]]` (vector) and
//!   `/collections/{id}/map/tiles[...]` (raster): OGC API – Tiles with WebMercatorQuad and
//!   CGCS2000Quad.
//! - `/wmts?SERVICE=WMTS&REQUEST=GetCapabilities|GetTile…`, `/wmts/1.0.0/WMTSCapabilities.xml`,
//!   `/wmts/1.0.0/{layer}/{style}/{Time}/{tms}/{z}/{row}/{col}.{ext}`: the raster sets, with
//!   acquisition dates as the `Time` dimension.
//! - `/styles`, `/styles/{id}` (GET; PUT and DELETE for office staff and admins).
//! - `/tiles/packages/estimate`, `/tiles/packages` (POST): offline MBTiles of an area.
//! - `/tiles/rasters/{set}?date=` (POST the file, DELETE; admins), `/tiles/cache/rebuild` (POST).
//! - `/map`: the web map page (MapLibre GL JS bundled from npm, embedded in the binary).
//!
//! Tiles of a layer follow the layer's read permission; public layers render for anonymous
//! callers. Raster sets are basemaps: readable by everyone.

use std::pin::Pin;

use axum::Router;
use axum::body::{Body, HttpBody};
use axum::extract::{DefaultBodyLimit, Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use jiff::Timestamp;
use serde_json::{Map, Value as Json, json};
use shikong_auth::{LayerAccess, Role, decide};
use shikong_model::{Bbox, FieldType, Geometry, GeometryKind, geojson};
use shikong_store::{FeatureKey, Layer, StoreError};
use shikong_tiles::{MAX_ZOOM, TileError, TileMatrixSet};
use shikong_tileserver::package::{PackageContent, PackageSpec};
use shikong_tileserver::raster::{RasterImport, RasterSet};
use shikong_tileserver::{TileServerError, VectorRequest};

use super::access::{Action, Caller};
use super::params::Params;
use super::problem::{ApiError, ApiResult};
use super::{AppState, blocking};

const MVT: &str = "application/vnd.mapbox-vector-tile";
const STYLE_JSON: &str = "application/vnd.mapbox.style+json";
const TILEJSON: &str = "application/json";

static MAP_JS: &[u8] = include_bytes!("../../web/dist/map.js");
static MAP_CSS: &[u8] = include_bytes!("../../web/dist/map.css");

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/tiles", get(tilesets))
        .route("/tiles/{set}", get(tilejson))
        .route("/tiles/{set}/{z}/{x}/{y}", get(xyz))
        .route("/tileMatrixSets", get(matrix_sets))
        .route("/tileMatrixSets/{tms}", get(matrix_set))
        .route("/collections/{collection_id}/tiles", get(vector_tilesets))
        .route("/collections/{collection_id}/tiles/{tms}", get(vector_tileset))
        .route("/collections/{collection_id}/tiles/{tms}/{z}/{row}/{col}", get(vector_ogc_tile))
        .route("/collections/{collection_id}/map/tiles", get(map_tilesets))
        .route("/collections/{collection_id}/map/tiles/{tms}", get(map_tileset))
        .route("/collections/{collection_id}/map/tiles/{tms}/{z}/{row}/{col}", get(map_ogc_tile))
        .route("/wmts", get(wmts_kvp))
        .route("/wmts/1.0.0/WMTSCapabilities.xml", get(wmts_capabilities))
        .route("/wmts/1.0.0/{layer}/{style}/{time}/{tms}/{z}/{row}/{col}", get(wmts_rest))
        .route("/styles", get(styles))
        .route("/styles/{id}", get(style).put(put_style).delete(delete_style))
        .route("/map", get(map_page))
        .route("/map/assets/{file}", get(map_asset))
        .route("/tiles/packages/estimate", post(package_estimate))
        .route("/tiles/packages", post(package_create))
        .route("/tiles/rasters/{set}", post(raster_import).delete(raster_delete).layer(DefaultBodyLimit::disable()))
        .route("/tiles/cache/rebuild", post(cache_rebuild))
}

impl From<TileServerError> for ApiError {
    fn from(e: TileServerError) -> Self {
        match e {
            TileServerError::Store(s) => ApiError::from(s),
            TileServerError::Tile(t) => match t {
                TileError::Address { .. } => ApiError::bad_parameter("tile", t),
                TileError::Decode(_) => ApiError::internal(t),
                other => ApiError::not_found(other.to_string()),
            },
            TileServerError::NoSuchSet(_) | TileServerError::NoSliceAt { .. } => ApiError::not_found(e.to_string()),
            TileServerError::NoSuchField { .. } => ApiError::bad_parameter("properties", e),
            TileServerError::Import { .. } | TileServerError::Style { .. } => {
                let text = e.to_string();
                if text.contains("changed by someone else") {
                    ApiError::new(StatusCode::PRECONDITION_FAILED, "conflict", text)
                } else {
                    ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid", text)
                }
            }
            TileServerError::Invalid(m) => ApiError::new(StatusCode::BAD_REQUEST, "invalid-parameter", m),
            other => ApiError::internal(other),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Resolving sets

/// What a set name names.
#[derive(Debug, Clone)]
enum TileSet {
    Vector(Vec<Layer>),
    Raster(RasterSet),
}

/// Resolves `a` or `a,b,…` to readable layers, or one name to a raster set.
fn resolve(state: &AppState, caller: &Caller, set: &str) -> ApiResult<TileSet> {
    let names: Vec<&str> = set.split(',').map(str::trim).filter(|s| !s.is_empty()).collect();
    if names.is_empty() {
        return Err(ApiError::not_found("empty tile set name"));
    }
    let mut layers = Vec::with_capacity(names.len());
    for name in &names {
        match state.tiles.layer(state.store(), name) {
            Ok(l) => {
                if !public_read(caller, &l) {
                    caller.allowed(state, &l, Action::Read)?;
                }
                layers.push(l);
            }
            Err(TileServerError::Store(StoreError::NoSuchLayer(_))) if names.len() == 1 => {
                return match state.tiles.raster_set(name) {
                    Ok(r) => Ok(TileSet::Raster(r)),
                    Err(TileServerError::NoSuchSet(_)) => Err(ApiError::not_found(format!(
                        "no tile set named `{name}` (a layer name, a comma-separated group of layers, or a raster set; see /tiles)"
                    ))),
                    Err(e) => Err(e.into()),
                };
            }
            Err(TileServerError::Store(StoreError::NoSuchLayer(_))) => {
                return Err(ApiError::not_found(format!("tile set `{set}`: no layer named `{name}`")));
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(TileSet::Vector(layers))
}

/// Whether `caller` may read `layer` because it is public. Reading a public layer needs no
/// stored rules (shikong-auth's precedence, rules 1 and 3), so `decide` with no rules is the exact
/// answer without a query; other layers go through [`Caller::allowed`].
fn public_read(caller: &Caller, layer: &Layer) -> bool {
    let access =
        LayerAccess { name: layer.name(), public: layer.def.public, citizen_reports: layer.def.citizen_reports };
    layer.def.public && decide(caller.principal.as_ref(), &access, Action::Read, &[]).is_allowed()
}

fn vector_only(set: TileSet, name: &str) -> ApiResult<Vec<Layer>> {
    match set {
        TileSet::Vector(l) => Ok(l),
        TileSet::Raster(_) => Err(ApiError::not_found(format!(
            "`{name}` is a raster set: its tiles are under /collections/{name}/map/tiles"
        ))),
    }
}

fn raster_only(set: TileSet, name: &str) -> ApiResult<RasterSet> {
    match set {
        TileSet::Raster(r) => Ok(r),
        TileSet::Vector(_) => {
            Err(ApiError::not_found(format!("`{name}` is a vector set: its tiles are under /collections/{name}/tiles")))
        }
    }
}

fn parse_num<T: std::str::FromStr>(what: &str, v: &str) -> ApiResult<T> {
    v.parse().map_err(|_| ApiError::bad_parameter(what, format!("`{v}` is not a non-negative integer")))
}

fn properties(p: &Params) -> Option<Vec<String>> {
    p.get("properties").map(|v| v.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect())
}

// ---------------------------------------------------------------------------------------------
// Tiles

fn accepts_gzip(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.split(',').any(|e| e.trim().starts_with("gzip")))
}

/// A vector tile response: gzip as stored when the client accepts it, 204 when empty.
fn vector_response(tile: shikong_tileserver::VectorTile, headers: &HeaderMap) -> ApiResult<Response> {
    let mut resp = if tile.gzip.is_empty() {
        StatusCode::NO_CONTENT.into_response()
    } else if accepts_gzip(headers) {
        let mut r = (StatusCode::OK, axum::body::Bytes::from_owner(tile.gzip)).into_response();
        r.headers_mut().insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        r
    } else {
        (StatusCode::OK, shikong_tileserver::gunzip(&tile.gzip)?).into_response()
    };
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(MVT));
    h.insert("x-cache", HeaderValue::from_static(tile.cache.as_str()));
    h.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    if let Some(tx) = tile.tx
        && let Ok(v) = HeaderValue::from_str(&tx.0.to_string())
    {
        h.insert("x-as-of-transaction", v);
    }
    Ok(resp)
}

fn image_response(data: Option<Vec<u8>>, set: &RasterSet, date: Option<&str>) -> Response {
    let mut resp = match data {
        None => StatusCode::NO_CONTENT.into_response(),
        Some(d) => {
            let mime = shikong_tileserver::raster::ImageFormat::sniff(&d).unwrap_or(set.format()).mime();
            ([(header::CONTENT_TYPE, mime)], d).into_response()
        }
    };
    if let Some(d) = date
        && let Ok(v) = HeaderValue::from_str(d)
    {
        resp.headers_mut().insert("x-acquisition-date", v);
    }
    resp
}

async fn vector_tile(
    state: AppState,
    caller: Caller,
    set: String,
    tms: TileMatrixSet,
    (z, x, y): (u8, u32, u32),
    p: Params,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let as_of = p.instant("as-of")?;
    let fields = properties(&p);
    // Fast path: a public layer's current tile already in memory is answered on this thread.
    if as_of.is_none()
        && let Ok(tile) = tms.tile(z, x, y)
        && let Some(t) = state.tiles.memory_tile(&set, tms, tile, fields.as_deref(), |l| public_read(&caller, l))
    {
        return vector_response(t, &headers);
    }
    let tile = blocking(move || {
        let layers = vector_only(resolve(&state, &caller, &set)?, &set)?;
        let tile = tms.tile(z, x, y).map_err(TileServerError::from)?;
        let req = VectorRequest { layers: &layers, tms, tile, as_of, fields: fields.as_deref() };
        Ok(state.tiles.vector_tile(state.store(), &req)?)
    })
    .await?;
    vector_response(tile, &headers)
}

async fn raster_tile(
    state: AppState,
    caller: Caller,
    set: String,
    tms: Option<TileMatrixSet>,
    (z, x, y): (u8, u32, u32),
    when: RasterWhen,
) -> ApiResult<Response> {
    blocking(move || {
        let r = raster_only(resolve(&state, &caller, &set)?, &set)?;
        if let Some(t) = tms
            && t != r.tms()
        {
            return Err(ApiError::not_found(format!("raster set `{set}` is tiled in {}, not {t}", r.tms())));
        }
        let tile = r.tms().tile(z, x, y).map_err(TileServerError::from)?;
        let slice = match &when {
            RasterWhen::At(t) => r.slice_at(*t),
            RasterWhen::Named(d) => Some(r.slice_named(d).ok_or_else(|| {
                ApiError::not_found(format!(
                    "raster set `{set}` has no acquisition `{d}` (dates: {})",
                    r.slices.iter().map(|s| s.date.as_str()).collect::<Vec<_>>().join(", ")
                ))
            })?),
        };
        let Some(slice) = slice else { return Ok(image_response(None, &r, None)) };
        let data = state.tiles.raster_tile(slice, tile)?;
        Ok(image_response(data, &r, Some(&slice.date)))
    })
    .await
}

#[derive(Debug)]
enum RasterWhen {
    At(Option<Timestamp>),
    Named(String),
}

async fn xyz(
    State(state): State<AppState>,
    caller: Caller,
    Path((set, z, x, y)): Path<(String, String, String, String)>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> ApiResult<Response> {
    let (y, ext) = shikong_tiles::split_extension(&y).map_err(|e| ApiError::not_found(e.to_string()))?;
    let zxy = (parse_num("z", &z)?, parse_num("x", &x)?, y);
    let p = Params::new(q.as_deref())?;
    match ext {
        "mvt" | "pbf" => {
            p.only(&["as-of", "properties"])?;
            vector_tile(state, caller, set, TileMatrixSet::WebMercatorQuad, zxy, p, headers).await
        }
        "png" | "jpg" | "jpeg" | "webp" => {
            p.only(&["as-of"])?;
            let when = RasterWhen::At(p.instant("as-of")?);
            raster_tile(state, caller, set, None, zxy, when).await
        }
        other => Err(ApiError::not_found(format!("unknown tile format `.{other}` (use .mvt, .png, .jpg or .webp)"))),
    }
}

async fn vector_ogc_tile(
    State(state): State<AppState>,
    caller: Caller,
    Path((set, tms, z, row, col)): Path<(String, String, String, String, String)>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> ApiResult<Response> {
    let tms = TileMatrixSet::from_id(&tms).map_err(|e| ApiError::not_found(e.to_string()))?;
    let p = Params::new(q.as_deref())?;
    p.only(&["as-of", "properties", "f"])?;
    if let Some(f) = p.get("f")
        && f != "mvt"
    {
        return Err(ApiError::bad_parameter("f", format!("`{f}`: vector tiles are offered as mvt")));
    }
    let zxy = (parse_num("tileMatrix", &z)?, parse_num("tileCol", &col)?, parse_num("tileRow", &row)?);
    vector_tile(state, caller, set, tms, zxy, p, headers).await
}

async fn map_ogc_tile(
    State(state): State<AppState>,
    caller: Caller,
    Path((set, tms, z, row, col)): Path<(String, String, String, String, String)>,
    RawQuery(q): RawQuery,
) -> ApiResult<Response> {
    let tms = TileMatrixSet::from_id(&tms).map_err(|e| ApiError::not_found(e.to_string()))?;
    let p = Params::new(q.as_deref())?;
    p.only(&["as-of", "f", "datetime"])?;
    let zxy = (parse_num("tileMatrix", &z)?, parse_num("tileCol", &col)?, parse_num("tileRow", &row)?);
    let when = match p.get("datetime") {
        Some(d) => RasterWhen::Named(d.to_owned()),
        None => RasterWhen::At(p.instant("as-of")?),
    };
    raster_tile(state, caller, set, Some(tms), zxy, when).await
}

// ---------------------------------------------------------------------------------------------
// Metadata documents

fn field_type(t: FieldType) -> &'static str {
    match t {
        FieldType::Integer | FieldType::Real => "Number",
        FieldType::Bool => "Boolean",
        _ => "String",
    }
}

fn with_as_of(url: String, as_of: Option<&str>) -> String {
    match as_of {
        Some(t) => format!("{url}?as-of={}", urlencode(t)),
        None => url,
    }
}

fn urlencode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b',' => out.push(b as char),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

fn bounds_json(b: Option<Bbox>) -> Json {
    let b = b.unwrap_or(Bbox { min_x: -180.0, min_y: -85.051_128, max_x: 180.0, max_y: 85.051_128 });
    json!([b.min_x, b.min_y, b.max_x, b.max_y])
}

fn center_json(b: Option<Bbox>, zoom: u8) -> Json {
    match b {
        Some(b) => json!([(b.min_x + b.max_x) / 2.0, (b.min_y + b.max_y) / 2.0, zoom]),
        None => json!([114.3, 30.55, zoom]),
    }
}

fn layers_extent(layers: &[Layer]) -> Option<Bbox> {
    layers.iter().filter_map(|l| l.extent).reduce(|a, b| a.union(&b))
}

fn tilejson_doc(base: &str, name: &str, set: &TileSet, as_of: Option<&str>) -> Json {
    match set {
        TileSet::Vector(layers) => {
            let extent = layers_extent(layers);
            let vector_layers: Vec<Json> = layers
                .iter()
                .map(|l| {
                    let mut fields = Map::new();
                    fields.insert("id".into(), json!("String"));
                    fields.insert("code".into(), json!("String"));
                    for f in &l.schema().fields {
                        fields.insert(f.name.clone(), json!(field_type(f.ty)));
                    }
                    json!({"id": l.name(), "description": l.display_name(), "minzoom": 0, "maxzoom": MAX_ZOOM, "fields": fields})
                })
                .collect();
            let title = layers.iter().map(Layer::display_name).collect::<Vec<_>>().join("、");
            json!({
                "tilejson": "3.0.0",
                "name": title,
                "description": format!("{title}（矢量瓦片{}）", as_of.map_or(String::new(), |t| format!("，截至 {t}"))),
                "version": "1.0.0",
                "scheme": "xyz",
                "format": "pbf",
                "tiles": [with_as_of(format!("{base}/tiles/{name}/{{z}}/{{x}}/{{y}}.mvt"), as_of)],
                "minzoom": 0,
                "maxzoom": MAX_ZOOM,
                "bounds": bounds_json(extent),
                "center": center_json(extent, 12),
                "vector_layers": vector_layers,
            })
        }
        TileSet::Raster(r) => {
            let b = r.bounds();
            json!({
                "tilejson": "3.0.0",
                "name": r.title(),
                "description": format!("{}（{}，{} 期）", r.title(), r.kind(), r.slices.len()),
                "version": "1.0.0",
                "scheme": "xyz",
                "format": r.format().ext(),
                "tileSize": 256,
                "tiles": [with_as_of(format!("{base}/tiles/{name}/{{z}}/{{x}}/{{y}}.{}", r.format().ext()), as_of)],
                "minzoom": r.minzoom(),
                "maxzoom": r.maxzoom(),
                "bounds": bounds_json(Some(b)),
                "center": center_json(Some(b), r.minzoom().max(10).min(r.maxzoom())),
                "shikong:tileMatrixSet": r.tms().id(),
                "shikong:dates": r.slices.iter().map(|s| s.date.clone()).collect::<Vec<_>>(),
            })
        }
    }
}

async fn tilejson(
    State(state): State<AppState>,
    caller: Caller,
    Path(set): Path<String>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> ApiResult<Response> {
    let Some(name) = set.strip_suffix(".json").map(str::to_owned) else {
        return Err(ApiError::not_found(format!("no such resource: TileJSON is at /tiles/{set}.json")));
    };
    let p = Params::new(q.as_deref())?;
    p.only(&["as-of"])?;
    p.instant("as-of")?;
    let as_of = p.get("as-of").map(str::to_owned);
    let base = state.base_url(&headers);
    let st = state.clone();
    let n = name.clone();
    let set = blocking(move || resolve(&st, &caller, &n)).await?;
    Ok(json_response(TILEJSON, &tilejson_doc(&base, &name, &set, as_of.as_deref())))
}

fn json_response(ty: &'static str, doc: &Json) -> Response {
    ([(header::CONTENT_TYPE, ty)], doc.to_string()).into_response()
}

async fn tilesets(State(state): State<AppState>, caller: Caller, headers: HeaderMap) -> ApiResult<Response> {
    let base = state.base_url(&headers);
    let st = state.clone();
    let (layers, rasters) = blocking(move || {
        let layers: Vec<Layer> =
            st.store().layers()?.into_iter().filter(|l| caller.allowed(&st, l, Action::Read).is_ok()).collect();
        Ok((layers, st.tiles.raster_sets()?))
    })
    .await?;
    let mut sets: Vec<Json> = layers
        .iter()
        .map(|l| {
            json!({
                "id": l.name(), "title": l.display_name(), "dataType": "vector",
                "geometryType": l.def.geometry_kind.geojson_name(),
                "links": [
                    {"href": format!("{base}/tiles/{}.json", l.name()), "rel": "describedby", "type": TILEJSON, "title": "TileJSON"},
                    {"href": format!("{base}/tiles/{}/{{z}}/{{x}}/{{y}}.mvt", l.name()), "rel": "item", "type": MVT, "templated": true},
                    {"href": format!("{base}/collections/{}/tiles", l.name()), "rel": "http://www.opengis.net/def/rel/ogc/1.0/tilesets-vector", "type": "application/json"},
                    {"href": format!("{base}/styles/{}", l.name()), "rel": "stylesheet", "type": STYLE_JSON},
                ],
            })
        })
        .collect();
    for r in &rasters {
        let ext = r.format().ext();
        sets.push(json!({
            "id": r.name, "title": r.title(), "dataType": "map", "kind": r.kind(),
            "tileMatrixSet": r.tms().id(),
            "dates": r.slices.iter().map(|s| s.date.clone()).collect::<Vec<_>>(),
            "links": [
                {"href": format!("{base}/tiles/{}.json", r.name), "rel": "describedby", "type": TILEJSON, "title": "TileJSON"},
                {"href": format!("{base}/tiles/{}/{{z}}/{{x}}/{{y}}.{ext}", r.name), "rel": "item", "type": r.format().mime(), "templated": true},
                {"href": format!("{base}/collections/{}/map/tiles", r.name), "rel": "http://www.opengis.net/def/rel/ogc/1.0/tilesets-map", "type": "application/json"},
                {"href": format!("{base}/wmts/1.0.0/WMTSCapabilities.xml"), "rel": "service", "type": "application/xml", "title": "WMTS"},
            ],
        }));
    }
    Ok(json_response("application/json", &json!({ "tilesets": sets })))
}

fn tms_doc(tms: TileMatrixSet, maxzoom: u8) -> Json {
    let (ox, oy) = tms.origin();
    let (point, axes, uri) = match tms {
        TileMatrixSet::WebMercatorQuad => (
            json!([ox, oy]),
            json!(["E", "N"]),
            Some("http://www.opengis.net/def/tilematrixset/OGC/1.0/WebMercatorQuad"),
        ),
        // EPSG:4490 is latitude first.
        TileMatrixSet::Cgcs2000Quad => (json!([oy, ox]), json!(["Lat", "Lon"]), None),
    };
    let matrices: Vec<Json> = (0..=maxzoom)
        .map(|z| {
            let (w, h) = tms.matrix_size(z);
            json!({
                "id": z.to_string(),
                "scaleDenominator": tms.scale_denominator(z),
                "cellSize": tms.cell_size(z),
                "cornerOfOrigin": "topLeft",
                "pointOfOrigin": point,
                "tileWidth": 256, "tileHeight": 256,
                "matrixWidth": w, "matrixHeight": h,
            })
        })
        .collect();
    let mut doc = json!({
        "id": tms.id(),
        "title": tms.title(),
        "crs": tms.crs_uri(),
        "orderedAxes": axes,
        "tileMatrices": matrices,
    });
    if let Some(u) = uri {
        doc["uri"] = json!(u);
    }
    doc
}

async fn matrix_sets(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let base = state.base_url(&headers);
    let sets: Vec<Json> = TileMatrixSet::ALL
        .iter()
        .map(|t| json!({"id": t.id(), "title": t.title(), "crs": t.crs_uri(), "links": [{"href": format!("{base}/tileMatrixSets/{}", t.id()), "rel": "self", "type": "application/json"}]}))
        .collect();
    json_response("application/json", &json!({"tileMatrixSets": sets}))
}

async fn matrix_set(Path(id): Path<String>) -> ApiResult<Response> {
    let tms = TileMatrixSet::from_id(&id).map_err(|e| ApiError::not_found(e.to_string()))?;
    Ok(json_response("application/json", &tms_doc(tms, MAX_ZOOM)))
}

fn tileset_doc(base: &str, name: &str, tms: TileMatrixSet, set: &TileSet) -> Json {
    let (data_type, path, ty, extent, minz, maxz) = match set {
        TileSet::Vector(l) => {
            ("vector", format!("{base}/collections/{name}/tiles/{}", tms.id()), MVT, layers_extent(l), 0, MAX_ZOOM)
        }
        TileSet::Raster(r) => (
            "map",
            format!("{base}/collections/{name}/map/tiles/{}", tms.id()),
            r.format().mime(),
            Some(r.bounds()),
            r.minzoom(),
            r.maxzoom(),
        ),
    };
    let mut doc = json!({
        "title": name,
        "dataType": data_type,
        "crs": tms.crs_uri(),
        "tileMatrixSetURI": format!("{base}/tileMatrixSets/{}", tms.id()),
        "tileMatrixSetLimits": (minz..=maxz).filter_map(|z| {
            let r = tms.tiles_for(&extent?, z, 0.0)?;
            Some(json!({"tileMatrix": z.to_string(), "minTileRow": r.min_y, "maxTileRow": r.max_y, "minTileCol": r.min_x, "maxTileCol": r.max_x}))
        }).collect::<Vec<_>>(),
        "links": [
            {"href": path.clone(), "rel": "self", "type": "application/json"},
            {"href": format!("{base}/tileMatrixSets/{}", tms.id()), "rel": "http://www.opengis.net/def/rel/ogc/1.0/tiling-scheme", "type": "application/json"},
            {"href": format!("{path}/{{tileMatrix}}/{{tileRow}}/{{tileCol}}"), "rel": "item", "type": ty, "templated": true},
        ],
    });
    if let TileSet::Vector(layers) = set {
        doc["layers"] = Json::Array(
            layers
                .iter()
                .map(|l| json!({"id": l.name(), "title": l.display_name(), "dataType": "vector", "geometryDimension": match l.def.geometry_kind {
                    GeometryKind::Point | GeometryKind::MultiPoint => json!(0),
                    GeometryKind::LineString | GeometryKind::MultiLineString => json!(1),
                    GeometryKind::Polygon | GeometryKind::MultiPolygon => json!(2),
                    GeometryKind::Geometry => Json::Null,
                }}))
                .collect(),
        );
    }
    doc
}

async fn resolve_async(state: &AppState, caller: Caller, name: String) -> ApiResult<TileSet> {
    let st = state.clone();
    blocking(move || resolve(&st, &caller, &name)).await
}

async fn vector_tilesets(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let set = resolve_async(&state, caller, name.clone()).await?;
    vector_only(set.clone(), &name)?;
    let base = state.base_url(&headers);
    let list: Vec<Json> = TileMatrixSet::ALL.iter().map(|t| tileset_doc(&base, &name, *t, &set)).collect();
    Ok(json_response("application/json", &json!({"tilesets": list})))
}

async fn vector_tileset(
    State(state): State<AppState>,
    caller: Caller,
    Path((name, tms)): Path<(String, String)>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let tms = TileMatrixSet::from_id(&tms).map_err(|e| ApiError::not_found(e.to_string()))?;
    let set = resolve_async(&state, caller, name.clone()).await?;
    vector_only(set.clone(), &name)?;
    Ok(json_response("application/json", &tileset_doc(&state.base_url(&headers), &name, tms, &set)))
}

async fn map_tilesets(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let set = resolve_async(&state, caller, name.clone()).await?;
    let r = raster_only(set.clone(), &name)?;
    let doc = tileset_doc(&state.base_url(&headers), &name, r.tms(), &set);
    Ok(json_response("application/json", &json!({"tilesets": [doc]})))
}

async fn map_tileset(
    State(state): State<AppState>,
    caller: Caller,
    Path((name, tms)): Path<(String, String)>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let tms = TileMatrixSet::from_id(&tms).map_err(|e| ApiError::not_found(e.to_string()))?;
    let set = resolve_async(&state, caller, name.clone()).await?;
    let r = raster_only(set.clone(), &name)?;
    if r.tms() != tms {
        return Err(ApiError::not_found(format!("raster set `{name}` is tiled in {}, not {tms}", r.tms())));
    }
    Ok(json_response("application/json", &tileset_doc(&state.base_url(&headers), &name, tms, &set)))
}

// ---------------------------------------------------------------------------------------------
// WMTS 1.0.0

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

fn wmts_exception(status: StatusCode, code: &str, locator: &str, text: &str) -> Response {
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ows:ExceptionReport xmlns:ows=\"http://www.opengis.net/ows/1.1\" version=\"1.1.0\" xml:lang=\"zh-CN\"><ows:Exception exceptionCode=\"{code}\" locator=\"{}\"><ows:ExceptionText>{}</ows:ExceptionText></ows:Exception></ows:ExceptionReport>",
        xml_escape(locator),
        xml_escape(text)
    );
    (status, [(header::CONTENT_TYPE, "application/xml")], body).into_response()
}

fn capabilities_xml(base: &str, sets: &[RasterSet]) -> String {
    use std::fmt::Write as _;
    let mut x = String::with_capacity(16 * 1024);
    let kvp = format!("{base}/wmts?");
    let op = |name: &str| {
        format!(
            "<ows:Operation name=\"{name}\"><ows:DCP><ows:HTTP><ows:Get xlink:href=\"{}\"><ows:Constraint name=\"GetEncoding\"><ows:AllowedValues><ows:Value>KVP</ows:Value></ows:AllowedValues></ows:Constraint></ows:Get><ows:Get xlink:href=\"{base}/wmts/1.0.0/\"><ows:Constraint name=\"GetEncoding\"><ows:AllowedValues><ows:Value>RESTful</ows:Value></ows:AllowedValues></ows:Constraint></ows:Get></ows:HTTP></ows:DCP></ows:Operation>",
            xml_escape(&kvp)
        )
    };
    let _ = write!(
        x,
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Capabilities xmlns=\"http://www.opengis.net/wmts/1.0\" xmlns:ows=\"http://www.opengis.net/ows/1.1\" xmlns:xlink=\"http://www.w3.org/1999/xlink\" xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" xmlns:gml=\"http://www.opengis.net/gml\" xsi:schemaLocation=\"http://www.opengis.net/wmts/1.0 http://schemas.opengis.net/wmts/1.0/wmtsGetCapabilities_response.xsd\" version=\"1.0.0\">\n\
<ows:ServiceIdentification><ows:Title>shikong 时空 影像与历史地图 WMTS</ows:Title><ows:Abstract>影像、地形晕渲与历史扫描图的多时相瓦片服务（Time 维度为采集日期）</ows:Abstract><ows:ServiceType>OGC WMTS</ows:ServiceType><ows:ServiceTypeVersion>1.0.0</ows:ServiceTypeVersion></ows:ServiceIdentification>\n\
<ows:OperationsMetadata>{}{}</ows:OperationsMetadata>\n<Contents>\n",
        op("GetCapabilities"),
        op("GetTile")
    );
    let mut used: Vec<(TileMatrixSet, u8)> = Vec::new();
    for r in sets {
        let b = r.bounds();
        let tms = r.tms();
        match used.iter_mut().find(|(t, _)| *t == tms) {
            Some(u) => u.1 = u.1.max(r.maxzoom()),
            None => used.push((tms, r.maxzoom())),
        }
        let ext = r.format().ext();
        let newest = r.slices.last().map(|s| s.date.clone()).unwrap_or_default();
        let _ = write!(
            x,
            "<Layer><ows:Title>{}</ows:Title><ows:Abstract>{}</ows:Abstract><ows:WGS84BoundingBox><ows:LowerCorner>{} {}</ows:LowerCorner><ows:UpperCorner>{} {}</ows:UpperCorner></ows:WGS84BoundingBox><ows:Identifier>{}</ows:Identifier><Style isDefault=\"true\"><ows:Identifier>default</ows:Identifier></Style><Format>{}</Format>",
            xml_escape(r.title()),
            xml_escape(r.kind()),
            b.min_x,
            b.min_y,
            b.max_x,
            b.max_y,
            xml_escape(&r.name),
            r.format().mime()
        );
        let _ = write!(
            x,
            "<Dimension><ows:Identifier>Time</ows:Identifier><ows:Title>采集日期</ows:Title><ows:UOM>ISO8601</ows:UOM><Default>{}</Default><Current>true</Current>",
            xml_escape(&newest)
        );
        for s in &r.slices {
            let _ = write!(x, "<Value>{}</Value>", xml_escape(&s.date));
        }
        let _ = write!(
            x,
            "</Dimension><TileMatrixSetLink><TileMatrixSet>{}</TileMatrixSet><TileMatrixSetLimits>",
            tms.id()
        );
        for z in r.minzoom()..=r.maxzoom() {
            if let Some(l) = tms.tiles_for(&b, z, 0.0) {
                let _ = write!(
                    x,
                    "<TileMatrixLimits><TileMatrix>{z}</TileMatrix><MinTileRow>{}</MinTileRow><MaxTileRow>{}</MaxTileRow><MinTileCol>{}</MinTileCol><MaxTileCol>{}</MaxTileCol></TileMatrixLimits>",
                    l.min_y, l.max_y, l.min_x, l.max_x
                );
            }
        }
        let _ = writeln!(
            x,
            "</TileMatrixSetLimits></TileMatrixSetLink><ResourceURL format=\"{}\" resourceType=\"tile\" template=\"{}/wmts/1.0.0/{}/{{Style}}/{{Time}}/{{TileMatrixSet}}/{{TileMatrix}}/{{TileRow}}/{{TileCol}}.{ext}\"/></Layer>",
            r.format().mime(),
            xml_escape(base),
            xml_escape(&r.name)
        );
    }
    for (tms, maxz) in used {
        let (supported, wkss, corner) = match tms {
            TileMatrixSet::WebMercatorQuad => {
                let (ox, oy) = tms.origin();
                (
                    "urn:ogc:def:crs:EPSG::3857",
                    "<WellKnownScaleSet>urn:ogc:def:wkss:OGC:1.0:GoogleMapsCompatible</WellKnownScaleSet>",
                    format!("{ox:.10} {oy:.10}"),
                )
            }
            // EPSG:4490 axis order is latitude, longitude.
            TileMatrixSet::Cgcs2000Quad => ("urn:ogc:def:crs:EPSG::4490", "", "90 -180".to_owned()),
        };
        let _ = write!(
            x,
            "<TileMatrixSet><ows:Identifier>{}</ows:Identifier><ows:SupportedCRS>{supported}</ows:SupportedCRS>{wkss}",
            tms.id()
        );
        for z in 0..=maxz {
            let (w, h) = tms.matrix_size(z);
            let _ = write!(
                x,
                "<TileMatrix><ows:Identifier>{z}</ows:Identifier><ScaleDenominator>{}</ScaleDenominator><TopLeftCorner>{corner}</TopLeftCorner><TileWidth>256</TileWidth><TileHeight>256</TileHeight><MatrixWidth>{w}</MatrixWidth><MatrixHeight>{h}</MatrixHeight></TileMatrix>",
                tms.scale_denominator(z)
            );
        }
        x.push_str("</TileMatrixSet>\n");
    }
    let _ = write!(
        x,
        "</Contents>\n<ServiceMetadataURL xlink:href=\"{}/wmts/1.0.0/WMTSCapabilities.xml\"/>\n</Capabilities>\n",
        xml_escape(base)
    );
    x
}

async fn wmts_capabilities(State(state): State<AppState>, headers: HeaderMap) -> ApiResult<Response> {
    let base = state.base_url(&headers);
    let st = state.clone();
    let sets = blocking(move || Ok(st.tiles.raster_sets()?)).await?;
    Ok(([(header::CONTENT_TYPE, "application/xml")], capabilities_xml(&base, &sets)).into_response())
}

/// Raster tile errors become OWS exception reports (404s become empty tiles' 204 already).
fn wmts_error(e: ApiError) -> Response {
    let code = if e.status == StatusCode::NOT_FOUND { "TileOutOfRange" } else { "InvalidParameterValue" };
    let status = if e.status == StatusCode::NOT_FOUND { StatusCode::NOT_FOUND } else { e.status };
    wmts_exception(status, code, "", &e.detail)
}

async fn wmts_kvp(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> Response {
    // OWS key-value pairs: parameter names are case-insensitive.
    let pairs = kvp_pairs(q.as_deref().unwrap_or(""));
    let get = |k: &str| pairs.iter().find(|(key, _)| key.eq_ignore_ascii_case(k)).map(|(_, v)| v.as_str());
    if get("service").is_some_and(|s| !s.eq_ignore_ascii_case("WMTS")) {
        return wmts_exception(StatusCode::BAD_REQUEST, "InvalidParameterValue", "SERVICE", "SERVICE must be WMTS");
    }
    match get("request").map(str::to_ascii_lowercase).as_deref() {
        Some("getcapabilities") => match wmts_capabilities(State(state), headers).await {
            Ok(r) => r,
            Err(e) => wmts_error(e),
        },
        Some("gettile") => {
            let mut vals = Vec::new();
            for k in ["layer", "tilematrixset", "tilematrix", "tilerow", "tilecol"] {
                match get(k) {
                    Some(v) => vals.push(v.to_owned()),
                    None => {
                        return wmts_exception(
                            StatusCode::BAD_REQUEST,
                            "MissingParameterValue",
                            &k.to_ascii_uppercase(),
                            &format!("GetTile needs {}", k.to_ascii_uppercase()),
                        );
                    }
                }
            }
            let when = match get("time") {
                Some(t)
                    if !t.is_empty() && !t.eq_ignore_ascii_case("default") && !t.eq_ignore_ascii_case("current") =>
                {
                    RasterWhen::Named(t.to_owned())
                }
                _ => RasterWhen::At(None),
            };
            wmts_tile(state, caller, vals, when).await
        }
        _ => wmts_exception(
            StatusCode::BAD_REQUEST,
            "OperationNotSupported",
            "REQUEST",
            "REQUEST must be GetCapabilities or GetTile",
        ),
    }
}

/// Decoded KVP pairs (invalid percent-escapes are kept as they are: WMTS values are ASCII).
fn kvp_pairs(q: &str) -> Vec<(String, String)> {
    let dec = |s: &str| -> String {
        let s = s.replace('+', " ");
        let b = s.as_bytes();
        let mut out = Vec::with_capacity(b.len());
        let mut i = 0;
        while i < b.len() {
            if b[i] == b'%'
                && let Some(v) = s.get(i + 1..i + 3).and_then(|h| u8::from_str_radix(h, 16).ok())
            {
                out.push(v);
                i += 3;
                continue;
            }
            out.push(b[i]);
            i += 1;
        }
        String::from_utf8_lossy(&out).into_owned()
    };
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (dec(k), dec(v))
        })
        .collect()
}

/// `vals`: layer, tile matrix set, tile matrix, row, col.
async fn wmts_tile(state: AppState, caller: Caller, vals: Vec<String>, when: RasterWhen) -> Response {
    let parsed = (|| -> ApiResult<(TileMatrixSet, (u8, u32, u32))> {
        let tms = TileMatrixSet::from_id(&vals[1]).map_err(|e| ApiError::bad_parameter("TILEMATRIXSET", e))?;
        let z = parse_num("TILEMATRIX", &vals[2])?;
        let row = parse_num("TILEROW", &vals[3])?;
        let (col, _) = match vals[4].split_once('.') {
            Some((c, ext)) => (c.to_owned(), ext),
            None => (vals[4].clone(), ""),
        };
        Ok((tms, (z, parse_num("TILECOL", &col)?, row)))
    })();
    let (tms, zxy) = match parsed {
        Ok(v) => v,
        Err(e) => return wmts_exception(StatusCode::BAD_REQUEST, "InvalidParameterValue", "", &e.detail),
    };
    match raster_tile(state, caller, vals[0].clone(), Some(tms), zxy, when).await {
        Ok(r) => r,
        Err(e) => wmts_error(e),
    }
}

async fn wmts_rest(
    State(state): State<AppState>,
    caller: Caller,
    Path((layer, _style, time, tms, z, row, col)): Path<(String, String, String, String, String, String, String)>,
) -> Response {
    let when = if time.eq_ignore_ascii_case("default") || time.eq_ignore_ascii_case("current") || time.is_empty() {
        RasterWhen::At(None)
    } else {
        RasterWhen::Named(time)
    };
    wmts_tile(state, caller, vec![layer, tms, z, row, col], when).await
}

// ---------------------------------------------------------------------------------------------
// Styles

const PALETTE: [&str; 8] = ["#e4572e", "#2e86ab", "#3bb273", "#f3a712", "#8e44ad", "#c0392b", "#16a085", "#d35400"];

/// A default style for layers and raster sets: raster basemaps below, then fills, lines, points.
fn default_style(id: &str, title: &str, layers: &[Layer], rasters: &[RasterSet]) -> Json {
    let mut sources = Map::new();
    let mut style_layers =
        vec![json!({"id": "background", "type": "background", "paint": {"background-color": "#f4f1ea"}})];
    for r in rasters {
        sources.insert(
            format!("raster-{}", r.name),
            json!({"type": "raster", "url": format!("/tiles/{}.json", r.name), "tileSize": 256}),
        );
        let opacity = if r.kind() == "hillshade" { 0.5 } else { 1.0 };
        style_layers.push(json!({"id": format!("raster-{}", r.name), "type": "raster", "source": format!("raster-{}", r.name), "paint": {"raster-opacity": opacity}, "metadata": {"shikong:title": r.title()}}));
    }
    let mut fills = Vec::new();
    let mut lines = Vec::new();
    let mut points = Vec::new();
    for (i, l) in layers.iter().enumerate() {
        let color = PALETTE[i % PALETTE.len()];
        let name = l.name();
        sources.insert(name.to_owned(), json!({"type": "vector", "url": format!("/tiles/{name}.json")}));
        let kind = l.def.geometry_kind;
        let meta = json!({"shikong:title": l.display_name()});
        let filter = |t: &str| json!(["==", ["geometry-type"], t]);
        let mixed = kind == GeometryKind::Geometry;
        if mixed || matches!(kind, GeometryKind::Polygon | GeometryKind::MultiPolygon) {
            let mut f = json!({"id": format!("{name}-fill"), "type": "fill", "source": name, "source-layer": name, "paint": {"fill-color": color, "fill-opacity": 0.35}, "metadata": meta});
            let mut o = json!({"id": format!("{name}-outline"), "type": "line", "source": name, "source-layer": name, "paint": {"line-color": color, "line-width": 1}, "metadata": meta});
            if mixed {
                f["filter"] = filter("Polygon");
                o["filter"] = filter("Polygon");
            }
            fills.push(f);
            fills.push(o);
        }
        if mixed || matches!(kind, GeometryKind::LineString | GeometryKind::MultiLineString) {
            let mut ln = json!({"id": format!("{name}-line"), "type": "line", "source": name, "source-layer": name, "paint": {"line-color": color, "line-width": 2}, "metadata": meta});
            if mixed {
                ln["filter"] = filter("LineString");
            }
            lines.push(ln);
        }
        if mixed || matches!(kind, GeometryKind::Point | GeometryKind::MultiPoint) {
            let mut c = json!({"id": format!("{name}-point"), "type": "circle", "source": name, "source-layer": name, "paint": {"circle-color": color, "circle-radius": ["interpolate", ["linear"], ["zoom"], 10, 2, 16, 5], "circle-stroke-color": "#ffffff", "circle-stroke-width": 1}, "metadata": meta});
            if mixed {
                c["filter"] = filter("Point");
            }
            points.push(c);
        }
    }
    style_layers.extend(fills);
    style_layers.extend(lines);
    style_layers.extend(points);
    let extent = layers_extent(layers).or_else(|| rasters.first().map(RasterSet::bounds));
    let center =
        extent.map_or(json!([114.3, 30.55]), |b| json!([(b.min_x + b.max_x) / 2.0, (b.min_y + b.max_y) / 2.0]));
    json!({
        "version": 8,
        "name": title,
        "metadata": {"shikong:id": id, "shikong:generated": true},
        "center": center,
        "zoom": 12,
        "sources": sources,
        "layers": style_layers,
    })
}

/// Makes relative URLs absolute and adds `as-of` to tile sources.
fn finish_style(mut doc: Json, base: &str, as_of: Option<&str>) -> Json {
    let abs = |u: &str| if u.starts_with('/') { format!("{base}{u}") } else { u.to_owned() };
    let add = |u: String| -> String {
        match as_of {
            Some(t) if u.starts_with(base) && u.contains("/tiles/") => {
                let sep = if u.contains('?') { '&' } else { '?' };
                format!("{u}{sep}as-of={}", urlencode(t))
            }
            _ => u,
        }
    };
    if let Some(sources) = doc.get_mut("sources").and_then(Json::as_object_mut) {
        for s in sources.values_mut() {
            if let Some(u) = s.get("url").and_then(Json::as_str).map(|u| add(abs(u))) {
                s["url"] = json!(u);
            }
            if let Some(tiles) = s.get_mut("tiles").and_then(Json::as_array_mut) {
                for t in tiles.iter_mut() {
                    if let Some(u) = t.as_str().map(|u| add(abs(u))) {
                        *t = json!(u);
                    }
                }
            }
        }
    }
    for key in ["glyphs", "sprite"] {
        if let Some(u) = doc.get(key).and_then(Json::as_str).map(abs) {
            doc[key] = json!(u);
        }
    }
    doc
}

/// The readable layers and raster sets (for generated styles).
fn readable(state: &AppState, caller: &Caller) -> ApiResult<(Vec<Layer>, Vec<RasterSet>)> {
    let layers =
        state.store().layers()?.into_iter().filter(|l| caller.allowed(state, l, Action::Read).is_ok()).collect();
    Ok((layers, state.tiles.raster_sets()?))
}

/// A style by id: stored, else generated (`default`, or one layer or raster set).
fn find_style(state: &AppState, caller: &Caller, id: &str) -> ApiResult<(Json, Option<i64>)> {
    if let Some(s) = state.tiles.style(id)? {
        return Ok((s.doc, Some(s.version)));
    }
    if id == "default" {
        let (layers, rasters) = readable(state, caller)?;
        return Ok((default_style(id, "时空 全部图层", &layers, &rasters), None));
    }
    match resolve(state, caller, id)? {
        TileSet::Vector(l) => {
            let title = l.iter().map(Layer::display_name).collect::<Vec<_>>().join("、");
            Ok((default_style(id, &title, &l, &[]), None))
        }
        TileSet::Raster(r) => Ok((default_style(id, r.title(), &[], std::slice::from_ref(&r)), None)),
    }
}

async fn styles(State(state): State<AppState>, caller: Caller, headers: HeaderMap) -> ApiResult<Response> {
    let base = state.base_url(&headers);
    let st = state.clone();
    let (stored, layers, rasters) = blocking(move || {
        let (l, r) = readable(&st, &caller)?;
        Ok((st.tiles.styles()?, l, r))
    })
    .await?;
    let link = |id: &str| json!([{"href": format!("{base}/styles/{id}"), "rel": "stylesheet", "type": STYLE_JSON}, {"href": format!("{base}/map?style={id}"), "rel": "map", "type": "text/html"}]);
    let mut list: Vec<Json> = stored
        .iter()
        .map(|s| json!({"id": s.id, "title": s.title, "stored": true, "version": s.version, "updatedBy": s.updated_by, "updatedAt": s.updated_at.to_string(), "links": link(&s.id)}))
        .collect();
    let mut generated = vec![("default".to_owned(), "时空 全部图层".to_owned())];
    generated.extend(layers.iter().map(|l| (l.name().to_owned(), l.display_name().to_owned())));
    generated.extend(rasters.iter().map(|r| (r.name.clone(), r.title().to_owned())));
    for (id, title) in generated {
        if !stored.iter().any(|s| s.id == id) {
            list.push(json!({"id": id, "title": title, "stored": false, "links": link(&id)}));
        }
    }
    Ok(json_response("application/json", &json!({"styles": list})))
}

async fn style(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> ApiResult<Response> {
    let p = Params::new(q.as_deref())?;
    p.only(&["as-of", "f"])?;
    p.instant("as-of")?;
    let as_of = p.get("as-of").map(str::to_owned);
    let base = state.base_url(&headers);
    let st = state.clone();
    let (doc, version) = blocking(move || find_style(&st, &caller, &id)).await?;
    let mut resp = json_response(STYLE_JSON, &finish_style(doc, &base, as_of.as_deref()));
    if let Some(v) = version
        && let Ok(h) = HeaderValue::from_str(&format!("\"{v}\""))
    {
        resp.headers_mut().insert(header::ETAG, h);
    }
    Ok(resp)
}

fn require_editor(caller: &Caller) -> ApiResult<String> {
    let p = caller.require()?;
    if matches!(p.role, Role::Admin | Role::Office) {
        Ok(p.username.clone())
    } else {
        Err(ApiError::forbidden("styles are edited by office staff (内业) and administrators"))
    }
}

async fn put_style(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> ApiResult<Response> {
    let author = require_editor(&caller)?;
    let doc: Json =
        serde_json::from_slice(&body).map_err(|e| ApiError::bad_body(format!("the style is not JSON: {e}")))?;
    let if_version = match headers.get(header::IF_MATCH).and_then(|v| v.to_str().ok()) {
        None => None,
        Some(v) => Some(
            v.trim()
                .trim_matches('"')
                .parse::<i64>()
                .map_err(|_| ApiError::bad_parameter("If-Match", format!("`{v}` is not a style version")))?,
        ),
    };
    let now = Timestamp::now();
    let st = state.clone();
    let saved = blocking(move || Ok(st.tiles.put_style(&id, &doc, &author, now, if_version)?)).await?;
    let status = if saved.version == 1 { StatusCode::CREATED } else { StatusCode::OK };
    let mut resp = (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        json!({"id": saved.id, "version": saved.version, "updatedBy": saved.updated_by}).to_string(),
    )
        .into_response();
    if let Ok(h) = HeaderValue::from_str(&format!("\"{}\"", saved.version)) {
        resp.headers_mut().insert(header::ETAG, h);
    }
    Ok(resp)
}

async fn delete_style(State(state): State<AppState>, caller: Caller, Path(id): Path<String>) -> ApiResult<Response> {
    require_editor(&caller)?;
    let st = state.clone();
    let gone = blocking(move || Ok(st.tiles.delete_style(&id)?)).await?;
    if gone {
        Ok(StatusCode::NO_CONTENT.into_response())
    } else {
        Err(ApiError::not_found("no stored style with this id"))
    }
}

// ---------------------------------------------------------------------------------------------
// The web map page

async fn map_page(RawQuery(q): RawQuery) -> ApiResult<Response> {
    let p = Params::new(q.as_deref())?;
    p.only(&["style", "a", "b", "center", "zoom"])?;
    Ok(Html(MAP_HTML).into_response())
}

const MAP_HTML: &str = r#"<!doctype html>
<html lang="zh-CN">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>时空 地图</title>
<link rel="stylesheet" href="/map/assets/map.css">
</head>
<body>
<header>
  <h1>时空 地图</h1>
  <label>日期 <input type="date" id="date-a" title="显示该日的数据与影像（空：现在）"></label>
  <button type="button" id="now">现在</button>
  <label><input type="checkbox" id="compare"> 双时相对比</label>
  <label class="date-b">对比日期 <input type="date" id="date-b"></label>
  <span id="status">加载中…</span>
</header>
<div id="maps"><div id="map-a"></div><div id="map-b"></div></div>
<script src="/map/assets/map.js"></script>
</body>
</html>
"#;

async fn map_asset(Path(file): Path<String>) -> ApiResult<Response> {
    let (body, ty) = match file.as_str() {
        "map.js" => (MAP_JS, "text/javascript; charset=utf-8"),
        "map.css" => (MAP_CSS, "text/css; charset=utf-8"),
        _ => return Err(ApiError::not_found(format!("no asset `{file}`"))),
    };
    Ok(([(header::CONTENT_TYPE, ty), (header::CACHE_CONTROL, "public, max-age=3600")], body).into_response())
}

// ---------------------------------------------------------------------------------------------
// Offline packages

/// A package request body.
struct PackageRequest {
    set: String,
    area: AreaRef,
    minzoom: u8,
    maxzoom: u8,
    as_of: Option<Timestamp>,
    since: Option<String>,
}

enum AreaRef {
    Geometry(Geometry),
    Feature { layer: String, feature: String },
}

fn package_request(body: &[u8]) -> ApiResult<PackageRequest> {
    let j: Json = serde_json::from_slice(body).map_err(|e| ApiError::bad_body(format!("not JSON: {e}")))?;
    let obj = j.as_object().ok_or_else(|| ApiError::bad_body("expected a JSON object"))?;
    for k in obj.keys() {
        if !["set", "area", "minzoom", "maxzoom", "as-of", "since"].contains(&k.as_str()) {
            return Err(ApiError::bad_body(format!(
                "unknown member `{k}` (known: set, area, minzoom, maxzoom, as-of, since)"
            )));
        }
    }
    let set = obj
        .get("set")
        .and_then(Json::as_str)
        .ok_or_else(|| ApiError::bad_body("`set` (a layer, `a,b`, or a raster set) is required"))?;
    let zoom = |k: &str, d: u8| -> ApiResult<u8> {
        match obj.get(k) {
            None => Ok(d),
            Some(v) => v
                .as_u64()
                .filter(|z| *z <= u64::from(MAX_ZOOM))
                .map(|z| z as u8)
                .ok_or_else(|| ApiError::bad_body(format!("`{k}` must be an integer 0–{MAX_ZOOM}"))),
        }
    };
    let area = match obj.get("area") {
        Some(Json::Object(a)) if a.contains_key("layer") => AreaRef::Feature {
            layer: a.get("layer").and_then(Json::as_str).unwrap_or_default().to_owned(),
            feature: a
                .get("feature")
                .and_then(Json::as_str)
                .ok_or_else(|| {
                    ApiError::bad_body("`area.feature` (an id or entity code) is required with `area.layer`")
                })?
                .to_owned(),
        },
        Some(g @ Json::Object(_)) => {
            AreaRef::Geometry(geojson::from_json(g).map_err(|e| ApiError::bad_body(format!("`area`: {e}")))?)
        }
        _ => {
            return Err(ApiError::bad_body(
                "`area` is required: a GeoJSON polygon (lon/lat) or {\"layer\": …, \"feature\": …}",
            ));
        }
    };
    let as_of = obj
        .get("as-of")
        .and_then(Json::as_str)
        .map(|t| shikong_model::parse_instant(t).map_err(|e| ApiError::bad_body(format!("`as-of`: {e}"))))
        .transpose()?;
    Ok(PackageRequest {
        set: set.to_owned(),
        area,
        minzoom: zoom("minzoom", 12)?,
        maxzoom: zoom("maxzoom", 18)?,
        as_of,
        since: obj.get("since").map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned)),
    })
}

const MAX_PACKAGE_TILES: u64 = 500_000;

/// Runs `f` with the resolved package spec.
fn with_package<R>(
    state: &AppState,
    caller: &Caller,
    req: &PackageRequest,
    f: impl FnOnce(&PackageSpec<'_>) -> ApiResult<R>,
) -> ApiResult<R> {
    let set = resolve(state, caller, &req.set)?;
    let area = match &req.area {
        AreaRef::Geometry(g) => g.clone(),
        AreaRef::Feature { layer, feature } => {
            let l = state.store().layer(layer)?;
            caller.allowed(state, &l, Action::Read)?;
            let f = state
                .store()
                .get(layer, &FeatureKey::parse(feature), None)?
                .ok_or_else(|| ApiError::not_found(format!("layer `{layer}`: no feature `{feature}`")))?;
            f.feature.geometry.ok_or_else(|| ApiError::bad_body(format!("feature `{feature}` has no geometry")))?
        }
    };
    if !matches!(area, Geometry::Polygon(_) | Geometry::MultiPolygon(_)) {
        return Err(ApiError::bad_body("`area` must be a polygon or multipolygon"));
    }
    let since_tx = match (&set, &req.since) {
        (TileSet::Vector(_), Some(s)) => Some(shikong_model::TxId(s.parse().map_err(|_| {
            ApiError::bad_body(format!("`since`: `{s}` is not the transaction number of a package (its shikong:tx)"))
        })?)),
        _ => None,
    };
    let since_date = match (&set, &req.since) {
        (TileSet::Raster(_), Some(s)) => Some(s.as_str()),
        _ => None,
    };
    let content = match &set {
        TileSet::Vector(layers) => PackageContent::Vector { layers },
        TileSet::Raster(r) => PackageContent::Raster { set: r, when: req.as_of },
    };
    let spec = PackageSpec {
        area: &area,
        minzoom: req.minzoom,
        maxzoom: req.maxzoom,
        content,
        since_tx,
        since_date,
        max_tiles: MAX_PACKAGE_TILES,
    };
    f(&spec)
}

async fn package_estimate(
    State(state): State<AppState>,
    caller: Caller,
    body: axum::body::Bytes,
) -> ApiResult<Response> {
    let req = package_request(&body)?;
    let st = state.clone();
    let e =
        blocking(move || with_package(&st, &caller, &req, |spec| Ok(st.tiles.estimate_package(st.store(), spec)?)))
            .await?;
    Ok(json_response(
        "application/json",
        &json!({"tiles": e.tiles, "bytes": e.bytes, "megabytes": (e.bytes as f64 / 1_048_576.0 * 100.0).round() / 100.0, "exact": e.exact, "sampledTiles": e.sampled}),
    ))
}

async fn package_create(State(state): State<AppState>, caller: Caller, body: axum::body::Bytes) -> ApiResult<Response> {
    let req = package_request(&body)?;
    let st = state.clone();
    let name = req.set.replace(',', "+");
    let (info, bytes) = blocking(move || {
        let dir = st.tiles.config().dir.join("packages");
        std::fs::create_dir_all(&dir).map_err(ApiError::internal)?;
        let tmp = tempfile::Builder::new().suffix(".mbtiles").tempfile_in(&dir).map_err(ApiError::internal)?;
        let info =
            with_package(&st, &caller, &req, |spec| Ok(st.tiles.write_package(st.store(), spec, tmp.path())?))?;
        let bytes = std::fs::read(tmp.path()).map_err(ApiError::internal)?;
        Ok((info, bytes))
    })
    .await?;
    let mut resp = ([(header::CONTENT_TYPE, "application/vnd.sqlite3")], bytes).into_response();
    let h = resp.headers_mut();
    for (k, v) in [
        ("x-tiles", info.tiles.to_string()),
        ("x-tile-bytes", info.bytes.to_string()),
        ("x-tile-matrix-set", info.tms.id().to_owned()),
        ("content-disposition", format!("attachment; filename=\"{name}.mbtiles\"")),
    ] {
        if let Ok(v) = HeaderValue::from_str(&v) {
            h.insert(k, v);
        }
    }
    if let Some(tx) = info.tx
        && let Ok(v) = HeaderValue::from_str(&tx.0.to_string())
    {
        h.insert("x-package-transaction", v);
    }
    if let Some(d) = info.date
        && let Ok(v) = HeaderValue::from_str(&d)
    {
        h.insert("x-acquisition-date", v);
    }
    Ok(resp)
}

// ---------------------------------------------------------------------------------------------
// Administration: raster imports, cache rebuilds

fn require_admin(caller: &Caller) -> ApiResult<String> {
    let p = caller.require()?;
    if p.is_admin() {
        Ok(p.username.clone())
    } else {
        Err(ApiError::forbidden("raster sets are managed by administrators"))
    }
}

async fn raster_import(
    State(state): State<AppState>,
    caller: Caller,
    Path(set): Path<String>,
    RawQuery(q): RawQuery,
    body: Body,
) -> ApiResult<Response> {
    require_admin(&caller)?;
    let p = Params::new(q.as_deref())?;
    p.only(&["date", "title", "kind"])?;
    let date = p
        .get("date")
        .ok_or_else(|| ApiError::bad_parameter("date", "the acquisition date is required (2023-08-01)"))?
        .to_owned();
    shikong_model::parse_instant(&date).map_err(|e| ApiError::bad_parameter("date", e))?;
    let title = p.get("title").map(str::to_owned);
    let kind = p.get("kind").unwrap_or("imagery").to_owned();
    shikong_tileserver::raster::check_set_name(&set)?;
    // Stream the upload to a file: imagery is larger than memory should hold.
    let dir = state.tiles.config().dir.join("incoming");
    std::fs::create_dir_all(&dir).map_err(ApiError::internal)?;
    let tmp = tempfile::Builder::new().tempfile_in(&dir).map_err(ApiError::internal)?;
    {
        use std::io::Write as _;
        // Chunks are small; a local write of one does not stall the runtime noticeably.
        let mut file = std::io::BufWriter::new(tmp.reopen().map_err(ApiError::internal)?);
        let mut body = body;
        while let Some(frame) = std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await {
            let frame = frame.map_err(|e| ApiError::bad_body(format!("upload interrupted: {e}")))?;
            if let Ok(data) = frame.into_data() {
                file.write_all(&data).map_err(ApiError::internal)?;
            }
        }
        file.flush().map_err(ApiError::internal)?;
    }
    let st = state.clone();
    let slice = blocking(move || {
        let imp = RasterImport { set: &set, date: &date, title: title.as_deref(), kind: &kind, source: tmp.path() };
        Ok(st.tiles.import_raster(&imp)?)
    })
    .await?;
    let doc = json!({
        "set": slice.set, "date": slice.date, "tileMatrixSet": slice.tms.id(), "format": slice.format.ext(),
        "minzoom": slice.minzoom, "maxzoom": slice.maxzoom, "tiles": slice.tiles, "bytes": slice.bytes,
        "bounds": [slice.bounds.min_x, slice.bounds.min_y, slice.bounds.max_x, slice.bounds.max_y],
    });
    Ok((StatusCode::CREATED, [(header::CONTENT_TYPE, "application/json")], doc.to_string()).into_response())
}

async fn raster_delete(
    State(state): State<AppState>,
    caller: Caller,
    Path(set): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult<Response> {
    require_admin(&caller)?;
    let p = Params::new(q.as_deref())?;
    p.only(&["date"])?;
    let date = p.get("date").map(str::to_owned);
    let st = state.clone();
    let n = blocking(move || Ok(st.tiles.delete_raster(&set, date.as_deref())?)).await?;
    Ok(json_response("application/json", &json!({"deleted": n})))
}

/// `POST /tiles/cache/rebuild?layer=&bbox=`: drops a layer's tiles (in an area, or all), or every
/// layer's. Tiles are regenerated on demand (packages pre-generate the areas they cover).
async fn cache_rebuild(State(state): State<AppState>, caller: Caller, RawQuery(q): RawQuery) -> ApiResult<Response> {
    require_editor(&caller)?;
    let p = Params::new(q.as_deref())?;
    p.only(&["layer", "bbox"])?;
    let layer = p.get("layer").map(str::to_owned);
    let bbox = p.bbox()?;
    let st = state.clone();
    let n = blocking(move || {
        Ok(match (&layer, bbox) {
            (Some(l), Some(b)) => {
                st.store().layer(l)?;
                st.tiles.invalidate(l, &[b])?
            }
            (Some(l), None) => {
                st.store().layer(l)?;
                st.tiles.invalidate_layer(l)?
            }
            (None, Some(b)) => {
                let mut n = 0;
                for l in st.store().layers()? {
                    n += st.tiles.invalidate(l.name(), &[b])?;
                }
                n
            }
            (None, None) => st.tiles.invalidate_all()?,
        })
    })
    .await?;
    Ok(json_response("application/json", &json!({"deletedTiles": n})))
}
