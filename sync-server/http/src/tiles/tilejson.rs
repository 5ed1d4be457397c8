//! TileJSON 3.0 documents (`/tiles/{set}.json`) and the list of tile sets (`/tiles`).

use super::*;

// ---------------------------------------------------------------------------------------------
// Metadata documents

pub(super) fn field_type(t: FieldType) -> &'static str {
    match t {
        FieldType::Integer | FieldType::Real => "Number",
        FieldType::Bool => "Boolean",
        _ => "String",
    }
}

pub(super) fn with_as_of(url: String, as_of: Option<&str>) -> String {
    match as_of {
        Some(t) => format!("{url}?as-of={}", shikong_protocol::url::encode_component(t)),
        None => url,
    }
}

pub(super) fn bounds_json(b: Option<Bbox>) -> Json {
    let b = b.unwrap_or(Bbox { min_x: -180.0, min_y: -85.051_128, max_x: 180.0, max_y: 85.051_128 });
    json!([b.min_x, b.min_y, b.max_x, b.max_y])
}

pub(super) fn center_json(b: Option<Bbox>, zoom: u8) -> Json {
    match b {
        Some(b) => json!([(b.min_x + b.max_x) / 2.0, (b.min_y + b.max_y) / 2.0, zoom]),
        None => json!([114.3, 30.55, zoom]),
    }
}

pub(super) fn layers_extent(layers: &[Layer]) -> Option<Bbox> {
    layers.iter().filter_map(|l| l.extent).reduce(|a, b| a.union(&b))
}

pub(super) fn tilejson_doc(base: &str, name: &str, set: &TileSet, as_of: Option<&str>) -> Json {
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
                "description": format!(
                    "{}（{}，{} 期{}）",
                    r.title(),
                    r.kind(),
                    r.slices.len(),
                    if r.crs() == RasterCrs::Gcj02 { "，GCJ-02 底图已纠偏至 CGCS2000" } else { "" }
                ),
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
                "shikong:sourceCrs": r.crs().as_str(),
                "shikong:dates": r.slices.iter().map(|s| s.date.clone()).collect::<Vec<_>>(),
            })
        }
    }
}

pub(super) async fn tilejson(
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

pub(super) fn json_response(ty: &'static str, doc: &Json) -> Response {
    ([(header::CONTENT_TYPE, ty)], doc.to_string()).into_response()
}

pub(super) async fn tilesets(State(state): State<AppState>, caller: Caller, headers: HeaderMap) -> ApiResult<Response> {
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
            "sourceCrs": r.crs().as_str(),
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
