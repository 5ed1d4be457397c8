//! OGC API – Tiles: tile matrix sets (WebMercatorQuad, CGCS2000Quad), vector and map tileset
//! documents and tiles under `/collections/{id}/tiles` and `/collections/{id}/map/tiles`.

use super::*;

pub(super) async fn vector_ogc_tile(
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

pub(super) async fn map_ogc_tile(
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

pub(super) fn tms_doc(tms: TileMatrixSet, maxzoom: u8) -> Json {
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

pub(super) async fn matrix_sets(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let base = state.base_url(&headers);
    let sets: Vec<Json> = TileMatrixSet::ALL
        .iter()
        .map(|t| json!({"id": t.id(), "title": t.title(), "crs": t.crs_uri(), "links": [{"href": format!("{base}/tileMatrixSets/{}", t.id()), "rel": "self", "type": "application/json"}]}))
        .collect();
    json_response("application/json", &json!({"tileMatrixSets": sets}))
}

pub(super) async fn matrix_set(Path(id): Path<String>) -> ApiResult<Response> {
    let tms = TileMatrixSet::from_id(&id).map_err(|e| ApiError::not_found(e.to_string()))?;
    Ok(json_response("application/json", &tms_doc(tms, MAX_ZOOM)))
}

pub(super) fn tileset_doc(base: &str, name: &str, tms: TileMatrixSet, set: &TileSet) -> Json {
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

pub(super) async fn resolve_async(state: &AppState, caller: Caller, name: String) -> ApiResult<TileSet> {
    let st = state.clone();
    blocking(move || resolve(&st, &caller, &name)).await
}

pub(super) async fn vector_tilesets(
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

pub(super) async fn vector_tileset(
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

pub(super) async fn map_tilesets(
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

pub(super) async fn map_tileset(
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
