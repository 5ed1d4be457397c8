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
//! - `/tiles/rasters/{set}?date=&title=&kind=&crs=` (POST the file, DELETE; admins; `crs=gcj02`
//!   marks Amap/Tencent tiles, served cut into place), `/tiles/cache/rebuild` (POST).
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
use shikong_tileserver::raster::{RasterCrs, RasterImport, RasterSet};
use shikong_tileserver::{TileServerError, VectorRequest};

use super::access::{Action, Caller};
use super::params::Params;
use super::problem::{ApiError, ApiResult};
use super::{AppState, blocking};

mod admin;
mod map_page;
mod ogc_tiles;
mod packages;
mod styles;
mod tilejson;
mod view;
mod wmts;
mod xyz;

use admin::*;
use map_page::*;
use ogc_tiles::*;
use packages::*;
use styles::*;
use tilejson::*;
use wmts::*;
use xyz::*;

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
                TileError::Decode(_) | TileError::Image { .. } => ApiError::internal(t),
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

/// Most attributes a `properties` list may name (more than any layer's fields; each is a lookup
/// per feature of every tile).
const MAX_PROPERTIES: usize = 256;

fn properties(p: &Params) -> ApiResult<Option<Vec<String>>> {
    let Some(v) = p.get("properties") else { return Ok(None) };
    let names: Vec<String> = v.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect();
    if names.len() > MAX_PROPERTIES {
        return Err(ApiError::bad_parameter(
            "properties",
            format!("{} attributes listed, more than {MAX_PROPERTIES}; name only those the map needs", names.len()),
        )
        .with("max", MAX_PROPERTIES));
    }
    Ok(Some(names))
}
