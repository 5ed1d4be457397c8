//! MapLibre style documents: generated defaults and stored styles (GET; PUT/DELETE for office
//! staff and admins), with absolute URLs and `as-of` on tile sources.

use super::*;

// ---------------------------------------------------------------------------------------------
// Styles

pub(super) const PALETTE: [&str; 8] =
    ["#e4572e", "#2e86ab", "#3bb273", "#f3a712", "#8e44ad", "#c0392b", "#16a085", "#d35400"];

/// A default style for layers and raster sets: raster basemaps below, then fills, lines, points.
pub(super) fn default_style(id: &str, title: &str, layers: &[Layer], rasters: &[RasterSet]) -> Json {
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
    // The start view: the assets, not reference layers of a whole country (see `view`).
    let extents: Vec<(&str, Bbox)> = layers.iter().filter_map(|l| Some((l.name(), l.extent?))).collect();
    let (extent, reference) = match view::focus(&extents) {
        Some((b, reference)) => (Some(b), reference),
        None => (rasters.first().map(RasterSet::bounds), Vec::new()),
    };
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
            // Reference polygons (a city's districts around the assets) are boundaries: a faint
            // fill (still clickable) and a dashed outline, so they do not cover the data.
            let boundary = reference.contains(&name);
            let opacity = if boundary { 0.04 } else { 0.35 };
            let mut f = json!({"id": format!("{name}-fill"), "type": "fill", "source": name, "source-layer": name, "paint": {"fill-color": color, "fill-opacity": opacity}, "metadata": meta});
            let mut o = json!({"id": format!("{name}-outline"), "type": "line", "source": name, "source-layer": name, "paint": {"line-color": color, "line-width": if boundary { json!(1.5) } else { json!(1) }}, "metadata": meta});
            if boundary {
                o["paint"]["line-dasharray"] = json!([4, 2]);
            }
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
    let center =
        extent.map_or(json!([114.3, 30.55]), |b| json!([(b.min_x + b.max_x) / 2.0, (b.min_y + b.max_y) / 2.0]));
    // A typical window (1024 × 768 less the page's bar and a margin); /map fits the real one.
    let zoom = extent.map_or(12.0, |b| view::fit_zoom(&b, 960.0, 680.0));
    let mut metadata = json!({"shikong:id": id, "shikong:generated": true, "shikong:reference": reference});
    if let Some(b) = extent {
        metadata["shikong:bounds"] = json!([b.min_x, b.min_y, b.max_x, b.max_y]);
    }
    json!({
        "version": 8,
        "name": title,
        "metadata": metadata,
        "center": center,
        "zoom": zoom,
        "sources": sources,
        "layers": style_layers,
    })
}

/// Makes relative URLs absolute and adds `as-of` to tile sources.
pub(super) fn finish_style(mut doc: Json, base: &str, as_of: Option<&str>) -> Json {
    let abs = |u: &str| if u.starts_with('/') { format!("{base}{u}") } else { u.to_owned() };
    let add = |u: String| -> String {
        match as_of {
            Some(t) if u.starts_with(base) && u.contains("/tiles/") => {
                let sep = if u.contains('?') { '&' } else { '?' };
                format!("{u}{sep}as-of={}", shikong_protocol::url::encode_component(t))
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
pub(super) fn readable(state: &AppState, caller: &Caller) -> ApiResult<(Vec<Layer>, Vec<RasterSet>)> {
    let layers =
        state.store().layers()?.into_iter().filter(|l| caller.allowed(state, l, Action::Read).is_ok()).collect();
    Ok((layers, state.tiles.raster_sets()?))
}

/// A style by id: stored, else generated (`default`, or one layer or raster set).
pub(super) fn find_style(state: &AppState, caller: &Caller, id: &str) -> ApiResult<(Json, Option<i64>)> {
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

pub(super) async fn styles(State(state): State<AppState>, caller: Caller, headers: HeaderMap) -> ApiResult<Response> {
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

pub(super) async fn style(
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

/// Who edits shared documents (styles, caches): office staff and administrators.
pub(super) const EDITORS: &[Role] = &[Role::Admin, Role::Office];
const STYLE_EDITORS: &str = "styles are edited by office staff (内业) and administrators";

pub(super) async fn put_style(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> ApiResult<Response> {
    let author = caller.require_role(EDITORS, STYLE_EDITORS)?.username.clone();
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

pub(super) async fn delete_style(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    caller.require_role(EDITORS, STYLE_EDITORS)?;
    let st = state.clone();
    let gone = blocking(move || Ok(st.tiles.delete_style(&id)?)).await?;
    if gone {
        Ok(StatusCode::NO_CONTENT.into_response())
    } else {
        Err(ApiError::not_found("no stored style with this id"))
    }
}
